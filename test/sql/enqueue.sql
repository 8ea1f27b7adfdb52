--
-- outbox.enqueue(): the three overloads, what is stored, and the input
-- validation of G7 (invalid topic, NULL topic, bad headers, too large).
--
CREATE EXTENSION outbox_kafka;
\set SHOW_CONTEXT never

\i test/sql/include/sqlstate_of.sql

-- Every stored event, readable.
CREATE FUNCTION pg_temp.events()
RETURNS TABLE (id bigint, tbl regclass, topic text, key text, kind "char",
               payload text, headers jsonb)
LANGUAGE sql AS $$
    SELECT e.id, e.tableoid::regclass, e.topic, e.key, e.payload_kind,
           CASE e.payload_kind WHEN 'b' THEN encode(e.payload, 'hex')
                               ELSE convert_from(e.payload, 'UTF8') END,
           e.headers
      FROM outbox.event e ORDER BY e.id
$$;

------------------------------------------------------------------------
-- The three overloads; ids increase.
------------------------------------------------------------------------
SELECT outbox.enqueue('order.created', '{"orderId": 42, "amount": 99.50}'::jsonb, '42');
SELECT outbox.enqueue('order.note', 'plain text'::text, 'k1');
SELECT outbox.enqueue('blob', '\x00ff10'::bytea);
SELECT outbox.enqueue(topic => 'named', payload => '[1, "two", null]'::jsonb,
                      headers => '{"trace-id": "abc", "tenant": null}');
-- an untyped literal resolves to the text overload
SELECT outbox.enqueue('t', 'abc');
-- a tombstone: NULL payload with a key, for each overload
SELECT outbox.enqueue('compacted', NULL::jsonb, 'gone-1');
SELECT outbox.enqueue('compacted', NULL::text, 'gone-2');
SELECT outbox.enqueue('compacted', NULL::bytea, 'gone-3');
SELECT * FROM pg_temp.events();

-- JSON payloads are stored as JSON text; text keeps its exact bytes
SELECT id, payload::jsonb = '{"orderId": 42, "amount": 99.50}'::jsonb AS same_json
  FROM pg_temp.events() WHERE id = 1;
SELECT e.txid IS NOT NULL AND e.created_at <= clock_timestamp() AS has_txid_and_time,
       pg_visible_in_snapshot(e.txid, pg_current_snapshot()) AS committed_txid_visible
  FROM outbox.event e WHERE e.id = 1;

------------------------------------------------------------------------
-- NULLs
------------------------------------------------------------------------
SELECT outbox.enqueue('compacted', NULL::jsonb);
SELECT outbox.enqueue(NULL, 'x'::text);
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('t', NULL::text)$$);
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('t', NULL::bytea, NULL)$$);
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue(NULL, '{}'::jsonb, 'k')$$);
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue(NULL, '\x01'::bytea)$$);

------------------------------------------------------------------------
-- Topic names: 1..249 characters of [a-zA-Z0-9._-], not "." or ".."
------------------------------------------------------------------------
SELECT outbox.enqueue('', 'x'::text);
SELECT outbox.enqueue(repeat('a', 250), 'x'::text);
SELECT outbox.enqueue('..', 'x'::text);
SELECT outbox.enqueue('a b', 'x'::text);
SELECT CASE WHEN t ~ '^[ -~]*$' THEN t ELSE '(non-ASCII)' END AS topic,
       pg_temp.sqlstate_of(format('SELECT outbox.enqueue(%L, %L::text)', t, 'x'))
  FROM unnest(ARRAY['', '.', '..', 'a b', 'ä', 'a/b', 'a:b', 'a,b', 'a+b', 'a@b',
                    'orders*', ' orders', 'orders ']) AS t;
SELECT length(t) AS topic_length,
       pg_temp.sqlstate_of(format('SELECT outbox.enqueue(%L, %L::text)', t, 'x'))
  FROM unnest(ARRAY[repeat('a', 250), repeat('b', 1000)]) AS t;
-- legal names
SELECT outbox.enqueue(repeat('x', 249), 'longest'::text) AS id_249;
SELECT outbox.enqueue('a', 'x'::text) AS id_a,
       outbox.enqueue('...', 'x'::text) AS id_dots,
       outbox.enqueue('Orders_v2.created-EU', 'x'::text) AS id_mixed,
       outbox.enqueue('._-', 'x'::text) AS id_punct,
       outbox.enqueue('0123456789', 'x'::text) AS id_digits;
SELECT id, length(topic), topic = repeat('x', 249) AS is_249_x
  FROM outbox.event WHERE length(topic) > 200;

------------------------------------------------------------------------
-- Headers: a JSON object of strings (or nulls), no "outbox-" names
------------------------------------------------------------------------
SELECT outbox.enqueue('t', 'x'::text, headers => '["a", "b"]');
SELECT outbox.enqueue('t', 'x'::text, headers => '{"retries": 3}');
SELECT outbox.enqueue('t', 'x'::text, headers => '{"outbox-id": "7"}');
SELECT h AS headers,
       pg_temp.sqlstate_of(format('SELECT outbox.enqueue(%L, %L::text, headers => %L)', 't', 'x', h))
  FROM unnest(ARRAY['["a"]', '"a string"', '12', 'true', 'null',
                    '{"n": 1}', '{"n": 1.5}', '{"o": {"a": "b"}}', '{"a": ["x"]}',
                    '{"b": true}', '{"b": false}', '{"ok": "y", "bad": 2}',
                    '{"outbox-id": "1"}', '{"OUTBOX-x": "1"}', '{"Outbox-Trace": null}',
                    '{"outbox-": "1"}']) AS h;
