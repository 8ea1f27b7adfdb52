--
-- outbox.status: worker fields (no relay runs here) and storage figures.
--
CREATE EXTENSION outbox_kafka;
\set SHOW_CONTEXT never

\set ECHO none
\i test/sql/include/relay_api.sql
\set ECHO all
\x on
-- A fresh extension in a database that is not listed: no worker, so the
-- worker fields are NULL, and problem/hint say why nothing is published.
SELECT database, state, worker_pid, pending_events, pending_events_exact,
       oldest_pending_age, events_published, events_retried,
       events_dead_lettered, events_failed, dead_letters, last_error,
       last_error_at, last_publish_at, current_table,
       last_rotation_at <= now() AS rotated_in_past,
       last_tick_at <= now() AS ticked_in_past,
       worker_started_at, problem, hint
  FROM outbox.status;
\x off
SELECT count(*) AS rows_in_status FROM outbox.status;
SELECT array_agg(attname ORDER BY attnum) AS columns
  FROM pg_attribute WHERE attrelid = 'outbox.status'::regclass AND attnum > 0;
SELECT * FROM outbox.worker_status() \gx
SELECT outbox._is_preloaded();

------------------------------------------------------------------------
-- pending_events counts committed, unpublished events exactly
------------------------------------------------------------------------
CREATE FUNCTION pg_temp.pending()
RETURNS TABLE (pending_events bigint, pending_events_exact boolean,
               has_oldest_pending boolean, dead_letters bigint, current_table smallint)
LANGUAGE sql AS $$
    SELECT pending_events, pending_events_exact,
           oldest_pending_age IS NOT NULL AND oldest_pending_age >= '0'::interval,
           dead_letters, current_table
      FROM outbox.status
$$;
SELECT * FROM pg_temp.pending();
SELECT outbox.enqueue('s', 'e1'::text);
SELECT outbox.enqueue('s', 'e2'::text);
SELECT outbox.enqueue('s', 'e3'::text);
SELECT * FROM pg_temp.pending();
-- rolled back: not counted
BEGIN;
SELECT outbox.enqueue('s', 'rolled back'::text);
ROLLBACK;
SELECT * FROM pg_temp.pending();
-- prepared but not committed: not counted yet
BEGIN;
SELECT outbox.enqueue('s', 'prepared e5'::text);
PREPARE TRANSACTION 'outbox_status_1';
SELECT * FROM pg_temp.pending();
-- the oldest pending event is the first one
SELECT s.oldest_pending_age >= clock_timestamp() - e.created_at - interval '1 second'
       AND s.oldest_pending_age <= clock_timestamp() - e.created_at AS age_of_e1
  FROM outbox.status s, outbox.event e WHERE e.id = 1;

-- an open batch: events not yet acknowledged are still pending
SELECT events, first_id, last_id FROM pg_temp.relay_open_batch();
SELECT * FROM pg_temp.pending();
SELECT pg_temp.relay_ack_events(2);
SELECT * FROM pg_temp.pending();
-- events committed after the batch was taken count as well
COMMIT PREPARED 'outbox_status_1';
SELECT outbox.enqueue('s', 'e6'::text);
SELECT * FROM pg_temp.pending();
SELECT pg_temp.relay_ack_events(3);
SELECT * FROM pg_temp.pending();
SELECT events, first_id, last_id FROM pg_temp.relay_open_batch();
SELECT * FROM pg_temp.pending();
SELECT pg_temp.relay_ack_events(6);
-- nothing pending: no age
SELECT * FROM pg_temp.pending();
SELECT oldest_pending_age IS NULL AS no_age FROM outbox.status;

-- dead letters and the current table
SELECT outbox.dead_letter(1, 'test', 1);
SELECT rotated_to FROM outbox.maintain(rotate_now => true);
SELECT * FROM pg_temp.pending();
SELECT outbox.enqueue('s', 'e7 in event_1'::text);
SELECT * FROM pg_temp.pending();
SELECT events FROM pg_temp.relay_open_batch();
SELECT pg_temp.relay_ack_events(7);

------------------------------------------------------------------------
-- Above 10 000 pending events the count is estimated from the ids
------------------------------------------------------------------------
SELECT count(outbox.enqueue('bulk', g::text)) FROM generate_series(1, 10000) g;
SELECT * FROM pg_temp.pending();
SELECT outbox.enqueue('bulk', 'one more'::text);
SELECT * FROM pg_temp.pending();
SELECT events FROM pg_temp.relay_open_batch();
SELECT * FROM pg_temp.pending();
SELECT pg_temp.relay_ack_events(5000);
SELECT * FROM pg_temp.pending();
SELECT outbox.enqueue('bulk', 'after the batch'::text);
SELECT * FROM pg_temp.pending();
SELECT pg_temp.relay_ack_events(10008);
SELECT * FROM pg_temp.pending();
SELECT events FROM pg_temp.relay_open_batch();
SELECT pg_temp.relay_ack_events(10009);
SELECT * FROM pg_temp.pending();

-- the librdkafka the relay runs with, for pg_monitor too
SELECT outbox.librdkafka_version() ~ '^[0-9]+\.[0-9]+\.[0-9]+$' AS looks_like_a_version;
SELECT has_function_privilege('pg_monitor', 'outbox.librdkafka_version()', 'EXECUTE') AS monitor_may;

DROP EXTENSION outbox_kafka;
