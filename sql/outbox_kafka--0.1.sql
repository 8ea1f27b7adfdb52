/* sql/outbox_kafka--0.1.sql: install script of outbox_kafka 0.1 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION outbox_kafka" to load this file. \quit

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

CREATE TABLE outbox.event (
    id           bigint      NOT NULL DEFAULT nextval('outbox.event_id_seq'),
    txid         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    topic        text        NOT NULL,
    key          text,
    payload      bytea,
    payload_kind "char"      NOT NULL,
    headers      jsonb
);
-- No CHECK constraints on the event tables: the C insert path validates
-- every row, and a CHECK would cost every insert a constraint parse.
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
-- the events visible in T and not in P.
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
    'Relay progress: prev_tick is the last fully published tick, cur_tick the tick of the open batch';

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
    error        text        NOT NULL
);
COMMENT ON TABLE outbox.dead_letters IS
    'Events that could not be published; outbox.requeue_dead_letters() enqueues them again';

-- pg_dump keeps pending events, progress and dead letters
SELECT pg_catalog.pg_extension_config_dump('outbox.event_0', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.event_1', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.event_2', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('outbox.dead_letters', '');

------------------------------------------------------------------------
-- Enqueue path (C).  enqueue and capture run as their caller: validation,
-- conversion of the caller's rows (which may run the caller's casts) and
-- everything else happen with the caller's rights.  Only the one INSERT of
-- the event row runs as the outbox's owner, switched in C as a restricted
-- operation with fully schema-qualified statements, so callers need no
-- rights on the tables and no code of theirs ever runs elevated.
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

CREATE FUNCTION outbox._requeue_event(topic text, key text, payload bytea,
                                      payload_kind "char", headers jsonb)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'outbox_requeue_event';

CREATE FUNCTION outbox._is_preloaded()
RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'outbox_is_preloaded';

------------------------------------------------------------------------
-- Snapshot batching: the relay's internal API, callable from SQL so it
-- can be tested and inspected without Kafka.  Only one caller at a time
-- makes progress: every function locks the relay_state row.
------------------------------------------------------------------------

-- Open the next batch (or return the open one).  A batch with no events
-- completes at once; then events is 0 and the tick columns are NULL.
CREATE FUNCTION outbox.open_batch(OUT tick pg_snapshot, OUT prev_tick pg_snapshot,
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
BEGIN
    SELECT * INTO st FROM outbox.relay_state FOR UPDATE;
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
    -- two index range probes on txid: transactions that started after the
    -- last tick, and those that were in progress at the last tick
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
        -- nothing new became visible: the tick completes at once
        IF snap::text <> st.prev_tick::text THEN
            UPDATE outbox.relay_state
               SET prev_tick = snap, prev_tick_at = now(),
                   batches_done = batches_done + 1;
        END IF;
        first_id := NULL;
        last_id := NULL;
        RETURN;
    END IF;

    UPDATE outbox.relay_state
       SET cur_tick = snap, batch_first_id = first_id, batch_last_id = last_id,
           batch_events = events, batch_done_id = first_id - 1,
           batch_done_events = 0, batch_opened_at = now();
    tick := snap;
    prev_tick := st.prev_tick;
    done_id := first_id - 1;
END
$$;
COMMENT ON FUNCTION outbox.open_batch() IS
    'Relay API: take a tick and open the batch of events that became visible since the last completed tick';

-- The next chunk of the open batch, in id order: events after the last
-- acknowledged one, or after after_id if that is further (the relay reads
-- ahead while the previous chunk is still being delivered).
-- The chunk is always read by walking the id indexes from the cursor:
-- the planner would otherwise sort the whole remaining batch per chunk.
-- (The plan is tiny: JIT would only add compile time to every chunk.)
CREATE FUNCTION outbox.next_events(max_events integer DEFAULT 1000,
                                   after_id bigint DEFAULT NULL)
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
    RETURN QUERY
        SELECT e.*
          FROM outbox.event e
         WHERE e.id > greatest(st.batch_done_id, after_id)
           AND e.id <= st.batch_last_id
           AND pg_visible_in_snapshot(e.txid, st.cur_tick)
           AND NOT pg_visible_in_snapshot(e.txid, st.prev_tick)
         ORDER BY e.id
         LIMIT max_events;
END
$$;
COMMENT ON FUNCTION outbox.next_events(integer, bigint) IS
    'Relay API: the next events of the open batch after the last acknowledged one (or after after_id), in id order';

-- Record that the events of the open batch up to up_to_id (events of them)
-- are published or dead-lettered.  Returns true when that completes the
-- batch, which then becomes the last completed tick.
CREATE FUNCTION outbox.ack_events(up_to_id bigint, events bigint DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    st outbox.relay_state;
BEGIN
    SELECT * INTO st FROM outbox.relay_state FOR UPDATE;
    IF st.cur_tick IS NULL THEN
        RAISE EXCEPTION 'no batch is open'
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'Call outbox.open_batch() first.';
    END IF;
    IF up_to_id IS NULL OR up_to_id <= st.batch_done_id THEN
        RETURN false;
    END IF;

    IF up_to_id >= st.batch_last_id THEN
        UPDATE outbox.relay_state
           SET prev_tick = cur_tick, prev_tick_at = now(), cur_tick = NULL,
               batch_first_id = NULL, batch_last_id = NULL, batch_events = NULL,
               batch_done_id = NULL, batch_done_events = NULL,
               batch_opened_at = NULL, batches_done = batches_done + 1,
               published_max_id = greatest(published_max_id, st.batch_last_id);
        RETURN true;
    END IF;

    UPDATE outbox.relay_state
       SET batch_done_id = up_to_id,
           batch_done_events = batch_done_events + coalesce(events,
               (SELECT count(*) FROM outbox.event e
                 WHERE e.id > st.batch_done_id AND e.id <= up_to_id
                   AND pg_visible_in_snapshot(e.txid, st.cur_tick)
                   AND NOT pg_visible_in_snapshot(e.txid, st.prev_tick))),
           published_max_id = greatest(published_max_id, up_to_id);
    RETURN false;
END
$$;
COMMENT ON FUNCTION outbox.ack_events(bigint, bigint) IS
    'Relay API: mark the open batch done up to an event id; true when the batch is complete';

-- Move one event of the open batch to the dead letters.
CREATE FUNCTION outbox.dead_letter(event_id bigint, error text, attempts integer DEFAULT 1)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO outbox.dead_letters
           (id, topic, key, payload, payload_kind, headers, created_at, attempts, error)
    SELECT e.id, e.topic, e.key, e.payload, e.payload_kind, e.headers, e.created_at,
           attempts, error
      FROM outbox.event e
     WHERE e.id = event_id
    ON CONFLICT (id) DO UPDATE
       SET failed_at = now(), attempts = excluded.attempts, error = excluded.error
    RETURNING true;
$$;
COMMENT ON FUNCTION outbox.dead_letter(bigint, text, integer) IS
    'Relay API: copy an event to outbox.dead_letters with the reason it failed';

-- Storage maintenance: truncate retired tables whose events are all
-- covered by the last completed tick (after retention), then switch to the
-- next table once the current one is older than rotation_interval.
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
    interval_s interval := coalesce(current_setting('outbox_kafka.rotation_interval', true), '60s')::interval;
    retention  interval := coalesce(current_setting('outbox_kafka.retention', true), '0')::interval;
BEGIN
    truncated := '{}';
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
COMMENT ON FUNCTION outbox.maintain(boolean) IS
    'Relay API: truncate fully published event tables and rotate to the next one';

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
        PERFORM outbox._requeue_event(d.topic, d.key, d.payload, d.payload_kind, d.headers);
        DELETE FROM outbox.dead_letters WHERE id = d.id;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION outbox.requeue_dead_letters(bigint[]) IS
    'Enqueue dead letters again as new events (all of them, or those with the given ids); returns how many';

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

-- Storage figures.  Exact pending counts stop at 10 000 so the view stays
-- fast with millions pending; above that the count is estimated from ids.
CREATE FUNCTION outbox.storage_status(
    OUT pending_events bigint, OUT pending_events_exact boolean,
    OUT oldest_pending_at timestamptz, OUT dead_letters bigint,
    OUT current_table smallint, OUT last_rotation_at timestamptz,
    OUT last_tick_at timestamptz)
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
    SELECT e.created_at INTO oldest_a FROM outbox.event e
     WHERE e.txid >= lo ORDER BY e.txid LIMIT 1;
    SELECT min(e.created_at) INTO oldest_b FROM outbox.event e
     WHERE e.txid = ANY (in_progress);
    oldest_pending_at := least(oldest_a, oldest_b);

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
       w.hint
  FROM outbox.worker_status() w, outbox.storage_status() s;
COMMENT ON VIEW outbox.status IS
    'The relay of this database: state, backlog, counters and errors';

------------------------------------------------------------------------
-- Privileges: nothing is open to PUBLIC.  Application roles get
--   GRANT EXECUTE ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb),
--         outbox.enqueue(text, text, text, jsonb),
--         outbox.enqueue(text, bytea, text, jsonb) TO app_role;
-- (docs/security.md); monitoring roles read outbox.status via pg_monitor.
------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA outbox FROM PUBLIC;

GRANT SELECT ON outbox.status TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.worker_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION outbox.storage_status() TO pg_monitor;

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
