-- Roles of the example and the privileges each needs, nothing more.  Run as
-- a superuser or a role with CREATEROLE (it creates roles and grants
-- pg_monitor), after db/schema.sql:
--     psql -d orders -f db/schema.sql -f db/grants.sql
-- then set passwords (ALTER ROLE orders_app PASSWORD '...') or map them in
-- pg_hba.conf.  Re-running is safe.
--
-- Neither role owns anything: a bug or an injected statement in the
-- service cannot ALTER or DROP the tables, nor touch the other service's
-- schema.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orders_app') THEN
        CREATE ROLE orders_app LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'billing_app') THEN
        CREATE ROLE billing_app LOGIN;
    END IF;
END
$$;

-- The order API (src/main.ts).
GRANT USAGE ON SCHEMA shop TO orders_app;
GRANT SELECT, UPDATE (stock) ON shop.products TO orders_app;   -- prices; stock, locked with FOR UPDATE
GRANT SELECT, INSERT ON shop.orders, shop.order_lines TO orders_app;
-- The JSON variant of outbox.enqueue (OutboxService casts to jsonb).  The
-- schema outbox is usable by PUBLIC; its functions are not.
GRANT EXECUTE ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb) TO orders_app;
-- And the one topic it publishes to: since outbox_kafka 0.4 a role
-- publishes only to the topics granted to it (docs/security.md).
SELECT outbox.grant_topic('orders_app', 'order.created');
-- GET /health/outbox reads outbox.status, which is for pg_monitor.  Leave
-- this out if you monitor the outbox elsewhere: /health/outbox then
-- reports "permission denied", the order API works as before.
GRANT pg_monitor TO orders_app;

-- The billing consumer (src/billing.main.ts).  In production its own
-- database; then only these lines apply there.
GRANT USAGE ON SCHEMA billing TO billing_app;
GRANT SELECT ON billing.accounts TO billing_app;
GRANT SELECT, INSERT ON billing.charges TO billing_app;
GRANT SELECT, INSERT, UPDATE (outcome) ON billing.processed_events TO billing_app;
GRANT USAGE ON SEQUENCE billing.charges_id_seq, billing.processed_events_seq_seq TO billing_app;
