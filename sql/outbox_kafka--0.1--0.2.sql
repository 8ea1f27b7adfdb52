/* sql/outbox_kafka--0.1--0.2.sql: upgrade outbox_kafka from 0.1 to 0.2 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION outbox_kafka UPDATE TO '0.2'" to load this file. \quit

------------------------------------------------------------------------
-- Held topics.  A topic Kafka refuses for now (unknown, not authorised,
-- no leader, no acknowledgement within outbox_kafka.stall_timeout while
-- the cluster otherwise answers) is held aside: its events move, in id
-- order, to outbox.held_event, the batch cursor goes on past them and
-- every other topic keeps flowing.  While a topic is held, its new events
-- join the queue behind the held ones (order per key is kept); the relay
-- retries the queue's head and releases the topic once the queue is empty.
------------------------------------------------------------------------

CREATE TABLE outbox.held_topic (
    topic           text        PRIMARY KEY,
    held_since      timestamptz NOT NULL DEFAULT now(),
    reason          text        NOT NULL,
    error_class     text        NOT NULL,
    last_attempt_at timestamptz
);
COMMENT ON TABLE outbox.held_topic IS
    'Topics held aside by the relay, since when and why (held_since is the retry clock of outbox_kafka.max_retry_time)';

CREATE TABLE outbox.held_event (
    id           bigint      PRIMARY KEY,
    topic        text        NOT NULL,
    key          text,
    payload      bytea,
    payload_kind "char"      NOT NULL,
    headers      jsonb,
    created_at   timestamptz NOT NULL,
    held_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX held_event_topic_id_idx ON outbox.held_event (topic, id);
COMMENT ON TABLE outbox.held_event IS
    'Events of held topics, waiting in id order for their topic to accept them';

SELECT pg_catalog.pg_extension_config_dump('outbox.held_topic', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.held_event', '');

-- Move events of the open batch to the held queue of topic (recording why
-- the topic is held); returns how many moved.  Events already held stay.
CREATE FUNCTION outbox.hold_events(event_ids bigint[], topic text, reason text,
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
           (id, topic, key, payload, payload_kind, headers, created_at)
    SELECT e.id, e.topic, e.key, e.payload, e.payload_kind, e.headers, e.created_at
      FROM outbox.event e
     WHERE e.id = ANY (event_ids)
    ON CONFLICT ON CONSTRAINT held_event_pkey DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION outbox.hold_events(bigint[], text, text, text) IS
    'Relay API: move events to the held queue of their topic, holding the topic';

-- The head of a held topic's queue, in id order: at most max_events events
-- and, beyond the first, at most max_bytes of payload, key and headers.
CREATE FUNCTION outbox.held_events(topic text, max_events integer DEFAULT 1000,
                                   max_bytes bigint DEFAULT NULL)
RETURNS SETOF outbox.held_event
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT s.id, s.topic, s.key, s.payload, s.payload_kind, s.headers,
           s.created_at, s.held_at
      FROM (SELECT h.*,
                   sum(coalesce(octet_length(h.payload), 0) + coalesce(octet_length(h.key), 0)
                       + coalesce(pg_column_size(h.headers), 0))
                       OVER (ORDER BY h.id) AS upto,
                   coalesce(octet_length(h.payload), 0) + coalesce(octet_length(h.key), 0)
                       + coalesce(pg_column_size(h.headers), 0) AS size
              FROM (SELECT * FROM outbox.held_event h
                     WHERE h.topic = held_events.topic
                     ORDER BY h.id
                     LIMIT greatest(max_events, 1)) h) s
     WHERE max_bytes IS NULL OR s.upto - s.size < max_bytes
     ORDER BY s.id;
$$;
COMMENT ON FUNCTION outbox.held_events(text, integer, bigint) IS
    'Relay API: the next events of a held topic, in id order';

-- Forget held events that were published; release their topic when its
-- queue is empty and release_topic is true.  Returns true when released.
CREATE FUNCTION outbox.release_held_events(topic text, event_ids bigint[],
                                           release_topic boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
    DELETE FROM outbox.held_event h WHERE h.id = ANY (event_ids);
    IF release_topic AND NOT EXISTS (SELECT 1 FROM outbox.held_event h
                                      WHERE h.topic = release_held_events.topic) THEN
        DELETE FROM outbox.held_topic h WHERE h.topic = release_held_events.topic;
        RETURN true;
    END IF;
    UPDATE outbox.held_topic h SET last_attempt_at = now()
     WHERE h.topic = release_held_events.topic;
    RETURN false;
END
$$;
COMMENT ON FUNCTION outbox.release_held_events(text, bigint[], boolean) IS
    'Relay API: drop published events from a held queue; release the topic once its queue is empty';

-- Record a failed attempt to publish a held topic's queue.
CREATE FUNCTION outbox.note_held_attempt(topic text, reason text, error_class text)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE outbox.held_topic h
       SET last_attempt_at = now(), reason = note_held_attempt.reason,
           error_class = note_held_attempt.error_class
     WHERE h.topic = note_held_attempt.topic;
$$;

-- Give up on held events: those of event_ids, or (event_ids NULL) the
-- topic's whole queue, which also releases the topic.  They move to the
-- dead letters in id order with the reason.  Returns how many.
CREATE FUNCTION outbox.dead_letter_held(topic text, error text, attempts integer DEFAULT 1,
                                        event_ids bigint[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO outbox.dead_letters
           (id, topic, key, payload, payload_kind, headers, created_at, attempts, error)
    SELECT h.id, h.topic, h.key, h.payload, h.payload_kind, h.headers, h.created_at,
           dead_letter_held.attempts, dead_letter_held.error
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
COMMENT ON FUNCTION outbox.dead_letter_held(text, text, integer, bigint[]) IS
    'Relay API: move the whole queue of a held topic to outbox.dead_letters and release the topic';

CREATE VIEW outbox.held_topics AS
SELECT t.topic,
       t.held_since,
       t.reason,
       t.error_class,
       (SELECT count(*) FROM outbox.held_event e WHERE e.topic = t.topic) AS held_events,
       (SELECT min(e.created_at) FROM outbox.held_event e WHERE e.topic = t.topic) AS oldest_event_at,
       t.last_attempt_at
  FROM outbox.held_topic t;
COMMENT ON VIEW outbox.held_topics IS
    'Topics the relay holds aside while Kafka refuses them, with their waiting events';

------------------------------------------------------------------------
-- Chunks bounded by bytes as well as by count.
------------------------------------------------------------------------

DROP FUNCTION outbox.next_events(integer, bigint);

-- The next chunk of the open batch, in id order: events after the last
-- acknowledged one, or after after_id if that is further (the relay reads
-- ahead while the previous chunk is still being delivered): at most
-- max_events events and, beyond the first, at most max_bytes of payload,
-- key and headers, so the relay's memory is bounded whatever the events.
CREATE FUNCTION outbox.next_events(max_events integer DEFAULT 1000,
                                   after_id bigint DEFAULT NULL,
                                   max_bytes bigint DEFAULT NULL)
RETURNS SETOF outbox.event
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET enable_sort = off
SET enable_bitmapscan = off
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    st outbox.relay_state;
BEGIN
    IF max_events IS NULL OR max_events < 1 THEN
        RAISE EXCEPTION 'max_events must be at least 1'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO st FROM outbox.relay_state;
    IF st.cur_tick IS NULL THEN
        RETURN;
    END IF;
    IF max_bytes IS NULL THEN
        RETURN QUERY
            SELECT e.*
              FROM outbox.event e
             WHERE e.id > greatest(st.batch_done_id, after_id)
               AND e.id <= st.batch_last_id
               AND pg_visible_in_snapshot(e.txid, st.cur_tick)
               AND NOT pg_visible_in_snapshot(e.txid, st.prev_tick)
             ORDER BY e.id
             LIMIT max_events;
        RETURN;
    END IF;
    -- the sizes come from the stored lengths: nothing is detoasted to count
    RETURN QUERY
        SELECT s.id, s.txid, s.created_at, s.topic, s.key, s.payload,
               s.payload_kind, s.headers
          FROM (SELECT c.*,
                       sum(c.size) OVER (ORDER BY c.id) AS upto
                  FROM (SELECT e.*,
                               coalesce(octet_length(e.payload), 0) + coalesce(octet_length(e.key), 0)
                               + coalesce(pg_column_size(e.headers), 0) AS size
                          FROM outbox.event e
                         WHERE e.id > greatest(st.batch_done_id, after_id)
                           AND e.id <= st.batch_last_id
                           AND pg_visible_in_snapshot(e.txid, st.cur_tick)
                           AND NOT pg_visible_in_snapshot(e.txid, st.prev_tick)
                         ORDER BY e.id
                         LIMIT max_events) c) s
         WHERE s.upto - s.size < max_bytes
         ORDER BY s.id;
END
$$;
COMMENT ON FUNCTION outbox.next_events(integer, bigint, bigint) IS
    'Relay API: the next events of the open batch after the last acknowledged one (or after after_id), in id order, bounded by count and bytes';

------------------------------------------------------------------------
-- An idle relay writes nothing: open_batch and maintain lock (and so use
-- a transaction id and write WAL) only when they have something to change.
------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION outbox.open_batch(OUT tick pg_snapshot, OUT prev_tick pg_snapshot,
                                             OUT first_id bigint, OUT last_id bigint,
                                             OUT events bigint, OUT done_id bigint)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    st          outbox.relay_state;
    snap        pg_snapshot;
    lo          xid8;
    hi          xid8;
    in_progress xid8[];
    locked      boolean := false;
BEGIN
    SELECT * INTO st FROM outbox.relay_state;
    LOOP
        IF st.cur_tick IS NOT NULL THEN
            tick := st.cur_tick;
            prev_tick := st.prev_tick;
            first_id := st.batch_first_id;
            last_id := st.batch_last_id;
            events := st.batch_events;
            done_id := st.batch_done_id;
            RETURN;
        END IF;

        snap := pg_current_snapshot();
        lo := pg_snapshot_xmax(st.prev_tick);
        hi := pg_snapshot_xmax(snap);
        in_progress := ARRAY(SELECT pg_snapshot_xip(st.prev_tick));
        -- two index range probes on txid: transactions that started after
        -- the last tick, and those that were in progress at the last tick
        SELECT min(b.id), max(b.id), count(*)
          INTO first_id, last_id, events
          FROM (SELECT e.id FROM outbox.event e
                 WHERE e.txid >= lo AND e.txid < hi
                   AND pg_visible_in_snapshot(e.txid, snap)
                UNION ALL
                SELECT e.id FROM outbox.event e
                 WHERE e.txid = ANY (in_progress)
                   AND pg_visible_in_snapshot(e.txid, snap)) b;

        IF events = 0 THEN
            -- nothing new became visible: the last tick stays as it is, and
            -- nothing is written (no xid, no WAL for an idle relay)
            first_id := NULL;
            last_id := NULL;
            RETURN;
        END IF;
        EXIT WHEN locked;
        -- something to open: lock the progress row, then look again
        SELECT * INTO st FROM outbox.relay_state FOR UPDATE;
        locked := true;
    END LOOP;

    UPDATE outbox.relay_state
       SET cur_tick = snap, batch_first_id = first_id, batch_last_id = last_id,
           batch_events = events, batch_done_id = first_id - 1,
           batch_done_events = 0, batch_opened_at = now();
    tick := snap;
    prev_tick := st.prev_tick;
    done_id := first_id - 1;
END
$$;

-- Re-queued dead letters say where they came from: the key's order was
-- given up when the event was dead-lettered (docs/reliability.md).
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
                || jsonb_build_object('outbox-requeued-from', d.id::text));
        DELETE FROM outbox.dead_letters WHERE id = d.id;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

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
       AND pg_relation_size('outbox.relay_state') <= 512 * 1024 THEN
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
END
$$;

------------------------------------------------------------------------
-- Status: held topics and their events count as not yet published.
------------------------------------------------------------------------

DROP VIEW outbox.status;
DROP FUNCTION outbox.storage_status();

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

REVOKE ALL ON outbox.held_topic, outbox.held_event FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox.storage_status(), outbox.hold_events(bigint[], text, text, text),
    outbox.held_events(text, integer, bigint), outbox.release_held_events(text, bigint[], boolean),
    outbox.note_held_attempt(text, text, text), outbox.dead_letter_held(text, text, integer, bigint[]),
    outbox.next_events(integer, bigint, bigint), outbox._event_table_busy(smallint) FROM PUBLIC;
REVOKE ALL ON outbox.status, outbox.held_topics FROM PUBLIC;
GRANT SELECT ON outbox.status, outbox.held_topics TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.storage_status() TO pg_monitor;
