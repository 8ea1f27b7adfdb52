--
-- outbox.maintain(): rotation of the event tables and safe truncation of
-- retired tables once every event in them is published.
--
CREATE EXTENSION outbox_kafka;
\set SHOW_CONTEXT never

\i test/sql/include/sqlstate_of.sql
\set ECHO none
\i test/sql/include/relay_api.sql
\set ECHO all

-- rotation and table state without timestamps
CREATE FUNCTION pg_temp.tables()
RETURNS TABLE (table_no smallint, is_current boolean, retired boolean,
               truncated boolean, event_ids bigint[])
LANGUAGE sql SET jit = off AS $$
    SELECT t.table_no, t.table_no = r.current_table,
           t.retired_at IS NOT NULL, t.truncated_at IS NOT NULL,
           ARRAY(SELECT e.id FROM outbox.event e
                  WHERE e.tableoid::regclass::text = 'outbox.event_' || t.table_no
                  ORDER BY e.id)
      FROM outbox.event_table t, outbox.rotation r
     ORDER BY t.table_no
$$;
-- publish everything currently committed, like the relay would
CREATE FUNCTION pg_temp.publish_all() RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    b record;
    ids bigint[] := '{}';
BEGIN
    SELECT * INTO b FROM pg_temp.relay_open_batch();
    IF b.events > 0 THEN
        ids := ARRAY(SELECT id FROM pg_temp.relay_next_events(b.events::integer));
        PERFORM pg_temp.relay_ack_events(b.last_id);
    END IF;
    RETURN ids;
END
$$;

-- the rotation settings are reloadable only
SHOW outbox_kafka.rotation_interval;
SHOW outbox_kafka.retention;
SET outbox_kafka.retention = '1h';
SELECT pg_temp.sqlstate_of($$SET outbox_kafka.rotation_interval = '1s'$$);

------------------------------------------------------------------------
-- A fresh outbox: table 0 takes events, nothing to do
------------------------------------------------------------------------
SELECT * FROM pg_temp.tables();
SELECT current_table, rotated_at <= now() AS rotated_in_past FROM outbox.rotation;
SELECT * FROM outbox.maintain();
SELECT outbox.enqueue('m', 'e1'::text), outbox.enqueue('m', 'e2'::text);
SELECT id, tableoid::regclass FROM outbox.event ORDER BY id;
-- not rotated before rotation_interval has passed
SELECT * FROM outbox.maintain();
SELECT * FROM pg_temp.tables();

------------------------------------------------------------------------
-- Rotation on demand: new events land in event_1
------------------------------------------------------------------------
SELECT * FROM outbox.maintain(rotate_now => true);
SELECT * FROM pg_temp.tables();
SELECT outbox.enqueue('m', 'e3'::text);
SELECT id, tableoid::regclass FROM outbox.event ORDER BY id;
-- table 0 is retired but its events are not published: kept
SELECT * FROM outbox.maintain();
SELECT * FROM pg_temp.tables();

-- a batch holding e1..e3 is open but not acknowledged: kept
SELECT events, first_id, last_id FROM pg_temp.relay_open_batch();
SELECT * FROM outbox.maintain();
-- partly acknowledged: kept (only a completed batch counts)
SELECT pg_temp.relay_ack_events(2);
SELECT * FROM outbox.maintain();
SELECT count(*) AS rows_in_event_0 FROM outbox.event_0;

-- e4 goes to event_1 after the batch was taken: still pending there
SELECT outbox.enqueue('m', 'e4'::text);
SELECT pg_temp.relay_ack_events(3);
-- now every event of event_0 is published: truncated; event_1 is current
SELECT * FROM outbox.maintain();
SELECT * FROM pg_temp.tables();
SELECT count(*) AS rows_in_event_0 FROM outbox.event_0;
SELECT truncated_at IS NOT NULL AS truncated, truncated_at <= now() AS in_past,
       retired_at IS NULL AS no_longer_retired
  FROM outbox.event_table WHERE table_no = 0;
-- (outbox_kafka.retention is 0: no waiting after publication)
-- the pending event e4 is untouched and still published
SELECT pending_events FROM outbox.storage_status();
SELECT pg_temp.publish_all();
-- nothing left to truncate: an empty retired table is left alone
SELECT * FROM outbox.maintain();

