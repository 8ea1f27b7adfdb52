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
-- names in messages: control characters and backslashes escaped, cut after
-- 64 bytes, so that a made-up name cannot forge a log line
SELECT pg_temp.sqlstate_of(format('SELECT outbox.enqueue(%L, %L::text)',
                                  E'a\nLOG:  forged\\', 'x')) AS newline_topic;
SELECT pg_temp.sqlstate_of(format('SELECT outbox.enqueue(%L, %L::text)',
                                  repeat('é', 40) || ' ', 'x')) AS long_topic;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('t', 'x'::text, headers => jsonb_build_object(E'outbox-\r\nx', 'v'))$$) AS reserved_header;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('t', 'x'::text, headers => jsonb_build_object(E'h\t\u007f', 1))$$) AS bad_value_header;
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
-- Size: the Kafka record must fit outbox_kafka.max_message_bytes
-- (default 1000000; reloadable only, so a session cannot change it):
-- payload + key + each header's name and value with a length varint each
-- + 320 bytes for the headers the relay adds (at their longest) and the
-- record and batch framing
------------------------------------------------------------------------
SHOW outbox_kafka.max_message_bytes;
SET outbox_kafka.max_message_bytes = 100;
SELECT pg_temp.sqlstate_of('SET outbox_kafka.max_message_bytes = 100');
\set limit 1000000
\set overhead 320
SELECT outbox.enqueue('big', repeat('x', :limit - :overhead)::text) IS NOT NULL AS exactly_at_limit_ok;
SELECT outbox.enqueue('big', repeat('x', :limit - :overhead - 1)::text, 'kk');
SELECT outbox.enqueue('big', repeat('x', :limit - :overhead - 1)::text, 'k') IS NOT NULL AS with_key_at_limit_ok;
-- {"h": "123456789"}: 1 + 1 + 1 + 9 bytes
SELECT outbox.enqueue('big', convert_to(repeat('x', :limit - :overhead - 12), 'UTF8'), NULL, '{"h": "123456789"}') IS NOT NULL AS with_headers_at_limit_ok;
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('big', convert_to(repeat('x', %s), 'UTF8'), NULL, '{"h": "1234567890"}')$$, :limit - :overhead - 12)) AS header_value_over;
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('big', convert_to(repeat('x', %s), 'UTF8'), NULL, '{"hh": "123456789"}')$$, :limit - :overhead - 12)) AS header_name_over;
-- a null header value still takes its name and two length bytes
SELECT outbox.enqueue('big', convert_to(repeat('x', :limit - :overhead - 3), 'UTF8'), NULL, '{"h": null}') IS NOT NULL AS null_header_at_limit_ok;
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('big', convert_to(repeat('x', %s), 'UTF8'), NULL, '{"h": null}')$$, :limit - :overhead - 2)) AS null_header_over;
-- a header value of 64 bytes or more has a two-byte length
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('big', convert_to(repeat('x', %s), 'UTF8'), NULL, jsonb_build_object('h', repeat('v', 64)))$$, :limit - :overhead - 67)) AS long_header_over;
SELECT outbox.enqueue('big', convert_to(repeat('x', :limit - :overhead - 68), 'UTF8'), NULL, jsonb_build_object('h', repeat('v', 64))) IS NOT NULL AS long_header_at_limit_ok;
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('big', repeat('x', %s)::text)$$, :limit - :overhead + 1)) AS text_over;
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('big', convert_to(repeat('x', %s), 'UTF8'))$$, :limit - :overhead + 1)) AS bytea_over;
-- JSON: the size is that of the stored JSON text ({"a": "xx..."} = 9 + n bytes)
SELECT outbox.enqueue('big', jsonb_build_object('a', repeat('x', :limit - :overhead - 9))) IS NOT NULL AS json_at_limit_ok;
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('big', jsonb_build_object('a', repeat('x', %s)))$$, :limit - :overhead - 8)) AS json_over;
-- multi-byte characters count in bytes
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('big', repeat('é', %s)::text)$$, (:limit - :overhead) / 2 + 1)) AS multibyte_over;
SELECT outbox.enqueue('big', repeat('é', (:limit - :overhead) / 2)::text) IS NOT NULL AS multibyte_ok;
-- a huge key alone is too large as well, also for a tombstone
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('big', NULL::text, repeat('k', 1000001))$$) AS key_over;
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('big', NULL::text, repeat('k', %s))$$, :limit - :overhead + 1)) AS tombstone_key_over;
SELECT outbox.enqueue('big', NULL::text, repeat('k', :limit - :overhead)) IS NOT NULL AS tombstone_key_at_limit_ok;
SELECT id, key IS NULL AS no_key, octet_length(key) AS key_bytes, octet_length(payload) AS payload_bytes,
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

