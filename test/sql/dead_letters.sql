--
-- Dead letters: outbox.dead_letter() and outbox.requeue_dead_letters().
--
CREATE EXTENSION outbox_kafka;
\set SHOW_CONTEXT never

\set ECHO none
\i test/sql/include/relay_api.sql
\set ECHO all

CREATE FUNCTION pg_temp.dead()
RETURNS TABLE (id bigint, topic text, key text, kind "char", payload text,
               headers jsonb, attempts integer, error text)
LANGUAGE sql AS $$
    SELECT id, topic, key, payload_kind,
           CASE payload_kind WHEN 'b' THEN encode(payload, 'hex')
                             ELSE convert_from(payload, 'UTF8') END,
           headers, attempts, error
      FROM outbox.dead_letters ORDER BY id
$$;
CREATE FUNCTION pg_temp.events()
RETURNS TABLE (id bigint, topic text, key text, kind "char", payload text, headers jsonb)
LANGUAGE sql AS $$
    SELECT id, topic, key, payload_kind,
           CASE payload_kind WHEN 'b' THEN encode(payload, 'hex')
                             ELSE convert_from(payload, 'UTF8') END,
           headers
      FROM outbox.event ORDER BY id
$$;

SELECT outbox.enqueue('orders', '{"n": 1}'::jsonb, 'k1', '{"trace-id": "t1"}');
SELECT outbox.enqueue('orders', 'two'::text, 'k2');
SELECT outbox.enqueue('blobs', '\x0102ff'::bytea, NULL, '{"a": "b", "c": null}');
SELECT outbox.enqueue('compacted', NULL::text, 'k4');
SELECT outbox.enqueue('orders', 'five'::text);

-- the relay dead-letters events of the open batch
SELECT events FROM pg_temp.relay_open_batch();
SELECT outbox.dead_letter(1, 'Broker: Message size too large', 3);
SELECT outbox.dead_letter(3, 'Broker: Topic authorization failed');
SELECT outbox.dead_letter(4, 'Broker: Invalid message', 2);
SELECT * FROM pg_temp.dead();
SELECT d.id, d.created_at = e.created_at AS same_created_at,
       d.failed_at >= d.created_at AS failed_after_created,
       d.payload IS NOT DISTINCT FROM e.payload AS same_payload_bytes,
       d.event_uuid = e.event_uuid AS same_event_uuid
  FROM outbox.dead_letters d JOIN outbox.event e USING (id) ORDER BY d.id;
CREATE TEMP TABLE dead_uuid AS SELECT id, event_uuid FROM outbox.dead_letters;
-- dead-lettering again updates the reason and the attempts
SELECT outbox.dead_letter(1, 'Broker: Message size too large (again)', 5);
SELECT id, attempts, error FROM outbox.dead_letters WHERE id = 1;
-- an id that is not an event adds nothing
SELECT outbox.dead_letter(12345, 'no such event') IS NOT TRUE AS nothing_done;
SELECT count(*) FROM outbox.dead_letters;
SELECT pg_temp.relay_ack_events(5);
-- status counts them
SELECT dead_letters FROM outbox.storage_status();

------------------------------------------------------------------------
-- Re-queueing some: new events with new ids and the same content
------------------------------------------------------------------------
SELECT outbox.requeue_dead_letters(ARRAY[3, 4]);
SELECT * FROM pg_temp.dead();
SELECT * FROM pg_temp.events() WHERE id > 5;
SELECT e.id, e.tableoid::regclass, e.txid IS NOT NULL AS has_txid FROM outbox.event e WHERE e.id > 5 ORDER BY e.id;
-- a re-queue publishes the same event again: a new outbox-id, the same
-- outbox-event-id, so consumers that saw it skip it
SELECT e.id, e.headers->>'outbox-requeued-from' AS requeued_from,
       e.event_uuid = u.event_uuid AS same_event_uuid
  FROM outbox.event e JOIN dead_uuid u ON u.id = (e.headers->>'outbox-requeued-from')::bigint
 ORDER BY e.id;
-- ids that are not dead letters (any more): nothing happens
SELECT outbox.requeue_dead_letters(ARRAY[3, 4, 999]);
SELECT outbox.requeue_dead_letters('{}');
-- requeued events are published in the next batch like any other
SELECT events, first_id, last_id FROM pg_temp.relay_open_batch();
SELECT id, topic, key, payload_kind FROM pg_temp.relay_next_events(10);
SELECT pg_temp.relay_ack_events(7);

------------------------------------------------------------------------
-- Re-queueing in a transaction that rolls back changes nothing
------------------------------------------------------------------------
BEGIN;
SELECT outbox.requeue_dead_letters();
ROLLBACK;
SELECT id FROM outbox.dead_letters ORDER BY id;
SELECT count(*) AS events_after_7 FROM outbox.event WHERE id > 7;

------------------------------------------------------------------------
-- Re-queueing all
------------------------------------------------------------------------
SELECT outbox.dead_letter(2, 'Local: Message timed out', 10);
SELECT outbox.requeue_dead_letters();
SELECT count(*) AS dead_letters_left FROM outbox.dead_letters;
SELECT * FROM pg_temp.events() WHERE id > 7;
SELECT outbox.requeue_dead_letters();
SELECT dead_letters FROM outbox.storage_status();

DROP EXTENSION outbox_kafka;
