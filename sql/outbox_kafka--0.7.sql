/* sql/outbox_kafka--0.7.sql: install script of outbox_kafka 0.7 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION outbox_kafka" to load this file. \quit

-- This script creates version 0.7 directly.  A database at 0.1 .. 0.6
-- is brought to the same state by ALTER EXTENSION outbox_kafka UPDATE
-- (the outbox_kafka--0.x--0.y.sql scripts; test/t/092_upgrade.pl checks
-- that both give the same objects, definitions, privileges and comments).

CREATE SCHEMA outbox;
COMMENT ON SCHEMA outbox IS 'Transactional outbox published to Kafka by outbox_kafka';

-- Application roles need USAGE to call the functions they are granted;
-- every object inside stays closed to PUBLIC (see the end of this file).
GRANT USAGE ON SCHEMA outbox TO PUBLIC;

------------------------------------------------------------------------
-- Event storage: three rotating tables under one template parent.
-- Rows are never updated or deleted one by one; a table is emptied with
-- TRUNCATE once everything in it is published (outbox.maintain).
------------------------------------------------------------------------

CREATE SEQUENCE outbox.event_id_seq AS bigint;

-- id (outbox-id) orders events and identifies them within one life of this
-- database; event_uuid (outbox-event-id) identifies them for ever: the
-- sequence starts over with the extension and goes back in time with a
-- restore or a failover, a random time-ordered UUID does not repeat.
CREATE TABLE outbox.event (
    id           bigint      NOT NULL DEFAULT nextval('outbox.event_id_seq'),
    txid         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    topic        text        NOT NULL,
    key          text,
    payload      bytea,
    payload_kind "char"      NOT NULL,
    headers      jsonb,
    event_uuid   uuid
);
-- No CHECK constraints on the event tables: the C insert path validates
-- every row (and always sets event_uuid), and a CHECK would cost every
-- insert a constraint evaluation.
-- the parent only gives the tables one shape and one name to read them by
ALTER TABLE outbox.event
    ADD CONSTRAINT event_rows_go_to_event_n CHECK (false) NO INHERIT;
ALTER SEQUENCE outbox.event_id_seq OWNED BY outbox.event.id;
COMMENT ON TABLE outbox.event IS
    'All events, read through the rotating tables outbox.event_0 .. event_2';
COMMENT ON COLUMN outbox.event.txid IS
    'Top-level transaction id of the enqueuing transaction; batches are cut by snapshot visibility of this column';
COMMENT ON COLUMN outbox.event.payload_kind IS
    'j: JSON text (published with content-type: application/json), t: text, b: bytes';
COMMENT ON COLUMN outbox.event.event_uuid IS
    'Event identity, never reused (UUIDv7, set at enqueue; published as the header outbox-event-id); NULL for events enqueued before 0.4';

CREATE TABLE outbox.event_0 () INHERITS (outbox.event);
ALTER TABLE outbox.event_0 ADD CONSTRAINT event_0_pkey PRIMARY KEY (id);
CREATE INDEX event_0_txid_idx ON outbox.event_0 (txid);

CREATE TABLE outbox.event_1 () INHERITS (outbox.event);
ALTER TABLE outbox.event_1 ADD CONSTRAINT event_1_pkey PRIMARY KEY (id);
CREATE INDEX event_1_txid_idx ON outbox.event_1 (txid);

CREATE TABLE outbox.event_2 () INHERITS (outbox.event);
ALTER TABLE outbox.event_2 ADD CONSTRAINT event_2_pkey PRIMARY KEY (id);
CREATE INDEX event_2_txid_idx ON outbox.event_2 (txid);

-- Which table takes new events, and since when.
CREATE TABLE outbox.rotation (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    current_table smallint    NOT NULL DEFAULT 0 CHECK (current_table BETWEEN 0 AND 2),
    rotated_at    timestamptz NOT NULL DEFAULT now()
);
INSERT INTO outbox.rotation DEFAULT VALUES;

-- When each table stopped taking new events, and when it was last emptied.
CREATE TABLE outbox.event_table (
    table_no     smallint PRIMARY KEY CHECK (table_no BETWEEN 0 AND 2),
    retired_at   timestamptz,
    truncated_at timestamptz
);
INSERT INTO outbox.event_table (table_no) VALUES (0), (1), (2);

------------------------------------------------------------------------
-- Relay progress: the last completed tick and the open batch, if any.
-- A tick is a pg_snapshot; the batch of tick T after tick P holds exactly
-- the events visible in T and not in P.  The running relay keeps the open
-- batch in memory and saves it here (relay_batch.c).
------------------------------------------------------------------------

CREATE TABLE outbox.relay_state (
    singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    prev_tick          pg_snapshot NOT NULL DEFAULT '1:1:',
    prev_tick_at       timestamptz NOT NULL DEFAULT now(),
    cur_tick           pg_snapshot,
    batch_first_id     bigint,
    batch_last_id      bigint,
    batch_events       bigint,
    batch_done_id      bigint,
    batch_done_events  bigint,
    batch_opened_at    timestamptz,
    batches_done       bigint      NOT NULL DEFAULT 0,
    published_max_id   bigint      NOT NULL DEFAULT 0
);
INSERT INTO outbox.relay_state DEFAULT VALUES;
COMMENT ON TABLE outbox.relay_state IS
    'Relay progress: prev_tick is the last fully published tick, cur_tick the tick of the open batch (the running relay keeps them in memory and saves them here at most every 100 ms)';

------------------------------------------------------------------------
-- Dead letters: events Kafka refused for good, with the reason.
------------------------------------------------------------------------

CREATE TABLE outbox.dead_letters (
    id           bigint      PRIMARY KEY,
    topic        text        NOT NULL,
    key          text,
    payload      bytea,
    payload_kind "char"      NOT NULL,
    headers      jsonb,
    created_at   timestamptz NOT NULL,
    failed_at    timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL,
    error        text        NOT NULL,
    event_uuid   uuid
);
COMMENT ON TABLE outbox.dead_letters IS
    'Events that could not be published; outbox.requeue_dead_letters() enqueues them again';
COMMENT ON COLUMN outbox.dead_letters.event_uuid IS
    'The event''s outbox-event-id; a re-queued dead letter keeps it';

------------------------------------------------------------------------
-- Held topics and partitions.  A topic Kafka refuses as a whole for now
-- (unknown, not authorised) is held aside as partition -1; a partition
-- without a leader or with too few in-sync replicas, or whose events get
-- no acknowledgement within outbox_kafka.stall_timeout while the cluster
-- otherwise answers, is held by itself.  Their events move, in id order,
-- to outbox.held_event, the batch cursor goes on past them and everything
-- else keeps flowing.  While a topic or partition is held, its new events
-- join the queue behind the held ones (order per key is kept); the relay
-- retries the queue's head and releases it once the queue is empty.
------------------------------------------------------------------------

CREATE TABLE outbox.held_topic (
    topic           text        NOT NULL,
    held_since      timestamptz NOT NULL DEFAULT now(),
    reason          text        NOT NULL,
    error_class     text        NOT NULL,
    last_attempt_at timestamptz,
    partition       integer     NOT NULL DEFAULT -1,
    CONSTRAINT held_topic_pkey PRIMARY KEY (topic, partition)
);
COMMENT ON TABLE outbox.held_topic IS
    'Topics and partitions held aside by the relay, since when and why (held_since is the retry clock of outbox_kafka.max_retry_time)';
COMMENT ON COLUMN outbox.held_topic.partition IS
    'The partition held; -1: the whole topic';

CREATE TABLE outbox.held_event (
    id           bigint      PRIMARY KEY,
    topic        text        NOT NULL,
    key          text,
    payload      bytea,
    payload_kind "char"      NOT NULL,
    headers      jsonb,
    created_at   timestamptz NOT NULL,
    held_at      timestamptz NOT NULL DEFAULT now(),
    event_uuid   uuid,
    partition    integer     NOT NULL DEFAULT -1
);
CREATE INDEX held_event_queue_idx ON outbox.held_event (topic, partition, id);
COMMENT ON TABLE outbox.held_event IS
    'Events of held topics and partitions, waiting in id order for Kafka to accept them';
COMMENT ON COLUMN outbox.held_event.partition IS
    'The held partition whose queue the event is in; -1: its whole topic''s';

------------------------------------------------------------------------
-- Topic grants: which roles may publish to which topics (section "Topic
-- grants" below).  A new installation grants nothing.
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

-- pg_dump keeps pending events, progress, dead letters, held events and
-- topic grants
SELECT pg_catalog.pg_extension_config_dump('outbox.event_0', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.event_1', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.event_2', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.held_topic', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.held_event', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.topic_grant', '');

------------------------------------------------------------------------
-- Enqueue path (C).  enqueue and capture run as their caller: validation,
-- the topic grant check, conversion of the caller's rows (which may run
-- the caller's casts) and everything else happen with the caller's
-- rights.  Only the one INSERT of the event row runs as the outbox's
-- owner, switched in C as a restricted operation with fully
-- schema-qualified statements, so callers need no rights on the tables
-- and no code of theirs ever runs elevated.
------------------------------------------------------------------------

CREATE FUNCTION outbox.enqueue(topic text, payload jsonb,
                               key text DEFAULT NULL, headers jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY INVOKER
AS 'MODULE_PATHNAME', 'outbox_enqueue_jsonb';

CREATE FUNCTION outbox.enqueue(topic text, payload text,
                               key text DEFAULT NULL, headers jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY INVOKER
AS 'MODULE_PATHNAME', 'outbox_enqueue_text';

CREATE FUNCTION outbox.enqueue(topic text, payload bytea,
                               key text DEFAULT NULL, headers jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY INVOKER
AS 'MODULE_PATHNAME', 'outbox_enqueue_bytea';

COMMENT ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb) IS
    'Enqueue a JSON event in the current transaction; returns its id';
COMMENT ON FUNCTION outbox.enqueue(text, text, text, jsonb) IS
    'Enqueue a text event in the current transaction; returns its id';
COMMENT ON FUNCTION outbox.enqueue(text, bytea, text, jsonb) IS
    'Enqueue a binary event in the current transaction; returns its id';

CREATE FUNCTION outbox.capture()
RETURNS trigger
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY INVOKER
AS 'MODULE_PATHNAME', 'outbox_capture';
COMMENT ON FUNCTION outbox.capture() IS
    'Row trigger: capture(topic, key_column [, ...]) publishes each row change as a JSON envelope';

-- The outbox-event-id of the last event the current transaction enqueued.
CREATE FUNCTION outbox.last_event_id()
RETURNS uuid
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'outbox_last_event_id';
COMMENT ON FUNCTION outbox.last_event_id() IS
    'The outbox-event-id of the last event this transaction enqueued (enqueue or capture); NULL if none';

-- Insert a dead letter again, as stored, keeping its event identity (a new
-- one when it has none); no validation, no topic grant check.
CREATE FUNCTION outbox._requeue_event(topic text, key text, payload bytea,
                                      payload_kind "char", headers jsonb,
                                      event_uuid uuid)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'outbox_requeue_event';

CREATE FUNCTION outbox._is_preloaded()
RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'outbox_is_preloaded';

------------------------------------------------------------------------
-- Snapshot batching as two plain SQL functions that the planner inlines
-- into its callers.  The relay worker keeps the open batch in memory and
-- reads the event tables by index in C (event_scan.c), computing exactly
-- what these two define; the regression and isolation tests hold them to
-- the documented semantics.  They are STABLE, LANGUAGE sql, single SELECTs
-- and carry no SET clause: that is what lets them be inlined.  Only the
-- outbox's owner may call them, and every caller pins search_path to
-- pg_catalog first.
------------------------------------------------------------------------

-- The batch of tick after prev_tick: the first and last id and the number
-- of events visible in tick and not in prev_tick (the ids NULL when there
-- is none): events whose txid is visible in tick and either at or past
-- prev_tick's xmax, or in progress at prev_tick.  Implemented once, in C
-- (src/event_scan.c), for the relay and for SQL.
CREATE FUNCTION outbox._batch_bounds(prev_tick pg_snapshot, tick pg_snapshot)
RETURNS TABLE (first_id bigint, last_id bigint, events bigint)
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'outbox_batch_bounds_sql';
COMMENT ON FUNCTION outbox._batch_bounds(pg_snapshot, pg_snapshot) IS
    'Relay internals: first id, last id and number of the events visible in tick and not in prev_tick';

-- The events of the batch of tick after prev_tick with after_id < id <=
-- last_id, in id order: at most max_events and, beyond the first, at most
-- max_bytes (NULL: no bound) of payload and key (raw lengths) and headers
-- (stored size).  The same C code the relay reads its chunks with.
CREATE FUNCTION outbox._batch_events(prev_tick pg_snapshot, tick pg_snapshot,
                                     after_id bigint, last_id bigint,
                                     max_events integer, max_bytes bigint)
RETURNS SETOF outbox.event
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'outbox_batch_events_sql';
COMMENT ON FUNCTION outbox._batch_events(pg_snapshot, pg_snapshot, bigint, bigint, integer, bigint) IS
    'Relay internals: the events of a batch in an id range, in id order, bounded by count and bytes';

------------------------------------------------------------------------
-- The relay's writes for what is rare: dead letters, held topics and
-- storage maintenance (relay_storage.c calls them through kept plans).
------------------------------------------------------------------------

-- Move one event of the open batch to the dead letters.
CREATE FUNCTION outbox.dead_letter(event_id bigint, error text, attempts integer DEFAULT 1)
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
COMMENT ON FUNCTION outbox.dead_letter(bigint, text, integer) IS
    'Relay API: copy an event to outbox.dead_letters with the reason it failed';

-- Move events of the open batch to the held queue of topic's partition
-- (-1: of the whole topic), recording why it is held; returns how many
-- moved.  Events already held stay.
CREATE FUNCTION outbox.hold_events(event_ids bigint[], topic text, partition integer,
                                   reason text, error_class text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO outbox.held_topic AS h (topic, partition, reason, error_class)
    VALUES (hold_events.topic, hold_events.partition, hold_events.reason,
            hold_events.error_class)
    ON CONFLICT ON CONSTRAINT held_topic_pkey DO UPDATE
       SET reason = excluded.reason, error_class = excluded.error_class
     WHERE h.reason IS DISTINCT FROM excluded.reason
        OR h.error_class IS DISTINCT FROM excluded.error_class;
    INSERT INTO outbox.held_event AS h
           (id, topic, key, payload, payload_kind, headers, created_at, event_uuid,
            partition)
    SELECT e.id, e.topic, e.key, e.payload, e.payload_kind, e.headers, e.created_at,
           e.event_uuid, hold_events.partition
      FROM outbox.event e
     WHERE e.id = ANY (event_ids)
    ON CONFLICT ON CONSTRAINT held_event_pkey DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION outbox.hold_events(bigint[], text, integer, text, text) IS
    'Relay API: move events to the held queue of a topic or partition, holding it';

-- The head of a held queue, in id order: at most max_events events and,
-- beyond the first, at most max_bytes of payload, key and headers.
CREATE FUNCTION outbox.held_events(topic text, partition integer DEFAULT -1,
                                   max_events integer DEFAULT 1000,
                                   max_bytes bigint DEFAULT NULL)
RETURNS SETOF outbox.held_event
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT s.id, s.topic, s.key, s.payload, s.payload_kind, s.headers,
           s.created_at, s.held_at, s.event_uuid, s.partition
      FROM (SELECT h.*,
                   sum(coalesce(octet_length(h.payload), 0) + coalesce(octet_length(h.key), 0)
                       + coalesce(pg_column_size(h.headers), 0))
                       OVER (ORDER BY h.id) AS upto,
                   row_number() OVER (ORDER BY h.id) AS n
              FROM (SELECT * FROM outbox.held_event h
                     WHERE h.topic = held_events.topic
                       AND h.partition = held_events.partition
                     ORDER BY h.id
                     LIMIT greatest(max_events, 1)) h) s
     WHERE max_bytes IS NULL OR s.upto <= max_bytes OR s.n = 1
     ORDER BY s.id;
$$;
COMMENT ON FUNCTION outbox.held_events(text, integer, integer, bigint) IS
    'Relay API: the next events of a held topic or partition, in id order';

-- Forget held events that were published; release their topic or
-- partition when its queue is empty and release is true.  Returns true
-- when released.  last_attempt_at is written at most every 10 s: a queue
-- worked for hours under a long snapshot leaves few dead row versions.
CREATE FUNCTION outbox.release_held_events(topic text, partition integer, event_ids bigint[],
                                           release boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    DELETE FROM outbox.held_event h WHERE h.id = ANY (event_ids);
    IF release AND NOT EXISTS (SELECT 1 FROM outbox.held_event h
                                WHERE h.topic = release_held_events.topic
                                  AND h.partition = release_held_events.partition) THEN
        DELETE FROM outbox.held_topic h
         WHERE h.topic = release_held_events.topic
           AND h.partition = release_held_events.partition;
        RETURN true;
    END IF;
    UPDATE outbox.held_topic h SET last_attempt_at = now()
     WHERE h.topic = release_held_events.topic
       AND h.partition = release_held_events.partition
       AND (h.last_attempt_at IS NULL OR h.last_attempt_at < now() - interval '10 s');
    RETURN false;
END
$$;
COMMENT ON FUNCTION outbox.release_held_events(text, integer, bigint[], boolean) IS
    'Relay API: drop published events from a held queue; release the topic or partition once its queue is empty';

-- Record a failed attempt to publish a held queue (at most every 10 s
-- unless the reason changed).
CREATE FUNCTION outbox.note_held_attempt(topic text, partition integer, reason text,
                                         error_class text)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE outbox.held_topic h
       SET last_attempt_at = now(), reason = note_held_attempt.reason,
           error_class = note_held_attempt.error_class
     WHERE h.topic = note_held_attempt.topic
       AND h.partition = note_held_attempt.partition
       AND (h.last_attempt_at IS NULL OR h.last_attempt_at < now() - interval '10 s'
            OR h.reason IS DISTINCT FROM note_held_attempt.reason
            OR h.error_class IS DISTINCT FROM note_held_attempt.error_class);
$$;

-- Give up on held events: those of event_ids, or (event_ids NULL) the
-- whole queue of topic's partition, which also releases it.  They move to
-- the dead letters in id order with the reason.  Returns how many.
CREATE FUNCTION outbox.dead_letter_held(topic text, partition integer, error text,
                                        attempts integer DEFAULT 1,
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
       AND h.partition = dead_letter_held.partition
       AND (event_ids IS NULL OR h.id = ANY (event_ids))
     ORDER BY h.id
    ON CONFLICT (id) DO UPDATE
       SET failed_at = now(), attempts = excluded.attempts, error = excluded.error;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM outbox.held_event h
     WHERE h.topic = dead_letter_held.topic
       AND h.partition = dead_letter_held.partition
       AND (event_ids IS NULL OR h.id = ANY (event_ids));
    IF event_ids IS NULL THEN
        DELETE FROM outbox.held_topic h
         WHERE h.topic = dead_letter_held.topic
           AND h.partition = dead_letter_held.partition;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION outbox.dead_letter_held(text, integer, text, integer, bigint[]) IS
    'Relay API: move the whole queue of a held topic or partition to outbox.dead_letters and release it';

CREATE VIEW outbox.held_topics AS
SELECT t.topic,
       nullif(t.partition, -1) AS partition,
       t.held_since,
       t.reason,
       t.error_class,
       (SELECT count(*) FROM outbox.held_event e
         WHERE e.topic = t.topic AND e.partition = t.partition) AS held_events,
       (SELECT min(e.created_at) FROM outbox.held_event e
         WHERE e.topic = t.topic AND e.partition = t.partition) AS oldest_event_at,
       t.last_attempt_at
  FROM outbox.held_topic t;
COMMENT ON VIEW outbox.held_topics IS
    'Topics and partitions (partition NULL: the whole topic) the relay holds aside while Kafka refuses them, with their waiting events';

-- Does event table table_no hold any row?
CREATE FUNCTION outbox._event_table_busy(table_no smallint)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    busy boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM outbox.event_%s)', table_no) INTO busy;
    RETURN busy;
END
$$;

-- Storage maintenance: truncate retired tables whose events are all
-- covered by the last completed tick (after retention), then switch to the
-- next table once the current one is older than rotation_interval; and
-- rewrite the relay's small tables once dead row versions an old snapshot
-- kept alive have made them grow (G8).
CREATE FUNCTION outbox.maintain(rotate_now boolean DEFAULT false,
                                OUT rotated_to smallint, OUT truncated smallint[],
                                OUT current_table smallint)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    rot        outbox.rotation;
    st         outbox.relay_state;
    et         outbox.event_table;
    tbl        text;
    busy       boolean;
    nxt        smallint;
    held       outbox.held_topic[];
    interval_s interval := coalesce(current_setting('outbox_kafka.rotation_interval', true), '60s')::interval;
    retention  interval := coalesce(current_setting('outbox_kafka.retention', true), '0')::interval;
BEGIN
    truncated := '{}';
    -- look first without locking anything: an idle relay must not use a
    -- transaction id or write WAL every time it looks
    SELECT * INTO rot FROM outbox.rotation;
    IF NOT rotate_now
       AND NOT (now() - rot.rotated_at >= interval_s
                AND outbox._event_table_busy(rot.current_table))
       AND NOT EXISTS (SELECT 1 FROM outbox.event_table t
                        WHERE t.table_no <> rot.current_table
                          AND (t.retired_at IS NULL OR now() - t.retired_at >= retention)
                          AND outbox._event_table_busy(t.table_no))
       AND pg_relation_size('outbox.relay_state') <= 512 * 1024
       AND pg_relation_size('outbox.held_topic') <= 256 * 1024
       AND NOT (pg_relation_size('outbox.held_event') > 256 * 1024
                AND NOT EXISTS (SELECT 1 FROM outbox.held_event)) THEN
        current_table := rot.current_table;
        RETURN;
    END IF;
    SELECT * INTO rot FROM outbox.rotation FOR UPDATE;
    SELECT * INTO st FROM outbox.relay_state;

    FOR et IN SELECT * FROM outbox.event_table ORDER BY table_no LOOP
        CONTINUE WHEN et.table_no = rot.current_table;
        CONTINUE WHEN et.retired_at IS NOT NULL AND now() - et.retired_at < retention;
        tbl := format('outbox.event_%s', et.table_no);
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', tbl) INTO busy;
        CONTINUE WHEN NOT busy;
        BEGIN
            -- never queue for the lock: enqueuers would queue behind us
            EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT', tbl);
            -- under the lock no new row can appear: is every row published?
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE txid >= pg_snapshot_xmin($1)'
                           ' AND NOT pg_visible_in_snapshot(txid, $1))', tbl)
               INTO busy USING st.prev_tick;
            IF NOT busy THEN
                EXECUTE format('TRUNCATE %s', tbl);
                UPDATE outbox.event_table
                   SET truncated_at = now(), retired_at = NULL
                 WHERE table_no = et.table_no;
                truncated := truncated || et.table_no;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            NULL;               -- in use right now; try again next time
        END;
    END LOOP;

    IF rotate_now OR now() - rot.rotated_at >= interval_s THEN
        nxt := (rot.current_table + 1) % 3;
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM outbox.event_%s)', rot.current_table)
           INTO busy;
        -- rotate only away from a table with events, and only into an empty one
        IF busy OR rotate_now THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM outbox.event_%s)', nxt) INTO busy;
            IF NOT busy THEN
                UPDATE outbox.rotation SET current_table = nxt, rotated_at = now();
                UPDATE outbox.event_table SET retired_at = now()
                 WHERE table_no = rot.current_table;
                rotated_to := nxt;
            END IF;
        END IF;
    END IF;
    current_table := coalesce(rotated_to, rot.current_table);

    -- relay_state is updated by every batch; while an old snapshot elsewhere
    -- keeps its dead row versions alive it grows, so once it has grown past
    -- 512 kB it is rewritten: TRUNCATE does not wait for old snapshots.
    IF pg_relation_size('outbox.relay_state') > 512 * 1024 THEN
        BEGIN
            LOCK TABLE outbox.relay_state IN ACCESS EXCLUSIVE MODE NOWAIT;
            SELECT * INTO st FROM outbox.relay_state;
            TRUNCATE outbox.relay_state;
            INSERT INTO outbox.relay_state SELECT (st).*;
        EXCEPTION WHEN lock_not_available THEN
            NULL;               -- in use right now; try again next time
        END;
    END IF;

    -- held_event is a queue (its rows are deleted as they are published)
    -- and held_topic's rows are updated while their queues are worked:
    -- under an old snapshot both keep dead row versions too.  held_event
    -- is emptied for good once every queue is empty (its dead versions
    -- are then at most one hold's worth of events); held_topic, a few
    -- rows, is rewritten like relay_state.
    IF pg_relation_size('outbox.held_event') > 256 * 1024
       AND NOT EXISTS (SELECT 1 FROM outbox.held_event) THEN
        BEGIN
            LOCK TABLE outbox.held_event IN ACCESS EXCLUSIVE MODE NOWAIT;
            IF NOT EXISTS (SELECT 1 FROM outbox.held_event) THEN
                TRUNCATE outbox.held_event;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            NULL;               -- in use right now; try again next time
        END;
    END IF;
    IF pg_relation_size('outbox.held_topic') > 256 * 1024 THEN
        BEGIN
            LOCK TABLE outbox.held_topic IN ACCESS EXCLUSIVE MODE NOWAIT;
            held := ARRAY(SELECT h FROM outbox.held_topic h);
            TRUNCATE outbox.held_topic;
            INSERT INTO outbox.held_topic SELECT * FROM unnest(held);
        EXCEPTION WHEN lock_not_available THEN
            NULL;               -- in use right now; try again next time
        END;
    END IF;
END
$$;
COMMENT ON FUNCTION outbox.maintain(boolean) IS
    'Relay API: truncate fully published event tables, rotate to the next one, rewrite grown relay tables';

------------------------------------------------------------------------
-- Dead letter re-queueing.
------------------------------------------------------------------------

CREATE FUNCTION outbox.requeue_dead_letters(ids bigint[] DEFAULT NULL)
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
-- Topic grants.  outbox.enqueue and outbox.capture publish to a topic only
-- for a role granted it here (exactly, by prefix, or all topics), for a
-- member of such a role, for the outbox's owner and for superusers; anyone
-- else gets SQLSTATE 42501.  Each backend caches the grants; the trigger
-- below makes every backend reload them once a change commits.
------------------------------------------------------------------------

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

------------------------------------------------------------------------
-- Status.
------------------------------------------------------------------------

CREATE FUNCTION outbox.worker_status(
    OUT state text, OUT worker_pid integer, OUT worker_started_at timestamptz,
                                     OUT events_published bigint, OUT events_retried bigint,
                                     OUT events_dead_lettered bigint, OUT events_failed bigint,
                                     OUT last_error text, OUT last_error_at timestamptz,
                                     OUT last_publish_at timestamptz, OUT problem text, OUT hint text)
RETURNS record
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'outbox_worker_status';

-- The librdkafka the relay runs with: the library this server loaded for
-- outbox_kafka (docs/kafka.md says which versions have which defects).
CREATE FUNCTION outbox.librdkafka_version()
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'outbox_librdkafka_version_sql';
COMMENT ON FUNCTION outbox.librdkafka_version() IS
    'The version of librdkafka the relay runs with';

-- Storage figures.  Exact pending counts stop at 10 000 so the view stays
-- fast with millions pending; above that the count is estimated from ids.
-- Held topics and their events count as not yet published.
CREATE FUNCTION outbox.storage_status(
    OUT pending_events bigint, OUT pending_events_exact boolean,
                                      OUT oldest_pending_at timestamptz, OUT dead_letters bigint,
                                      OUT current_table smallint, OUT last_rotation_at timestamptz,
                                      OUT last_tick_at timestamptz, OUT held_topics bigint, OUT held_events bigint)
RETURNS record
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    cap         constant bigint := 10000;
    st          outbox.relay_state;
    horizon     pg_snapshot;
    lo          xid8;
    in_progress xid8[];
    after_n     bigint;
    oldest_a    timestamptz;
    oldest_b    timestamptz;
BEGIN
    SELECT * INTO st FROM outbox.relay_state;
    SELECT r.current_table, r.rotated_at INTO current_table, last_rotation_at
      FROM outbox.rotation r;
    SELECT count(*) INTO dead_letters FROM outbox.dead_letters;
    last_tick_at := st.prev_tick_at;
    SELECT count(*) INTO held_topics FROM outbox.held_topic;
    SELECT count(*) INTO held_events FROM (SELECT 1 FROM outbox.held_event LIMIT cap) h;
    -- the oldest event not yet in Kafka may be a held one
    SELECT min(h.created_at) INTO oldest_b FROM outbox.held_event h;

    -- events after the open batch (or after the last tick if none is open):
    -- transactions that started after that tick, and those in progress then
    horizon := coalesce(st.cur_tick, st.prev_tick);
    lo := pg_snapshot_xmax(horizon);
    in_progress := ARRAY(SELECT pg_snapshot_xip(horizon));
    SELECT count(*) INTO after_n FROM (
        SELECT 1 FROM outbox.event e WHERE e.txid >= lo
        UNION ALL
        SELECT 1 FROM outbox.event e WHERE e.txid = ANY (in_progress)
         LIMIT cap + 1) s;
    oldest_pending_at := least(oldest_b,
        (SELECT e.created_at FROM outbox.event e WHERE e.txid >= lo ORDER BY e.txid LIMIT 1),
        (SELECT min(e.created_at) FROM outbox.event e WHERE e.txid = ANY (in_progress)));

    pending_events_exact := after_n <= cap;
    IF pending_events_exact THEN
        pending_events := after_n;
    ELSE
        pending_events := greatest(after_n,
            (SELECT s.last_value FROM outbox.event_id_seq s)
            - greatest(st.published_max_id, coalesce(st.batch_last_id, 0)));
    END IF;

    IF st.cur_tick IS NOT NULL THEN
        pending_events := pending_events + st.batch_events - st.batch_done_events;
        SELECT least(oldest_pending_at, e.created_at) INTO oldest_pending_at
          FROM outbox.event e
         WHERE e.id > st.batch_done_id AND e.id <= st.batch_last_id
           AND pg_visible_in_snapshot(e.txid, st.cur_tick)
           AND NOT pg_visible_in_snapshot(e.txid, st.prev_tick)
         ORDER BY e.id LIMIT 1;
    END IF;
    -- events waiting in the queues of held topics are not in Kafka either
    pending_events := pending_events + held_events;
    pending_events_exact := pending_events_exact AND held_events < cap;
END
$$;

CREATE VIEW outbox.status AS
SELECT current_database()::name        AS database,
       w.state,
       w.worker_pid,
       s.pending_events,
       s.pending_events_exact,
       clock_timestamp() - s.oldest_pending_at AS oldest_pending_age,
       w.events_published,
       w.events_retried,
       w.events_dead_lettered,
       w.events_failed,
       s.dead_letters,
       w.last_error,
       w.last_error_at,
       w.last_publish_at,
       s.current_table,
       s.last_rotation_at,
       s.last_tick_at,
       w.worker_started_at,
       w.problem,
       w.hint,
       s.held_topics,
       s.held_events
  FROM outbox.worker_status() w, outbox.storage_status() s;
COMMENT ON VIEW outbox.status IS
    'The relay of this database: state, backlog, counters and errors';

------------------------------------------------------------------------
-- Privileges: nothing is open to PUBLIC but outbox.last_event_id, which
-- only shows the caller's own transaction.  Application roles get
--   GRANT EXECUTE ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb),
--         outbox.enqueue(text, text, text, jsonb),
--         outbox.enqueue(text, bytea, text, jsonb) TO app_role;
--   SELECT outbox.grant_topic('app_role', 'orders.*');
-- (docs/security.md); monitoring roles read outbox.status,
-- outbox.held_topics and outbox.topic_grants via pg_monitor.
------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA outbox FROM PUBLIC;

GRANT EXECUTE ON FUNCTION outbox.last_event_id() TO PUBLIC;
GRANT SELECT ON outbox.status, outbox.held_topics, outbox.topic_grants TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.worker_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.storage_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.librdkafka_version() TO pg_monitor;

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
                 CHECK (on_poison IN ('dead_letter', 'hold', 'hold_key')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- 0.7: dead letters are also enqueued to this topic (outbox.enqueue)
    dead_letter_topic text
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
                                 on_poison text DEFAULT 'dead_letter',
                                 dead_letter_topic text DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'outbox_inbox_subscribe';
COMMENT ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text) IS
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

CREATE VIEW outbox.subscriptions AS
SELECT s.name AS subscription, s.topic, s.handler, s.owner, s.max_attempts,
       s.on_poison, s.created_at, s.dead_letter_topic
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
REVOKE ALL ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text),
    outbox.unsubscribe(text), outbox.inbox_rewind(text, integer, bigint),
    outbox.inbox_worker_status(), outbox.inbox_watermarks() FROM PUBLIC;
GRANT SELECT ON outbox.inbox_status, outbox.subscriptions TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.inbox_worker_status(), outbox.inbox_watermarks() TO pg_monitor;

------------------------------------------------------------------------
-- Say so at once when nothing will be published from this database.
------------------------------------------------------------------------

DO $$
DECLARE
    w record;
BEGIN
    SELECT problem, hint INTO w FROM outbox.worker_status();
    IF w.problem IS NOT NULL THEN
        RAISE WARNING '%', w.problem USING HINT = w.hint;
    END IF;
END
$$;
