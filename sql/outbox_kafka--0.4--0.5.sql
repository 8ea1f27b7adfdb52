/* sql/outbox_kafka--0.4--0.5.sql: upgrade outbox_kafka from 0.4 to 0.5 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION outbox_kafka UPDATE TO '0.5'" to load this file. \quit

------------------------------------------------------------------------
-- Held partitions.  A partition without a leader (or with too few
-- in-sync replicas, or that stalls) is now held aside by itself: the
-- other partitions of its topic keep flowing.  A topic Kafka refuses as a
-- whole (unknown, not authorised) is still held as a whole, as
-- partition -1.  Holds and queues made by 0.4 are whole-topic holds.
------------------------------------------------------------------------

ALTER TABLE outbox.held_topic ADD COLUMN partition integer NOT NULL DEFAULT -1;
ALTER TABLE outbox.held_topic DROP CONSTRAINT held_topic_pkey;
ALTER TABLE outbox.held_topic ADD CONSTRAINT held_topic_pkey PRIMARY KEY (topic, partition);
COMMENT ON TABLE outbox.held_topic IS
    'Topics and partitions held aside by the relay, since when and why (held_since is the retry clock of outbox_kafka.max_retry_time)';
COMMENT ON COLUMN outbox.held_topic.partition IS
    'The partition held; -1: the whole topic';

ALTER TABLE outbox.held_event ADD COLUMN partition integer NOT NULL DEFAULT -1;
DROP INDEX outbox.held_event_topic_id_idx;
CREATE INDEX held_event_queue_idx ON outbox.held_event (topic, partition, id);
COMMENT ON TABLE outbox.held_event IS
    'Events of held topics and partitions, waiting in id order for Kafka to accept them';
COMMENT ON COLUMN outbox.held_event.partition IS
    'The held partition whose queue the event is in; -1: its whole topic''s';

------------------------------------------------------------------------
-- A batch is defined once: the SQL functions the tests and inspection use
-- now run the relay's own C reads (src/event_scan.c) instead of a second,
-- SQL definition of the same thing.
------------------------------------------------------------------------

DROP FUNCTION outbox._batch_bounds(pg_snapshot, pg_snapshot);
DROP FUNCTION outbox._batch_events(pg_snapshot, pg_snapshot, bigint, bigint, integer, bigint);
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
-- The held-queue functions and view, with the partition.
------------------------------------------------------------------------

DROP VIEW outbox.held_topics;
DROP FUNCTION outbox.hold_events(bigint[], text, text, text);
DROP FUNCTION outbox.held_events(text, integer, bigint);
DROP FUNCTION outbox.release_held_events(text, bigint[], boolean);
DROP FUNCTION outbox.note_held_attempt(text, text, text);
DROP FUNCTION outbox.dead_letter_held(text, text, integer, bigint[]);

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

REVOKE ALL ON outbox.held_topics FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox._batch_bounds(pg_snapshot, pg_snapshot),
    outbox._batch_events(pg_snapshot, pg_snapshot, bigint, bigint, integer, bigint)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox.hold_events(bigint[], text, integer, text, text),
    outbox.held_events(text, integer, integer, bigint),
    outbox.release_held_events(text, integer, bigint[], boolean),
    outbox.note_held_attempt(text, integer, text, text),
    outbox.dead_letter_held(text, integer, text, integer, bigint[]) FROM PUBLIC;
GRANT SELECT ON outbox.held_topics TO pg_monitor;

------------------------------------------------------------------------
-- No bloat from held topics under an old snapshot (G8): maintain also
-- empties held_event once every queue is empty and rewrites held_topic
-- once they have grown.
------------------------------------------------------------------------

-- Storage maintenance: truncate retired tables whose events are all
-- covered by the last completed tick (after retention), then switch to the
-- next table once the current one is older than rotation_interval; and
-- rewrite the relay's small tables once dead row versions an old snapshot
-- kept alive have made them grow (G8).
CREATE OR REPLACE FUNCTION outbox.maintain(rotate_now boolean DEFAULT false,
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