-- allowed
SELECT h AS headers,
       pg_temp.sqlstate_of(format('SELECT outbox.enqueue(%L, %L::text, headers => %L)', 'hdr', 'x', h))
  FROM unnest(ARRAY['{}', '{"trace-id": "abc"}', '{"empty": ""}', '{"nothing": null}',
                    '{"outbox": "1"}', '{"outboxid": "1"}', '{"x-outbox-id": "1"}',
                    '{"content-type": "text/plain", "a": "1", "b": "2"}']) AS h;
SELECT id, headers FROM outbox.event WHERE topic = 'hdr' ORDER BY id;
-- a NULL headers argument means no headers
SELECT outbox.enqueue('hdr', 'y'::text, NULL, NULL) IS NOT NULL AS ok;
SELECT count(*) FILTER (WHERE headers IS NULL) AS without_headers FROM outbox.event WHERE topic = 'hdr';

------------------------------------------------------------------------
-- Size: payload + key + headers <= outbox_kafka.max_message_bytes
-- (default 1000000; reloadable only, so a session cannot change it)
------------------------------------------------------------------------
SHOW outbox_kafka.max_message_bytes;
SET outbox_kafka.max_message_bytes = 100;
SELECT pg_temp.sqlstate_of('SET outbox_kafka.max_message_bytes = 100');
SELECT outbox.enqueue('big', repeat('x', 1000000)::text) IS NOT NULL AS exactly_at_limit_ok;
SELECT outbox.enqueue('big', repeat('x', 999999)::text, 'kk');
SELECT outbox.enqueue('big', repeat('x', 999999)::text, 'k') IS NOT NULL AS with_key_at_limit_ok;
SELECT outbox.enqueue('big', convert_to(repeat('x', 999990), 'UTF8'), NULL, '{"h": "123456789"}') IS NOT NULL AS with_headers_at_limit_ok;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('big', convert_to(repeat('x', 999990), 'UTF8'), NULL, '{"h": "1234567890"}')$$) AS header_value_over;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('big', convert_to(repeat('x', 999990), 'UTF8'), NULL, '{"hh": "123456789"}')$$) AS header_name_over;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('big', repeat('x', 1000001)::text)$$) AS text_over;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('big', convert_to(repeat('x', 1000001), 'UTF8'))$$) AS bytea_over;
-- JSON: the size is that of the stored JSON text ({"a": "xx..."} = 9 + n bytes)
SELECT outbox.enqueue('big', jsonb_build_object('a', repeat('x', 999991))) IS NOT NULL AS json_at_limit_ok;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('big', jsonb_build_object('a', repeat('x', 999992)))$$) AS json_over;
-- a huge key alone is too large as well, also for a tombstone
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('big', NULL::text, repeat('k', 1000001))$$) AS key_over;
SELECT id, key IS NULL AS no_key, octet_length(payload) AS payload_bytes,
       pg_column_size(headers) IS NOT NULL AS has_headers
  FROM outbox.event WHERE topic = 'big' ORDER BY id;

------------------------------------------------------------------------
-- Transactions: rolled back enqueues leave nothing behind
------------------------------------------------------------------------
SELECT count(*) AS before_count, max(id) AS max_id FROM outbox.event;
BEGIN;
SELECT outbox.enqueue('tx', 'rolled back'::text) AS rolled_back_id \gset
ROLLBACK;
SELECT count(*) AS rolled_back_rows FROM outbox.event WHERE topic = 'tx';
BEGIN;
SELECT outbox.enqueue('tx', 'outer'::text) IS NOT NULL AS outer_ok;
SAVEPOINT s1;
SELECT outbox.enqueue('tx', 'inner rolled back'::text) IS NOT NULL AS inner_ok;
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
SELECT outbox.enqueue('tx', 'inner kept'::text) IS NOT NULL AS inner_kept_ok;
RELEASE SAVEPOINT s2;
COMMIT;
SELECT convert_from(payload, 'UTF8') AS payload FROM outbox.event WHERE topic = 'tx' ORDER BY id;
-- events of one transaction share its top-level txid, also from a subtransaction
SELECT count(DISTINCT txid) AS distinct_txids FROM outbox.event WHERE topic = 'tx';
-- an error after the enqueue aborts it too
BEGIN;
SELECT outbox.enqueue('tx', 'then failed'::text) IS NOT NULL AS ok;
SELECT 1 / 0;
COMMIT;
SELECT count(*) AS failed_rows FROM outbox.event WHERE topic = 'tx' AND payload = 'then failed';
-- a failed enqueue fails the transaction it runs in
BEGIN;
SELECT outbox.enqueue('tx', 'before the bad one'::text) IS NOT NULL AS ok;
SELECT outbox.enqueue('bad topic', 'x'::text);
COMMIT;
SELECT count(*) AS rows_of_failed_tx FROM outbox.event WHERE topic = 'tx' AND payload = 'before the bad one';
-- a read-only transaction cannot enqueue
BEGIN READ ONLY;
SELECT outbox.enqueue('tx', 'read only'::text);
ROLLBACK;
SELECT pg_temp.sqlstate_of($$SET TRANSACTION READ ONLY; SELECT outbox.enqueue('tx', 'read only'::text)$$);
-- ids keep increasing (gaps from rolled back transactions are fine)
SELECT outbox.enqueue('tx', 'last'::text) > :rolled_back_id AS id_after_rollback_is_larger;

DROP EXTENSION outbox_kafka;
