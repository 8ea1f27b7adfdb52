/* sql/outbox_kafka--0.6--0.7.sql: upgrade outbox_kafka from 0.6 to 0.7 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION outbox_kafka UPDATE TO '0.7'" to load this file. \quit

-- Subscriptions: on_poison = 'hold_key', and a Kafka dead-letter topic.
ALTER TABLE outbox.inbox_subscription
    DROP CONSTRAINT inbox_subscription_on_poison_check,
    ADD CONSTRAINT inbox_subscription_on_poison_check
        CHECK (on_poison IN ('dead_letter', 'hold', 'hold_key')),
    ADD COLUMN dead_letter_topic text;

-- outbox.subscribe gains dead_letter_topic: a new signature.  The roles
-- granted EXECUTE on the old one keep it on the new one.
DO $$
BEGIN
    PERFORM set_config('outbox_upgrade.subscribe_grantees',
        coalesce((SELECT string_agg(quote_ident(r.rolname), ',')
                    FROM pg_proc p, aclexplode(p.proacl) a, pg_roles r
                   WHERE p.oid = 'outbox.subscribe(text, text, regprocedure, integer, text)'::regprocedure
                     AND a.privilege_type = 'EXECUTE' AND a.grantee = r.oid
                     AND a.grantee <> p.proowner), ''),
        true);
END
$$;
DROP FUNCTION outbox.subscribe(text, text, regprocedure, integer, text);
CREATE FUNCTION outbox.subscribe(subscription text, topic text, handler regprocedure,
                                 max_attempts integer DEFAULT 5,
                                 on_poison text DEFAULT 'dead_letter',
                                 dead_letter_topic text DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'outbox_inbox_subscribe';
COMMENT ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text) IS
    'Apply the messages of a topic with a handler, run as the caller';
REVOKE ALL ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text) FROM PUBLIC;
DO $$
DECLARE
    grantees text := current_setting('outbox_upgrade.subscribe_grantees', true);
BEGIN
    IF coalesce(grantees, '') <> '' THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text) TO '
                || grantees;
    END IF;
END
$$;

------------------------------------------------------------------------
-- The inbox (0.7): per-key hold, a Kafka dead-letter topic, rewind by
-- timestamp (docs/inbox.md).
------------------------------------------------------------------------

-- Messages set aside by on_poison = 'hold_key': the first one of a key
-- failed max_attempts times; the later ones of the same key (and
-- partition) wait behind it, in offset order.  The worker retries the
-- first message of each key with back-off; what it applies is deleted in
-- the same transaction as its effects.
CREATE TABLE outbox.inbox_held (
    subscription  text NOT NULL
                  REFERENCES outbox.inbox_subscription (name) ON DELETE CASCADE,
    topic         text NOT NULL,
    "partition"   integer NOT NULL,
    "offset"      bigint NOT NULL,
    key           bytea NOT NULL,
    value         bytea,
    headers       jsonb,
    "timestamp"   timestamptz,
    dedupe_key    text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    sqlstate      text,
    retry_at      timestamptz NOT NULL DEFAULT now(),
    held_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription, "partition", "offset")
);
CREATE INDEX inbox_held_key_idx
    ON outbox.inbox_held (subscription, "partition", key, "offset");
COMMENT ON TABLE outbox.inbox_held IS
    'Inbox messages set aside, per key, behind a poison message (on_poison = ''hold_key'')';

-- Rewinds by timestamp, until the worker resolves them to offsets.
CREATE TABLE outbox.inbox_rewind_request (
    subscription  text NOT NULL
                  REFERENCES outbox.inbox_subscription (name) ON DELETE CASCADE,
    "partition"   integer NOT NULL CHECK ("partition" >= -1),
    "timestamp"   timestamptz NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription, "partition")
);
COMMENT ON TABLE outbox.inbox_rewind_request IS
    'Rewinds by timestamp the inbox worker has not resolved to offsets yet (partition -1: all)';

SELECT pg_catalog.pg_extension_config_dump('outbox.inbox_held', '');

CREATE FUNCTION outbox.inbox_rewind_to_time(subscription text, "timestamp" timestamptz)
RETURNS void
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'outbox_inbox_rewind_time';
COMMENT ON FUNCTION outbox.inbox_rewind_to_time(text, timestamptz) IS
    'Move every partition of a subscription to its first message at or after a time';

CREATE FUNCTION outbox.inbox_rewind_to_time(subscription text, "partition" integer,
                                            "timestamp" timestamptz)
RETURNS void
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'outbox_inbox_rewind_partition_time';
COMMENT ON FUNCTION outbox.inbox_rewind_to_time(text, integer, timestamptz) IS
    'Move a partition of a subscription to its first message at or after a time';

CREATE VIEW outbox.inbox_held_keys AS
SELECT h.subscription, h."partition", h.key,
       count(*) AS messages,
       min(h."offset") AS first_offset,
       (array_agg(h.attempts ORDER BY h."offset"))[1] AS attempts,
       (array_agg(h.last_error ORDER BY h."offset"))[1] AS last_error,
       (array_agg(h.retry_at ORDER BY h."offset"))[1] AS retry_at,
       min(h.held_at) AS held_since
  FROM outbox.inbox_held h
 GROUP BY h.subscription, h."partition", h.key;
COMMENT ON VIEW outbox.inbox_held_keys IS
    'Keys held by on_poison = ''hold_key'': their messages waiting, the first one''s attempts and error';

REVOKE ALL ON outbox.inbox_held, outbox.inbox_rewind_request, outbox.inbox_held_keys FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox.inbox_rewind_to_time(text, timestamptz),
    outbox.inbox_rewind_to_time(text, integer, timestamptz) FROM PUBLIC;
GRANT SELECT ON outbox.inbox_held_keys TO pg_monitor;

CREATE OR REPLACE VIEW outbox.subscriptions AS
SELECT s.name AS subscription, s.topic, s.handler, s.owner, s.max_attempts,
       s.on_poison, s.created_at, s.dead_letter_topic
  FROM outbox.inbox_subscription s;

CREATE OR REPLACE VIEW outbox.inbox_status AS
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
         WHEN coalesce(o.attempts, 0) >= s.max_attempts AND s.on_poison IN ('hold', 'hold_key') THEN 'held'
         -- a failure that counts no attempt (docs/inbox.md, Failures) is
         -- known by its error written with the offset the batch stopped at
         WHEN coalesce(o.attempts, 0) > 0 OR o.last_error_at >= o.updated_at THEN 'retrying'
         WHEN hk.held_keys > 0 THEN 'keys_held'
         WHEN h.high_watermark IS NULL THEN 'unknown'
         WHEN h.high_watermark > coalesce(o.next_offset, 0) THEN 'behind'
         ELSE 'caught_up'
       END AS state,
       o.updated_at,
       hk.held_keys,
       hk.held_messages
  FROM outbox.inbox_subscription s
  CROSS JOIN w
  LEFT JOIN p ON p.subscription = s.name
  LEFT JOIN outbox.inbox_offset o
    ON o.subscription = s.name AND o."partition" = p."partition"
  LEFT JOIN h ON h.subscription = s.name AND h."partition" = p."partition"
  LEFT JOIN LATERAL (SELECT count(DISTINCT k.key) AS held_keys, count(*) AS held_messages
                       FROM outbox.inbox_held k
                      WHERE k.subscription = s.name AND k."partition" = p."partition") hk ON true;