------------------------------------------------------------------------
-- Event identity (0.4): every event gets a UUIDv7 at enqueue, the
-- outbox-event-id the relay publishes; outbox.last_event_id() returns the
-- last one of the current transaction.
------------------------------------------------------------------------
SELECT outbox.last_event_id() IS NULL AS none_outside_a_transaction;
BEGIN;
SELECT outbox.last_event_id() IS NULL AS none_before_enqueue;
SELECT outbox.enqueue('ids', 'first'::text) AS id \gset
SELECT outbox.last_event_id() = event_uuid AS last_is_first FROM outbox.event WHERE id = :id;
SELECT outbox.enqueue('ids', 'second'::text) AS id \gset
SELECT outbox.last_event_id() = event_uuid AS last_is_second FROM outbox.event WHERE id = :id;
COMMIT;
SELECT outbox.last_event_id() IS NULL AS none_after_commit;
BEGIN;
SELECT outbox.enqueue('ids', 'rolled back'::text) IS NOT NULL AS enqueued;
ROLLBACK;
SELECT outbox.last_event_id() IS NULL AS none_after_rollback;
-- UUIDv7 layout: version 7, variant 10, the first 48 bits the Unix time
-- in milliseconds of the enqueue; all distinct
SELECT count(*) AS events, count(DISTINCT event_uuid) AS distinct_ids,
       bool_and(substr(event_uuid::text, 15, 1) = '7') AS version_7,
       bool_and(substr(event_uuid::text, 20, 1) IN ('8', '9', 'a', 'b')) AS variant_10,
       bool_and(abs(('x' || lpad(replace(left(event_uuid::text, 13), '-', ''), 16, '0'))::bit(64)::bigint
                    - (extract(epoch FROM created_at) * 1000)::bigint) < 1000) AS time_is_created_at
  FROM outbox.event WHERE topic = 'ids';
-- time-ordered: a later event never sorts before an earlier one's millisecond
SELECT bool_and(left(a.event_uuid::text, 13) <= left(b.event_uuid::text, 13)) AS time_ordered
  FROM outbox.event a JOIN outbox.event b ON b.id > a.id
 WHERE a.topic = 'ids' AND b.topic = 'ids';
-- capture sets it too
CREATE TABLE ids_captured (id integer PRIMARY KEY);
CREATE TRIGGER ids_captured_outbox AFTER INSERT ON ids_captured
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('ids.captured', 'id');
BEGIN;
INSERT INTO ids_captured VALUES (1);
SELECT outbox.last_event_id() = event_uuid AS capture_sets_last_event_id
  FROM outbox.event WHERE topic = 'ids.captured';
COMMIT;
DROP TABLE ids_captured;

DROP EXTENSION outbox_kafka;

