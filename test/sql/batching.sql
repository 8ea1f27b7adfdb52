--
-- Snapshot batching by hand, with the test's relay_open_batch /
-- relay_next_events / relay_ack_events (test/sql/include/relay_api.sql)
-- over outbox._batch_bounds and outbox._batch_events.
-- (No relay runs in these tests: the database is not listed.)
--
CREATE EXTENSION outbox_kafka;
\set SHOW_CONTEXT never

\i test/sql/include/sqlstate_of.sql
\set ECHO none
\i test/sql/include/relay_api.sql
\set ECHO all

-- open_batch() without the snapshot values
CREATE FUNCTION pg_temp.open_batch()
RETURNS TABLE (has_tick boolean, has_prev_tick boolean, first_id bigint,
               last_id bigint, events bigint, done_id bigint)
LANGUAGE sql AS $$
    SELECT tick IS NOT NULL, prev_tick IS NOT NULL, first_id, last_id, events, done_id
      FROM pg_temp.relay_open_batch()
$$;
-- relay progress without the snapshot values
CREATE FUNCTION pg_temp.progress()
RETURNS TABLE (batch_open boolean, batch_first_id bigint, batch_last_id bigint,
               batch_events bigint, batch_done_id bigint, batch_done_events bigint,
               batches_done bigint, published_max_id bigint)
LANGUAGE sql AS $$
    SELECT cur_tick IS NOT NULL, batch_first_id, batch_last_id, batch_events,
           batch_done_id, batch_done_events, batches_done, published_max_id
      FROM outbox.relay_state
$$;
CREATE FUNCTION pg_temp.chunk(n integer)
RETURNS TABLE (id bigint, topic text, payload text)
LANGUAGE sql AS $$
    SELECT id, topic, convert_from(payload, 'UTF8') FROM pg_temp.relay_next_events(n)
$$;

------------------------------------------------------------------------
-- Nothing enqueued: the batch is empty and completes at once
------------------------------------------------------------------------
SELECT * FROM pg_temp.progress();
SELECT prev_tick::text = '1:1:' AS initial_tick FROM outbox.relay_state;
SELECT * FROM pg_temp.open_batch();
SELECT * FROM pg_temp.progress();
SELECT prev_tick::text <> '1:1:' AS tick_advanced,
       pg_snapshot_xmax(prev_tick) <= pg_snapshot_xmax(pg_current_snapshot()) AS tick_is_past
  FROM outbox.relay_state;
-- no batch open: nothing to read, nothing to acknowledge
SELECT * FROM pg_temp.chunk(10);
SELECT pg_temp.relay_ack_events(1);
SELECT pg_temp.sqlstate_of('SELECT pg_temp.relay_ack_events(1)');
SELECT pg_temp.sqlstate_of('SELECT pg_temp.relay_ack_events(NULL)');

------------------------------------------------------------------------
-- Events of separate committed transactions form one batch, in id order
------------------------------------------------------------------------
SELECT outbox.enqueue('b', 'e1'::text);
SELECT outbox.enqueue('b', 'e2'::text);
BEGIN;
SELECT outbox.enqueue('b', 'e3'::text);
SELECT outbox.enqueue('other', '"e4"'::jsonb);
COMMIT;
SELECT outbox.enqueue('b', '\x6535'::bytea);
SELECT * FROM pg_temp.open_batch();
SELECT * FROM pg_temp.progress();
-- opening again returns the open batch
SELECT * FROM pg_temp.open_batch();
-- chunks in id order; acknowledging advances
SELECT * FROM pg_temp.chunk(2);
SELECT * FROM pg_temp.chunk(2);          -- not acknowledged yet: the same chunk
SELECT pg_temp.relay_ack_events(2);
SELECT * FROM pg_temp.progress();
SELECT * FROM pg_temp.open_batch();      -- still the same batch, done_id moved
SELECT * FROM pg_temp.chunk(2);
SELECT pg_temp.relay_ack_events(4);
SELECT pg_temp.relay_ack_events(3);             -- behind the acknowledged position: no-op
SELECT pg_temp.relay_ack_events(NULL);          -- no-op
SELECT * FROM pg_temp.progress();
SELECT * FROM pg_temp.chunk(2);
SELECT pg_temp.relay_ack_events(5);             -- the last one: batch complete
SELECT * FROM pg_temp.progress();
SELECT * FROM pg_temp.chunk(2);          -- nothing open any more
-- all published: the next batch is empty
SELECT * FROM pg_temp.open_batch();
SELECT batches_done FROM outbox.relay_state;

-- the columns next_events returns are the event's
SELECT outbox.enqueue('cols', '{"x": 1}'::jsonb, 'k', '{"h": "v"}');
SELECT events FROM pg_temp.relay_open_batch();
SELECT id, topic, key, convert_from(payload, 'UTF8') AS payload, payload_kind, headers,
       txid IS NOT NULL AS has_txid, created_at <= now() AS created_before,
       event_uuid IS NOT NULL AS has_event_uuid
  FROM pg_temp.relay_next_events();
