-- Schema of the example: the order service's tables (schema "shop") and the
-- billing consumer's tables (schema "billing").  In production billing would
-- live in its own database (set BILLING_DATABASE_URL); here both share the
-- database where outbox_kafka is installed, to keep the example to one
-- server.  Apply with:  psql -d orders -f db/schema.sql

CREATE EXTENSION IF NOT EXISTS outbox_kafka;

CREATE SCHEMA shop;

CREATE TABLE shop.products (
    sku          text PRIMARY KEY,
    price_cents  bigint NOT NULL CHECK (price_cents > 0),
    stock        integer NOT NULL CHECK (stock >= 0)
);

CREATE TABLE shop.orders (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id  bigint NOT NULL,
    reference    text NOT NULL UNIQUE,
    currency     char(3) NOT NULL,
    total_cents  bigint NOT NULL CHECK (total_cents > 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shop.order_lines (
    order_id          uuid NOT NULL REFERENCES shop.orders ON DELETE CASCADE,
    line_no           integer NOT NULL,
    sku               text NOT NULL REFERENCES shop.products,
    quantity          integer NOT NULL CHECK (quantity > 0),
    unit_price_cents  bigint NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE SCHEMA billing;

-- A customer can be charged only with an active account.
CREATE TABLE billing.accounts (
    customer_id  bigint PRIMARY KEY,
    status       text NOT NULL CHECK (status IN ('active', 'suspended'))
);

-- The business write.  UNIQUE (order_id) is the second guard: an event
-- re-enqueued from outbox.dead_letters gets a new event id, but it is
-- still the same order.
CREATE TABLE billing.charges (
    id            bigserial PRIMARY KEY,
    order_id      uuid NOT NULL UNIQUE,
    customer_id   bigint NOT NULL,
    amount_cents  bigint NOT NULL,
    currency      char(3) NOT NULL,
    event_id      text NOT NULL,
    charged_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per event the consumer has finished with, written in the same
-- transaction as its business write: a redelivered message finds its row
-- and changes nothing.  seq records the order of processing.
--
-- The key is the event's identity: the publishing database (source, from
-- BILLING_EVENT_SOURCE) and the "outbox-event-id" header, a UUID that is
-- never reused.  NOT "outbox-id" alone: that is a sequence value, which
-- starts again at 1 after DROP/CREATE EXTENSION and can repeat after a
-- restore or failover - de-duplicating on it would drop new events.
-- Messages without "outbox-event-id" (an older outbox_kafka) fall back to
-- 'outbox-id:<n>' with a warning in the log.
CREATE TABLE billing.processed_events (
    source        text NOT NULL,
    event_id      text NOT NULL,
    outbox_id     bigint,
    seq           bigserial NOT NULL,
    topic         text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset  bigint NOT NULL,
    event_key     text,
    outcome       text NOT NULL CHECK (outcome IN ('charged', 'already_charged', 'tombstone', 'ignored', 'dead_lettered')),
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
);
