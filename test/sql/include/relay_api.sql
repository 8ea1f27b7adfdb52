-- Shared by the regression tests (\i from the tree root): the relay's batch
-- protocol by hand, for tests without a relay.  The product has no SQL
-- relay API since 0.4 (calling one while the relay ran made it start over);
-- these session-local functions drive outbox.relay_state the way the relay
-- does, on the product's one definition of a batch (outbox._batch_bounds
-- and outbox._batch_events).  They exist only in the test's session.

-- Open the next batch (or return the open one).  A batch with no events
-- leaves the last tick as it is and returns events = 0.
CREATE FUNCTION pg_temp.relay_open_batch(OUT tick pg_snapshot, OUT prev_tick pg_snapshot,
                                         OUT first_id bigint, OUT last_id bigint,
                                         OUT events bigint, OUT done_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    st   outbox.relay_state;
    snap pg_snapshot;
BEGIN
    SELECT * INTO st FROM outbox.relay_state FOR UPDATE;
    IF st.cur_tick IS NULL THEN
        snap := pg_current_snapshot();
        SELECT b.first_id, b.last_id, b.events INTO first_id, last_id, events
          FROM outbox._batch_bounds(st.prev_tick, snap) b;
        IF events = 0 THEN
            RETURN;
        END IF;
        UPDATE outbox.relay_state
           SET cur_tick = snap, batch_first_id = first_id, batch_last_id = last_id,
               batch_events = events, batch_done_id = first_id - 1,
               batch_done_events = 0, batch_opened_at = now()
        RETURNING * INTO st;
    END IF;
    tick := st.cur_tick;
    prev_tick := st.prev_tick;
    first_id := st.batch_first_id;
    last_id := st.batch_last_id;
    events := st.batch_events;
    done_id := st.batch_done_id;
END
$$;

-- The next events of the open batch after the last acknowledged one (or
-- after after_id), in id order, bounded by count and bytes.
CREATE FUNCTION pg_temp.relay_next_events(max_events integer DEFAULT 1000,
                                          after_id bigint DEFAULT NULL,
                                          max_bytes bigint DEFAULT NULL)
RETURNS TABLE (id bigint, txid xid8, created_at timestamptz, topic text, key text,
               payload bytea, payload_kind "char", headers jsonb, event_uuid uuid)
LANGUAGE sql AS $$
    SELECT e.id, e.txid, e.created_at, e.topic, e.key, e.payload, e.payload_kind,
           e.headers, e.event_uuid
      FROM outbox.relay_state st,
           outbox._batch_events(st.prev_tick, st.cur_tick,
                                greatest(st.batch_done_id, after_id),
                                st.batch_last_id, max_events, max_bytes) e
     WHERE st.cur_tick IS NOT NULL
$$;

-- Mark the open batch done up to an event id; true when that completes it.
CREATE FUNCTION pg_temp.relay_ack_events(up_to_id bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    st outbox.relay_state;
BEGIN
    SELECT * INTO st FROM outbox.relay_state FOR UPDATE;
    IF st.cur_tick IS NULL THEN
        RAISE EXCEPTION 'no batch is open'
              USING ERRCODE = 'object_not_in_prerequisite_state';
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
           batch_done_events = batch_done_events
               + (SELECT count(*) FROM outbox._batch_events(st.prev_tick, st.cur_tick,
                                                            st.batch_done_id, up_to_id,
                                                            2147483647, NULL)),
           published_max_id = greatest(published_max_id, up_to_id);
    RETURN false;
END
$$;
