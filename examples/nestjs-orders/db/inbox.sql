-- The billing consumer, inbox variant: the same billing effect as
-- src/billing/ (the hand-written kafkajs consumer), written as one PL/pgSQL
-- function that outbox_kafka's inbox calls for each message of
-- "order.created" (docs/inbox.md in the outbox_kafka tree).  No process, no
-- Kafka client, no de-duplication table, no dead-letter producer: the inbox
-- worker inside PostgreSQL consumes the topic and commits the charge, its
-- de-duplication record and the consumer offset in one transaction.
--
-- Its own schema and tables, so that both variants can run side by side on
-- one database (the example's tests run both); in production pick one.
-- Run as a superuser (or the extension's owner with CREATEROLE) after
-- db/schema.sql and db/grants.sql, then subscribe with
-- db/inbox-subscribe.sql:
--     psql -d orders -f db/inbox.sql -f db/inbox-subscribe.sql
-- Re-running needs DROP SCHEMA billing_inbox CASCADE and
-- SELECT outbox.unsubscribe('billing') first.

DO $$
BEGIN
    -- The role the handler runs as (the inbox runs a handler as the role
    -- that subscribed).  It never logs in.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'billing_inbox') THEN
        CREATE ROLE billing_inbox NOLOGIN;
    END IF;
END
$$;

CREATE SCHEMA billing_inbox;

-- The business write, one row per order, as billing.charges.  The key
-- order_id also catches an order published again under a new event id (a
-- requeued dead letter of the outbox): the inbox de-duplicates on the
-- event id only.  Where the message was, for audits.
CREATE TABLE billing_inbox.charges (
    order_id        uuid PRIMARY KEY,
    customer_id     bigint NOT NULL,
    amount_cents    bigint NOT NULL,
    currency        char(3) NOT NULL,
    event_id        text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    charged_at      timestamptz NOT NULL DEFAULT now()
);

-- bill_order: charge the order of one "order.created" message.
--
-- Called by the inbox worker, inside the batch's transaction, once per
-- message that its de-duplication records do not know: a redelivery (the
-- same "outbox-event-id") never reaches it.  It must not COMMIT.  Raising
-- an error rolls back this message only; the inbox tries it again after
-- 100 ms, 200 ms, ... and after max_attempts (db/inbox-subscribe.sql) moves
-- it to outbox.inbox_dead_letter with the error text and SQLSTATE.
--
--  - a tombstone (no value) and an event type it does not know are applied
--    without effect (tolerant reader), like the hand-written consumer;
--  - a value that is not an order.created event as billing needs it is an
--    error (SQLSTATE 22023), and so dead-lettered after max_attempts;
--  - a customer without an active billing account is an error (P0001),
--    retried, then dead-lettered.
--
-- Names are schema-qualified and search_path is pinned: the inbox calls
-- handlers with "$user", public.
CREATE FUNCTION billing_inbox.bill_order(m outbox.inbox_message)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e       jsonb;
    status  text;
    total   bigint;
BEGIN
    IF m.value IS NULL THEN
        RETURN;                         -- tombstone: nothing to charge
    END IF;
    e := convert_from(m.value, 'UTF8')::jsonb;  -- 22P02 if not JSON
    IF jsonb_typeof(e) <> 'object' OR jsonb_typeof(e -> 'type') <> 'string' THEN
        RAISE EXCEPTION 'payload is not a JSON object with a "type"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF e ->> 'type' <> 'order.created' THEN
        RAISE LOG 'billing_inbox: skipping event of unknown type "%" (partition %, offset %)',
            e ->> 'type', m."partition", m."offset";
        RETURN;
    END IF;

    -- the fields billing relies on, without conversions ("2" is no quantity)
    IF coalesce(e ->> 'orderId', '') !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
       OR jsonb_typeof(e -> 'customerId') IS DISTINCT FROM 'number'
       OR jsonb_typeof(e -> 'totalCents') IS DISTINCT FROM 'number'
       OR coalesce(e ->> 'currency', '') !~ '^[A-Z]{3}$'
       OR jsonb_typeof(e -> 'lines') IS DISTINCT FROM 'array'
       OR jsonb_array_length(e -> 'lines') = 0 THEN
        RAISE EXCEPTION 'invalid order.created event: %', left(e::text, 200)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF m.key IS DISTINCT FROM convert_to(e ->> 'orderId', 'UTF8') THEN
        RAISE EXCEPTION 'invalid order.created event: orderId differs from the message key'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT sum((l ->> 'quantity')::bigint * (l ->> 'unitPriceCents')::bigint)
      INTO total
      FROM jsonb_array_elements(e -> 'lines') AS l
     WHERE jsonb_typeof(l -> 'quantity') = 'number'
       AND jsonb_typeof(l -> 'unitPriceCents') = 'number';
    IF total IS DISTINCT FROM (e ->> 'totalCents')::bigint THEN
        RAISE EXCEPTION 'invalid order.created event: totalCents is not the sum of the lines'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT a.status INTO status
      FROM billing.accounts a
     WHERE a.customer_id = (e ->> 'customerId')::bigint;
    IF status IS NULL THEN
        RAISE EXCEPTION 'customer % has no billing account', e ->> 'customerId';
    ELSIF status <> 'active' THEN
        RAISE EXCEPTION 'billing account of customer % is %', e ->> 'customerId', status;
    END IF;

    INSERT INTO billing_inbox.charges
           (order_id, customer_id, amount_cents, currency, event_id,
            kafka_partition, kafka_offset)
    VALUES ((e ->> 'orderId')::uuid, (e ->> 'customerId')::bigint, total,
            e ->> 'currency', coalesce(m.headers ->> 'outbox-event-id', ''),
            m."partition", m."offset")
    ON CONFLICT (order_id) DO NOTHING;  -- already charged under another event id
END
$$;

-- What the handler's role needs, nothing more.
GRANT USAGE ON SCHEMA billing, billing_inbox TO billing_inbox;
GRANT SELECT ON billing.accounts TO billing_inbox;
GRANT SELECT, INSERT ON billing_inbox.charges TO billing_inbox;   -- SELECT: ON CONFLICT (order_id)
REVOKE ALL ON FUNCTION billing_inbox.bill_order(outbox.inbox_message) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION billing_inbox.bill_order(outbox.inbox_message) TO billing_inbox;