------------------------------------------------------------------------
-- A database that is not UTF-8: JSON and text payloads are stored (and
-- so published) in UTF-8, sizes count UTF-8 bytes, and keys and headers
-- must have a UTF-8 form
------------------------------------------------------------------------
CREATE DATABASE outbox_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
CREATE DATABASE outbox_win1252 ENCODING 'WIN1252' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
CREATE DATABASE outbox_sql_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c outbox_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION outbox_kafka;
\i test/sql/include/sqlstate_of.sql
SELECT outbox.enqueue('enc', '{"name": "Zoë", "city": "Zürich"}'::jsonb, 'clé', '{"x-ville": "Besançon"}') AS json_id,
       outbox.enqueue('enc', 'crème brûlée'::text, 'k') AS text_id,
       outbox.enqueue('enc', '\xe9ff00'::bytea) AS bytea_id,
       outbox.enqueue('enc', 'plain ascii'::text) AS ascii_id;
-- payloads hold UTF-8 (é is c3a9, ü c3bc); bytea is kept as is; key and
-- headers stay text and jsonb in the database encoding
SELECT id, payload_kind, encode(payload, 'hex') AS payload_hex, key,
       encode(convert_to(key, 'UTF8'), 'hex') AS key_utf8_hex, headers
  FROM outbox.event ORDER BY id;
SELECT convert_from(payload, 'UTF8') AS payload_as_utf8 FROM outbox.event WHERE payload_kind <> 'b' ORDER BY id;
-- sizes count the UTF-8 bytes: é takes two
SELECT outbox.enqueue('enc', repeat('é', (1000000 - 320) / 2)::text) IS NOT NULL AS at_limit_ok;
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('enc', repeat('é', %s)::text)$$, (1000000 - 320) / 2 + 1)) AS text_over;
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('enc', repeat('x', %s)::text, 'é')$$, 1000000 - 320 - 1)) AS key_over;
SELECT pg_temp.sqlstate_of(format($$SELECT outbox.enqueue('enc', repeat('x', %s)::text, NULL, '{"h": "é"}')$$, 1000000 - 320 - 4)) AS header_over;
SELECT outbox.enqueue('enc', repeat('x', 1000000 - 320 - 5)::text, NULL, '{"h": "é"}') IS NOT NULL AS header_at_limit_ok;
DROP EXTENSION outbox_kafka;

-- WIN1252 has bytes with no Unicode character: refused with 22P05, naming
-- the part of the event
\c outbox_win1252
CREATE EXTENSION outbox_kafka;
\i test/sql/include/sqlstate_of.sql
SELECT outbox.enqueue('enc', convert_from('\x80'::bytea, 'WIN1252'), 'k') IS NOT NULL AS euro_sign_ok;
SELECT encode(payload, 'hex') AS euro_sign_utf8 FROM outbox.event;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('enc', E'a\x81b'::text)$$) AS text_payload;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('enc', jsonb_build_object('a', E'\x81'))$$) AS json_payload;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('enc', 'x'::text, E'\x81')$$) AS key;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('enc', 'x'::text, NULL, jsonb_build_object(E'\x81', 'v'))$$) AS header_name;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('enc', 'x'::text, NULL, jsonb_build_object('h', E'\x81'))$$) AS header_value;
SELECT outbox.enqueue('enc', 'x'::text, NULL, jsonb_build_object('h', E'\x81'));
SELECT count(*) AS stored FROM outbox.event;
DROP EXTENSION outbox_kafka;

-- SQL_ASCII: the bytes must already be UTF-8
\c outbox_sql_ascii
CREATE EXTENSION outbox_kafka;
\i test/sql/include/sqlstate_of.sql
SELECT outbox.enqueue('enc', E'caf\xc3\xa9'::text, E'cl\xc3\xa9') IS NOT NULL AS utf8_ok;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('enc', E'caf\xe9'::text)$$) AS latin1_text;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('enc', 'x'::text, E'cl\xe9')$$) AS latin1_key;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('enc', '\xe9'::bytea)$$) AS bytea_is_bytes;
SELECT encode(payload, 'hex'), encode(key::bytea, 'hex') AS key_hex FROM outbox.event ORDER BY id;
DROP EXTENSION outbox_kafka;
\c contrib_regression
DROP DATABASE outbox_latin1;
DROP DATABASE outbox_win1252;
DROP DATABASE outbox_sql_ascii;