------------------------------------------------------------------------
-- Rotation only goes into an empty table
------------------------------------------------------------------------
-- 1 -> 2 while e3, e4 sit in event_1 (published) and e5 is not published
SELECT outbox.enqueue('m', 'e5'::text);
SELECT * FROM outbox.maintain(rotate_now => true);
SELECT outbox.enqueue('m', 'e6'::text);
SELECT * FROM pg_temp.tables();
-- event_1 still holds the unpublished e5: kept; 2 -> 0 is fine (empty)
SELECT * FROM outbox.maintain(rotate_now => true);
SELECT outbox.enqueue('m', 'e7'::text);
SELECT * FROM pg_temp.tables();
-- 0 -> 1 is refused: event_1 is not empty
SELECT * FROM outbox.maintain(rotate_now => true);
SELECT current_table FROM outbox.rotation;
SELECT outbox.enqueue('m', 'e8'::text);
SELECT * FROM pg_temp.tables();
-- publish all; both retired tables are emptied, the current one stays
SELECT pg_temp.publish_all();
SELECT * FROM outbox.maintain();
SELECT * FROM pg_temp.tables();
-- now 0 -> 1 works
SELECT * FROM outbox.maintain(rotate_now => true);
SELECT * FROM pg_temp.tables();

------------------------------------------------------------------------
-- Unpublished events in a retired table that were enqueued after the
-- rotation (e.g. by a transaction that read the old current table) are
-- still published before the table is truncated.
------------------------------------------------------------------------
INSERT INTO outbox.event_0 (topic, payload, payload_kind) VALUES ('m', 'late e9', 't');
SELECT * FROM outbox.maintain();
SELECT * FROM pg_temp.tables();
SELECT pg_temp.publish_all();
SELECT * FROM outbox.maintain();
SELECT * FROM pg_temp.tables();

------------------------------------------------------------------------
-- An event table in use by an open transaction is not truncated now
-- (the lock is never waited for), only later.
------------------------------------------------------------------------
INSERT INTO outbox.event_0 (topic, payload, payload_kind) VALUES ('m', 'late e10', 't');
SELECT pg_temp.publish_all();
BEGIN;
SELECT count(*) FROM outbox.event_0;
PREPARE TRANSACTION 'outbox_maintenance_reader';
SET lock_timeout = '10s';
SELECT * FROM outbox.maintain();
RESET lock_timeout;
COMMIT PREPARED 'outbox_maintenance_reader';
SELECT * FROM outbox.maintain();
SELECT * FROM pg_temp.tables();

-- the parent outbox.event takes no rows of its own
SELECT split_part(pg_temp.sqlstate_of($$INSERT INTO outbox.event (topic, payload, payload_kind) VALUES ('m', 'x', 't')$$),
                  ' DETAIL', 1) AS insert_into_parent;
SELECT count(*) AS events_in_parent_only FROM ONLY outbox.event;

------------------------------------------------------------------------
-- relay_state kept from growing (G8): dead row versions that cannot be
-- pruned (here: many updates in one transaction; in production: an old
-- snapshot held elsewhere) are dropped by maintain() rewriting the table,
-- with its content unchanged.
------------------------------------------------------------------------
DO $$
BEGIN
    FOR i IN 1..8000 LOOP
        UPDATE outbox.relay_state SET prev_tick_at = prev_tick_at;
    END LOOP;
END
$$;
SELECT pg_relation_size('outbox.relay_state') > 512 * 1024 AS relay_state_grown;
CREATE TEMP TABLE relay_state_before AS SELECT * FROM outbox.relay_state;
SELECT current_table IS NOT NULL AS maintained FROM outbox.maintain();
SELECT pg_relation_size('outbox.relay_state') <= 512 * 1024 AS relay_state_compacted;
SELECT (SELECT row_to_json(r)::text FROM outbox.relay_state r) =
       (SELECT row_to_json(b)::text FROM relay_state_before b) AS same_progress,
       (SELECT count(*) FROM outbox.relay_state) AS rows;

DROP EXTENSION outbox_kafka;
