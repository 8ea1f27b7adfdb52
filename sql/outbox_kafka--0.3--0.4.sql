/* sql/outbox_kafka--0.3--0.4.sql: upgrade outbox_kafka from 0.3 to 0.4 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION outbox_kafka UPDATE TO '0.4'" to load this file. \quit

------------------------------------------------------------------------
-- Event identity that is never reused.  outbox-id comes from a sequence,
-- which starts over after DROP/CREATE EXTENSION and goes back in time
-- with a restore or a failover to a lagging standby.  Every event now
-- also gets a time-ordered random UUID (UUIDv7 layout) at enqueue, which
-- the relay publishes as the header outbox-event-id.  Events enqueued
-- before this update have none (NULL) and are published without it.
------------------------------------------------------------------------

-- on the parent: the rotating tables inherit the column
ALTER TABLE outbox.event ADD COLUMN event_uuid uuid;
COMMENT ON COLUMN outbox.event.event_uuid IS
    'Event identity, never reused (UUIDv7, set at enqueue; published as the header outbox-event-id); NULL for events enqueued before 0.4';
ALTER TABLE outbox.held_event ADD COLUMN event_uuid uuid;
ALTER TABLE outbox.dead_letters ADD COLUMN event_uuid uuid;
COMMENT ON COLUMN outbox.dead_letters.event_uuid IS
    'The event''s outbox-event-id; a re-queued dead letter keeps it';

-- The outbox-event-id of the last event the current transaction enqueued.
CREATE FUNCTION outbox.last_event_id()
RETURNS uuid
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'outbox_last_event_id';
COMMENT ON FUNCTION outbox.last_event_id() IS
    'The outbox-event-id of the last event this transaction enqueued (enqueue or capture); NULL if none';

-- the relay's read of a batch: the same events, now with their UUID
CREATE OR REPLACE FUNCTION outbox._batch_events(prev_tick pg_snapshot, tick pg_snapshot,
                                                after_id bigint, last_id bigint,
                                                max_events integer, max_bytes bigint)
RETURNS SETOF outbox.event
LANGUAGE sql STABLE
AS $$
    SELECT s.id, s.txid, s.created_at, s.topic, s.key, s.payload,
           s.payload_kind, s.headers, s.event_uuid
      FROM (SELECT c.*, sum(c.size) OVER (ORDER BY c.id) AS upto,
                   row_number() OVER (ORDER BY c.id) AS n
              FROM (SELECT e.*,
                           coalesce(octet_length(e.payload), 0) + coalesce(octet_length(e.key), 0)
                           + coalesce(pg_column_size(e.headers), 0) AS size
                      FROM outbox.event e
                     WHERE e.id > after_id
                       AND e.id <= last_id
                       AND pg_visible_in_snapshot(e.txid, tick)
                       AND NOT pg_visible_in_snapshot(e.txid, prev_tick)
                     ORDER BY e.id
                     LIMIT max_events) c) s
     WHERE max_bytes IS NULL OR s.upto <= max_bytes OR s.n = 1
     ORDER BY s.id
$$;

-- Held events and dead letters keep the event's UUID.
CREATE OR REPLACE FUNCTION outbox.hold_events(event_ids bigint[], topic text, reason text,
                                              error_class text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO outbox.held_topic AS h (topic, reason, error_class)
    VALUES (hold_events.topic, hold_events.reason, hold_events.error_class)
    ON CONFLICT ON CONSTRAINT held_topic_pkey DO UPDATE
       SET reason = excluded.reason, error_class = excluded.error_class
     WHERE h.reason IS DISTINCT FROM excluded.reason
        OR h.error_class IS DISTINCT FROM excluded.error_class;
    INSERT INTO outbox.held_event AS h
           (id, topic, key, payload, payload_kind, headers, created_at, event_uuid)
    SELECT e.id, e.topic, e.key, e.payload, e.payload_kind, e.headers, e.created_at,
           e.event_uuid
      FROM outbox.event e
     WHERE e.id = ANY (event_ids)
    ON CONFLICT ON CONSTRAINT held_event_pkey DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION outbox.held_events(topic text, max_events integer DEFAULT 1000,
                                              max_bytes bigint DEFAULT NULL)
RETURNS SETOF outbox.held_event
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT s.id, s.topic, s.key, s.payload, s.payload_kind, s.headers,
           s.created_at, s.held_at, s.event_uuid
      FROM (SELECT h.*,
                   sum(coalesce(octet_length(h.payload), 0) + coalesce(octet_length(h.key), 0)
                       + coalesce(pg_column_size(h.headers), 0))
                       OVER (ORDER BY h.id) AS upto,
                   coalesce(octet_length(h.payload), 0) + coalesce(octet_length(h.key), 0)
                       + coalesce(pg_column_size(h.headers), 0) AS size,
                   row_number() OVER (ORDER BY h.id) AS n
              FROM (SELECT * FROM outbox.held_event h
                     WHERE h.topic = held_events.topic
                     ORDER BY h.id
                     LIMIT greatest(max_events, 1)) h) s
     WHERE max_bytes IS NULL OR s.upto <= max_bytes OR s.n = 1
     ORDER BY s.id;
$$;

CREATE OR REPLACE FUNCTION outbox.dead_letter(event_id bigint, error text, attempts integer DEFAULT 1)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO outbox.dead_letters
           (id, topic, key, payload, payload_kind, headers, created_at, attempts, error,
            event_uuid)
    SELECT e.id, e.topic, e.key, e.payload, e.payload_kind, e.headers, e.created_at,
           attempts, error, e.event_uuid
      FROM outbox.event e
     WHERE e.id = event_id
    ON CONFLICT (id) DO UPDATE
       SET failed_at = now(), attempts = excluded.attempts, error = excluded.error
    RETURNING true;
$$;

CREATE OR REPLACE FUNCTION outbox.dead_letter_held(topic text, error text, attempts integer DEFAULT 1,
                                                   event_ids bigint[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO outbox.dead_letters
           (id, topic, key, payload, payload_kind, headers, created_at, attempts, error,
            event_uuid)
    SELECT h.id, h.topic, h.key, h.payload, h.payload_kind, h.headers, h.created_at,
           dead_letter_held.attempts, dead_letter_held.error, h.event_uuid
      FROM outbox.held_event h
     WHERE h.topic = dead_letter_held.topic
       AND (event_ids IS NULL OR h.id = ANY (event_ids))
     ORDER BY h.id
    ON CONFLICT (id) DO UPDATE
       SET failed_at = now(), attempts = excluded.attempts, error = excluded.error;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM outbox.held_event h
     WHERE h.topic = dead_letter_held.topic
       AND (event_ids IS NULL OR h.id = ANY (event_ids));
    IF event_ids IS NULL THEN
        DELETE FROM outbox.held_topic h WHERE h.topic = dead_letter_held.topic;
    END IF;
    RETURN n;
END
$$;

-- A re-queued dead letter is a new publication of the same event: it gets
-- a new outbox-id (and outbox-requeued-from) but keeps its outbox-event-id,
-- so a consumer that already processed it skips it.
DROP FUNCTION outbox._requeue_event(text, text, bytea, "char", jsonb);
-- Insert a dead letter again, as stored, keeping its event identity (a new
-- one when it has none); no validation, no topic grant check.
CREATE FUNCTION outbox._requeue_event(topic text, key text, payload bytea,
                                      payload_kind "char", headers jsonb,
                                      event_uuid uuid)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'outbox_requeue_event';

CREATE OR REPLACE FUNCTION outbox.requeue_dead_letters(ids bigint[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d outbox.dead_letters;
    n bigint := 0;
BEGIN
    FOR d IN SELECT * FROM outbox.dead_letters
              WHERE ids IS NULL OR id = ANY (ids)
              ORDER BY id
                FOR UPDATE
    LOOP
        PERFORM outbox._requeue_event(
            d.topic, d.key, d.payload, d.payload_kind,
            coalesce(d.headers, '{}'::jsonb)
                || jsonb_build_object('outbox-requeued-from', d.id::text),
            d.event_uuid);
        DELETE FROM outbox.dead_letters WHERE id = d.id;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION outbox.requeue_dead_letters(bigint[]) IS
    'Enqueue dead letters again as new events with their original outbox-event-id (all of them, or those with the given ids); returns how many';

------------------------------------------------------------------------
-- Least privilege for topics.  outbox.enqueue and outbox.capture publish
-- to a topic only for a role granted it here (exactly, by prefix, or all
-- topics), for a member of such a role, for the outbox's owner and for
-- superusers; anyone else gets SQLSTATE 42501.  A new installation grants
-- nothing.  This update grants every topic to PUBLIC, which is what 0.3
-- allowed (any role that may call enqueue, and any role whose change fires
-- a capture trigger): existing applications keep working, and the DBA
-- narrows it with outbox.grant_topic and outbox.revoke_topic.
------------------------------------------------------------------------

CREATE TABLE outbox.topic_grant (
    grantee       regrole     NOT NULL,
    topic_pattern text        NOT NULL
        CONSTRAINT topic_grant_pattern_check
        CHECK (topic_pattern ~ '^([A-Za-z0-9._-]{1,249}|[A-Za-z0-9._-]{0,248}[*])$'
               AND topic_pattern NOT IN ('.', '..')),
    granted_at    timestamptz NOT NULL DEFAULT now(),
    granted_by    name        NOT NULL DEFAULT session_user,
    CONSTRAINT topic_grant_pkey PRIMARY KEY (grantee, topic_pattern)
);
COMMENT ON TABLE outbox.topic_grant IS
    'Which roles may publish to which topics (grantee 0, shown as "-": PUBLIC; a pattern ending in * is a prefix); change it with outbox.grant_topic and outbox.revoke_topic';

SELECT pg_catalog.pg_extension_config_dump('outbox.topic_grant', '');

-- Tell every backend to reload its cached copy of the grants when the
-- transaction that changed them commits.
CREATE FUNCTION outbox._topic_grant_changed()
RETURNS trigger
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'outbox_topic_grant_changed';

CREATE TRIGGER topic_grant_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON outbox.topic_grant
    FOR EACH STATEMENT EXECUTE FUNCTION outbox._topic_grant_changed();

-- The role a grant names: 'public' (any case) is PUBLIC, stored as 0.
CREATE FUNCTION outbox._topic_grantee(role_name text)
RETURNS regrole
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role_name IS NULL THEN
        RAISE EXCEPTION 'role name must not be null'
              USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF lower(role_name) = 'public' THEN
        RETURN 0::oid::regrole;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION USING
              MESSAGE = format('role "%s" does not exist', role_name),
              ERRCODE = 'undefined_object',
                    HINT = 'Give the role''s name as it is spelled in pg_roles, or ''public''.';
    END IF;
    RETURN role_name::regrole;
END
$$;

-- Let role_name publish to the topics topic_pattern matches; false when it
-- already had that grant.  Needs the rights of the outbox's owner.
CREATE FUNCTION outbox.grant_topic(role_name text, topic_pattern text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF topic_pattern IS NULL THEN
        RAISE EXCEPTION 'topic pattern must not be null'
              USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF topic_pattern !~ '^([A-Za-z0-9._-]{1,249}|[A-Za-z0-9._-]{0,248}[*])$'
       OR topic_pattern IN ('.', '..') THEN
        RAISE EXCEPTION USING
              MESSAGE = format('invalid topic pattern "%s"', topic_pattern),
              ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'A pattern is a Kafka topic name, or a prefix of one followed by "*"; "*" alone is every topic.',
                    HINT = 'For example ''orders.created'', ''orders.*'' or ''*''.';
    END IF;
    INSERT INTO outbox.topic_grant (grantee, topic_pattern)
    VALUES (outbox._topic_grantee(role_name), grant_topic.topic_pattern)
    ON CONFLICT ON CONSTRAINT topic_grant_pkey DO NOTHING;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION outbox.grant_topic(text, text) IS
    'Let a role (or public) publish to a topic, to topics with a prefix (''orders.*'') or to all (''*''); false if it already could by this pattern';

-- Remove role_name's grant of topic_pattern (all of its grants when NULL);
-- returns how many were removed.
CREATE FUNCTION outbox.revoke_topic(role_name text, topic_pattern text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM outbox.topic_grant g
     WHERE g.grantee = outbox._topic_grantee(role_name)
       AND (revoke_topic.topic_pattern IS NULL
            OR g.topic_pattern = revoke_topic.topic_pattern);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION outbox.revoke_topic(text, text) IS
    'Take back a grant of outbox.grant_topic (all of the role''s patterns when topic_pattern is NULL); returns how many were removed';

CREATE VIEW outbox.topic_grants AS
SELECT CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::text END AS grantee,
       g.topic_pattern,
       CASE WHEN g.topic_pattern = '*' THEN 'all topics'
            WHEN g.topic_pattern LIKE '%*' THEN 'prefix'
            ELSE 'exact' END AS matches,
       g.granted_at,
       g.granted_by
  FROM outbox.topic_grant g;
COMMENT ON VIEW outbox.topic_grants IS
    'Which roles may publish to which topics through outbox.enqueue and outbox.capture (superusers and the outbox''s owner always may)';

-- what 0.3 allowed: everyone who reaches enqueue or fires a capture trigger
INSERT INTO outbox.topic_grant (grantee, topic_pattern) VALUES (0, '*');

------------------------------------------------------------------------
-- The SQL relay API is gone (open_batch, next_events, ack_events): the
-- relay keeps its batch in memory, so calling them while it ran made it
-- start over and publish again.  outbox._batch_bounds and _batch_events
-- remain the one definition of a batch.
------------------------------------------------------------------------

DROP FUNCTION outbox.open_batch();
DROP FUNCTION outbox.next_events(integer, bigint, bigint);
DROP FUNCTION outbox.ack_events(bigint, bigint);

-- The librdkafka the relay runs with: the library this server loaded for
-- outbox_kafka (docs/kafka.md says which versions have which defects).
CREATE FUNCTION outbox.librdkafka_version()
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'outbox_librdkafka_version_sql';
COMMENT ON FUNCTION outbox.librdkafka_version() IS
    'The version of librdkafka the relay runs with';

------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------

REVOKE ALL ON outbox.topic_grant, outbox.topic_grants FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox._requeue_event(text, text, bytea, "char", jsonb, uuid),
    outbox.last_event_id(),
    outbox._topic_grant_changed(), outbox._topic_grantee(text),
    outbox.grant_topic(text, text), outbox.revoke_topic(text, text),
    outbox.librdkafka_version() FROM PUBLIC;
-- last_event_id only shows the caller's own transaction
GRANT EXECUTE ON FUNCTION outbox.last_event_id() TO PUBLIC;
GRANT SELECT ON outbox.topic_grants TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.librdkafka_version() TO pg_monitor;

DO $$
BEGIN
    RAISE NOTICE 'outbox_kafka 0.4: every role that may enqueue keeps publishing to every topic (a grant of ''*'' to PUBLIC)'
          USING HINT = 'Grant each application its topics with outbox.grant_topic(role, pattern), then SELECT outbox.revoke_topic(''public'', ''*'').  See docs/security.md.';
END
$$;
