/* sql/outbox_kafka--0.2--0.3.sql: upgrade outbox_kafka from 0.2 to 0.3 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION outbox_kafka UPDATE TO '0.3'" to load this file. \quit

------------------------------------------------------------------------
-- Snapshot batching as two plain SQL functions that the planner inlines
-- into its callers: the relay worker keeps the open batch in memory and
-- runs them directly (no PL/pgSQL, no SET clauses per call), and the SQL
-- relay API below is built on the same two, so there is one definition of
-- what a batch holds.  They are STABLE, LANGUAGE sql, single SELECTs and
-- carry no SET clause: that is what lets them be inlined.  Only the
-- outbox's owner may call them, and every caller pins search_path to
-- pg_catalog first.
------------------------------------------------------------------------

-- The batch of tick after prev_tick: the first and last id and the number
-- of events visible in tick and not in prev_tick.  Two index range probes
-- on txid: transactions that started after prev_tick, and those in
-- progress at prev_tick.  All three are NULL/0 when there is none.
CREATE FUNCTION outbox._batch_bounds(prev_tick pg_snapshot, tick pg_snapshot)
RETURNS TABLE (first_id bigint, last_id bigint, events bigint)
LANGUAGE sql STABLE
AS $$
    SELECT min(b.id), max(b.id), count(*)
      FROM (SELECT e.id FROM outbox.event e
             WHERE e.txid >= pg_snapshot_xmax(prev_tick)
               AND e.txid < pg_snapshot_xmax(tick)
               AND pg_visible_in_snapshot(e.txid, tick)
            UNION ALL
            SELECT e.id FROM outbox.event e
             WHERE e.txid = ANY (ARRAY(SELECT pg_snapshot_xip(prev_tick)))
               AND pg_visible_in_snapshot(e.txid, tick)) b
$$;
COMMENT ON FUNCTION outbox._batch_bounds(pg_snapshot, pg_snapshot) IS
    'Relay internals: first id, last id and number of the events visible in tick and not in prev_tick';

-- The events of the batch of tick after prev_tick with after_id < id <=
-- last_id, in id order: at most max_events and, beyond the first, at most
-- max_bytes (NULL: no bound) of payload, key and headers.  The sizes come
-- from the stored lengths: nothing is detoasted to count.
CREATE FUNCTION outbox._batch_events(prev_tick pg_snapshot, tick pg_snapshot,
                                     after_id bigint, last_id bigint,
                                     max_events integer, max_bytes bigint)
RETURNS SETOF outbox.event
LANGUAGE sql STABLE
AS $$
    SELECT s.id, s.txid, s.created_at, s.topic, s.key, s.payload,
           s.payload_kind, s.headers
      FROM (SELECT c.*, sum(c.size) OVER (ORDER BY c.id) AS upto
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
     WHERE max_bytes IS NULL OR s.upto - s.size < max_bytes
     ORDER BY s.id
$$;
COMMENT ON FUNCTION outbox._batch_events(pg_snapshot, pg_snapshot, bigint, bigint, integer, bigint) IS
    'Relay internals: the events of a batch in an id range, in id order, bounded by count and bytes';

CREATE OR REPLACE FUNCTION outbox.next_events(max_events integer DEFAULT 1000,
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
    RETURN QUERY
        SELECT * FROM outbox._batch_events(st.prev_tick, st.cur_tick,
                                           greatest(st.batch_done_id, after_id),
                                           st.batch_last_id, max_events, max_bytes);
END
$$;

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
        SELECT b.first_id, b.last_id, b.events INTO first_id, last_id, events
          FROM outbox._batch_bounds(st.prev_tick, snap) b;

        IF events = 0 THEN
            -- nothing new became visible: the last tick stays as it is, and
            -- nothing is written (no xid, no WAL for an idle relay)
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

COMMENT ON TABLE outbox.relay_state IS
    'Relay progress: prev_tick is the last fully published tick, cur_tick the tick of the open batch (the running relay keeps them in memory and saves them here at most every 100 ms)';

REVOKE ALL ON FUNCTION outbox._batch_bounds(pg_snapshot, pg_snapshot),
    outbox._batch_events(pg_snapshot, pg_snapshot, bigint, bigint, integer, bigint) FROM PUBLIC;
