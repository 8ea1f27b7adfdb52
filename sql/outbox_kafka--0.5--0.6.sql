/* sql/outbox_kafka--0.5--0.6.sql: upgrade outbox_kafka from 0.5 to 0.6 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION outbox_kafka UPDATE TO '0.6'" to load this file. \quit

------------------------------------------------------------------------
-- The inbox (0.6): messages consumed from Kafka are applied by a SQL
-- handler, exactly once, by the inbox worker of this database.  Each batch
-- is one transaction: the handlers' effects, the de-duplication records
-- and the next offsets commit together (docs/inbox.md).
------------------------------------------------------------------------

-- What a handler receives: one message.  key and value are the bytes as
-- they are in Kafka (convert_from(value, 'UTF8')::jsonb for JSON);
-- headers is an object of header name to value (the last one of a name
-- wins; a value that is not valid UTF-8 is null).
CREATE TYPE outbox.inbox_message AS (
    subscription text,
    topic        text,
    "partition"  integer,
    "offset"     bigint,
    key          bytea,
    value        bytea,
    headers      jsonb,
    "timestamp"  timestamptz
);
COMMENT ON TYPE outbox.inbox_message IS
    'One Kafka message, as an inbox handler receives it';

CREATE TABLE outbox.inbox_subscription (
    name         text PRIMARY KEY
                 CHECK (name ~ '^[A-Za-z0-9._-]{1,63}$'),
    topic        text NOT NULL,
    handler      regprocedure NOT NULL,
    owner        regrole NOT NULL,
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    on_poison    text NOT NULL DEFAULT 'dead_letter'
                 CHECK (on_poison IN ('dead_letter', 'hold')),
    created_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE outbox.inbox_subscription IS
    'Inbox subscriptions: a topic, the handler that applies its messages and as whom';

-- Next offset to apply, per subscription and partition: written with the
-- effects of each batch, compare-and-set on the offset the worker read.
-- attempts and last_error describe the message at next_offset when its
-- handler failed.
CREATE TABLE outbox.inbox_offset (
    subscription  text NOT NULL
                  REFERENCES outbox.inbox_subscription (name) ON DELETE CASCADE,
    "partition"   integer NOT NULL CHECK ("partition" >= 0),
    next_offset   bigint NOT NULL CHECK (next_offset >= 0),
    applied       bigint NOT NULL DEFAULT 0,
    duplicates    bigint NOT NULL DEFAULT 0,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    last_error_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription, "partition")
) WITH (fillfactor = 50);
COMMENT ON TABLE outbox.inbox_offset IS
    'Inbox offsets: the next offset to apply per subscription and partition';

-- De-duplication records, in two tables used in turn: the worker writes
-- into the current one and, once per outbox_kafka.inbox_dedupe_window,
-- empties the other with TRUNCATE and makes it current.  A record lives
-- at least one window and less than two.
CREATE TABLE outbox.inbox_dedupe_0 (
    subscription text NOT NULL,
    dedupe_key   text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription, dedupe_key)
);
CREATE TABLE outbox.inbox_dedupe_1 (LIKE outbox.inbox_dedupe_0 INCLUDING ALL);

CREATE TABLE outbox.inbox_dedupe_rotation (
    only_row        boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    current_table   smallint NOT NULL DEFAULT 0 CHECK (current_table IN (0, 1)),
    rotated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO outbox.inbox_dedupe_rotation DEFAULT VALUES;

CREATE TABLE outbox.inbox_dead_letter (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription text NOT NULL,
    topic        text NOT NULL,
    "partition"  integer NOT NULL,
    "offset"     bigint NOT NULL,
    key          bytea,
    value        bytea,
    headers      jsonb,
    "timestamp"  timestamptz,
    error        text NOT NULL,
    sqlstate     text,
    attempts     integer NOT NULL,
    failed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_dead_letter_subscription_idx
    ON outbox.inbox_dead_letter (subscription, "partition", "offset");
COMMENT ON TABLE outbox.inbox_dead_letter IS
    'Inbox messages whose handler failed max_attempts times';

SELECT pg_catalog.pg_extension_config_dump('outbox.inbox_subscription', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.inbox_offset', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.inbox_dead_letter', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.inbox_dead_letter_id_seq', '');

CREATE FUNCTION outbox.subscribe(subscription text, topic text, handler regprocedure,
                                 max_attempts integer DEFAULT 5,
                                 on_poison text DEFAULT 'dead_letter')
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'outbox_inbox_subscribe';
COMMENT ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text) IS
    'Apply the messages of a topic with a handler, run as the caller';

CREATE FUNCTION outbox.unsubscribe(subscription text)
RETURNS boolean
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'outbox_inbox_unsubscribe';
COMMENT ON FUNCTION outbox.unsubscribe(text) IS
    'Stop a subscription and forget its offsets';

CREATE FUNCTION outbox.inbox_rewind(subscription text, "partition" integer, "offset" bigint)
RETURNS void
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'outbox_inbox_rewind';
COMMENT ON FUNCTION outbox.inbox_rewind(text, integer, bigint) IS
    'Move a subscription''s partition to an offset; de-duplication records decide what applies again';

CREATE VIEW outbox.subscriptions AS
SELECT s.name AS subscription, s.topic, s.handler, s.owner, s.max_attempts,
       s.on_poison, s.created_at
  FROM outbox.inbox_subscription s;
COMMENT ON VIEW outbox.subscriptions IS 'Inbox subscriptions of this database';

CREATE FUNCTION outbox.inbox_worker_status(
    OUT state text, OUT worker_pid integer, OUT last_error text,
    OUT last_error_at timestamptz)
RETURNS record
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'outbox_inbox_worker_status';

CREATE FUNCTION outbox.inbox_watermarks(
    OUT subscription text, OUT "partition" integer, OUT high_watermark bigint)
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'outbox_inbox_watermarks';

CREATE VIEW outbox.inbox_status AS
WITH w AS (SELECT * FROM outbox.inbox_worker_status()),
     h AS (SELECT * FROM outbox.inbox_watermarks()),
     p AS (SELECT o.subscription, o."partition" FROM outbox.inbox_offset o
           UNION
           SELECT h.subscription, h."partition" FROM h)
SELECT s.name AS subscription,
       s.topic,
       p."partition",
       o.next_offset AS stored_offset,
       h.high_watermark,
       greatest(h.high_watermark - coalesce(o.next_offset, 0), 0) AS lag,
       coalesce(o.applied, 0) AS applied,
       coalesce(o.duplicates, 0) AS duplicates,
       (SELECT count(*) FROM outbox.inbox_dead_letter d
         WHERE d.subscription = s.name AND d."partition" = p."partition") AS dead_letters,
       coalesce(o.attempts, 0) AS attempts,
       o.last_error,
       o.last_error_at,
       CASE
         WHEN w.state <> 'consuming' THEN w.state
         WHEN coalesce(o.attempts, 0) >= s.max_attempts AND s.on_poison = 'hold' THEN 'held'
         -- a failure that counts no attempt (docs/inbox.md, Failures) is
         -- known by its error written with the offset the batch stopped at
         WHEN coalesce(o.attempts, 0) > 0 OR o.last_error_at >= o.updated_at THEN 'retrying'
         WHEN h.high_watermark IS NULL THEN 'unknown'
         WHEN h.high_watermark > coalesce(o.next_offset, 0) THEN 'behind'
         ELSE 'caught_up'
       END AS state,
       o.updated_at
  FROM outbox.inbox_subscription s
  CROSS JOIN w
  LEFT JOIN p ON p.subscription = s.name
  LEFT JOIN outbox.inbox_offset o
    ON o.subscription = s.name AND o."partition" = p."partition"
  LEFT JOIN h ON h.subscription = s.name AND h."partition" = p."partition";
COMMENT ON VIEW outbox.inbox_status IS
    'The inbox per subscription and partition: stored offset, high watermark, lag, counts, errors';

-- Nothing of the inbox is open to PUBLIC: subscribing runs code as the
-- caller with the messages of any topic the database may read, so only
-- the extension's owner (and superusers) may, unless granted
-- (docs/security.md).  pg_monitor reads the status.
REVOKE ALL ON outbox.inbox_subscription, outbox.inbox_offset, outbox.inbox_dedupe_0,
    outbox.inbox_dedupe_1, outbox.inbox_dedupe_rotation, outbox.inbox_dead_letter,
    outbox.subscriptions, outbox.inbox_status FROM PUBLIC;
REVOKE ALL ON SEQUENCE outbox.inbox_dead_letter_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text),
    outbox.unsubscribe(text), outbox.inbox_rewind(text, integer, bigint),
    outbox.inbox_worker_status(), outbox.inbox_watermarks() FROM PUBLIC;
GRANT SELECT ON outbox.inbox_status, outbox.subscriptions TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.inbox_worker_status(), outbox.inbox_watermarks() TO pg_monitor;