-- acknowledging past the end completes the batch as well
SELECT pg_temp.relay_ack_events(1000);
SELECT * FROM pg_temp.progress();

------------------------------------------------------------------------
-- The SQL relay API is gone (0.4): the relay keeps its batch in memory
------------------------------------------------------------------------
SELECT pg_temp.sqlstate_of('SELECT outbox.open_batch()');
SELECT pg_temp.sqlstate_of('SELECT * FROM outbox.next_events(1)');
SELECT pg_temp.sqlstate_of('SELECT outbox.ack_events(1)');
SELECT outbox.enqueue('b', 'e7'::text);
SELECT events FROM pg_temp.relay_open_batch();
SELECT * FROM pg_temp.chunk(1);
SELECT pg_temp.relay_ack_events(7);

------------------------------------------------------------------------
-- Events enqueued after a batch was opened go to the next batch
------------------------------------------------------------------------
SELECT outbox.enqueue('b', 'e8'::text);
SELECT outbox.enqueue('b', 'e9'::text);
SELECT * FROM pg_temp.open_batch();
SELECT outbox.enqueue('b', 'e10'::text);
SELECT outbox.enqueue('b', 'e11'::text);
SELECT * FROM pg_temp.open_batch();      -- unchanged
SELECT * FROM pg_temp.chunk(100);        -- only e8, e9
SELECT pg_temp.relay_ack_events(9);
SELECT * FROM pg_temp.open_batch();      -- e10, e11
SELECT * FROM pg_temp.chunk(100);
SELECT pg_temp.relay_ack_events(11);

------------------------------------------------------------------------
-- A transaction still open when the batch was taken comes in a later
-- batch, even though its id is smaller (no event is skipped, G2).
-- (A second session is simulated with a prepared transaction.)
------------------------------------------------------------------------
SHOW max_prepared_transactions;
BEGIN;
SELECT outbox.enqueue('b', 'prepared e12'::text);
PREPARE TRANSACTION 'outbox_batching_1';
SELECT outbox.enqueue('b', 'e13'::text);
SELECT * FROM pg_temp.open_batch();      -- only e13
SELECT * FROM pg_temp.chunk(100);
SELECT pg_temp.relay_ack_events(13);
SELECT * FROM pg_temp.open_batch();      -- e12 still in progress: empty
COMMIT PREPARED 'outbox_batching_1';
SELECT * FROM pg_temp.open_batch();      -- now e12
SELECT * FROM pg_temp.chunk(100);
SELECT pg_temp.relay_ack_events(12);
-- rolled back events never appear
BEGIN;
SELECT outbox.enqueue('b', 'prepared, rolled back'::text);
PREPARE TRANSACTION 'outbox_batching_2';
SELECT * FROM pg_temp.open_batch();
ROLLBACK PREPARED 'outbox_batching_2';
BEGIN;
SELECT outbox.enqueue('b', 'rolled back'::text);
ROLLBACK;
SELECT outbox.enqueue('b', 'e16'::text);
SELECT * FROM pg_temp.open_batch();
SELECT * FROM pg_temp.chunk(100);
SELECT pg_temp.relay_ack_events(16);
SELECT * FROM pg_temp.open_batch();

------------------------------------------------------------------------
-- Batches read every event table, current or not
------------------------------------------------------------------------
SELECT outbox.enqueue('b', 'e17 in event_0'::text);
SELECT rotated_to FROM outbox.maintain(rotate_now => true);
SELECT outbox.enqueue('b', 'e18 in event_1'::text);
SELECT * FROM pg_temp.open_batch();
SELECT c.id, c.payload, e.tableoid::regclass AS tbl
  FROM pg_temp.chunk(100) c JOIN outbox.event e USING (id) ORDER BY c.id;
SELECT pg_temp.relay_ack_events(18);

-- progress over this whole test: every non-empty batch completed once
SELECT batch_open, published_max_id FROM pg_temp.progress();
SELECT count(*) AS events_left, max(id) AS max_id FROM outbox.event;

------------------------------------------------------------------------
-- The byte bound: beyond the first event, a chunk never goes past
-- max_bytes; a single larger event is read alone
------------------------------------------------------------------------
SELECT max(id) AS before_bytes FROM outbox.event \gset
SELECT count(*) FROM (SELECT outbox.enqueue('bytes', repeat('x', 40)) FROM generate_series(1, 3)) s;
SELECT count(*) AS within_100_bytes
  FROM outbox._batch_events('1:1:'::pg_snapshot, pg_current_snapshot(), :before_bytes, 1000, 10, 100);
SELECT count(*) AS within_30_bytes
  FROM outbox._batch_events('1:1:'::pg_snapshot, pg_current_snapshot(), :before_bytes, 1000, 10, 30);

DROP EXTENSION outbox_kafka;
