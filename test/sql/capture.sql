--
-- outbox.capture(): the row trigger, its envelope, keys and misuse.
--
CREATE EXTENSION outbox_kafka;
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

\i test/sql/include/sqlstate_of.sql

-- The captured events, the envelope parsed without its volatile "ts".
CREATE FUNCTION pg_temp.captured(after_id bigint DEFAULT 0)
RETURNS TABLE (id bigint, topic text, key text, kind "char", op text,
               schema_name text, table_name text, before jsonb, after jsonb)
LANGUAGE sql AS $$
    SELECT e.id, e.topic, e.key, e.payload_kind,
           p->>'op', p->>'schema', p->>'table', p->'before', p->'after'
      FROM outbox.event e,
           LATERAL (SELECT convert_from(e.payload, 'UTF8')::jsonb AS p) j
     WHERE e.id > after_id
     ORDER BY e.id
$$;

------------------------------------------------------------------------
-- Insert, update, delete: three events on the trigger's topic
------------------------------------------------------------------------
CREATE TABLE orders (
    id          integer PRIMARY KEY,
    customer_id integer NOT NULL,
    amount      numeric(10,2),
    status      text
);
CREATE TRIGGER orders_outbox
    AFTER INSERT OR UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('orders.changes', 'id');

INSERT INTO orders VALUES (42, 7, 99.50, 'new');
UPDATE orders SET status = 'paid', amount = 100 WHERE id = 42;
DELETE FROM orders WHERE id = 42;
SELECT id, topic, key, kind, op, schema_name, table_name FROM pg_temp.captured();
SELECT id, op, before, after FROM pg_temp.captured();
-- the whole envelope: exactly these members; "ts" is the capture time
SELECT e.id,
       convert_from(e.payload, 'UTF8')::jsonb - 'ts' AS envelope,
       ARRAY(SELECT jsonb_object_keys(convert_from(e.payload, 'UTF8')::jsonb) ORDER BY 1) AS members,
       (convert_from(e.payload, 'UTF8')::jsonb->>'ts')::timestamptz
           BETWEEN now() - interval '1 hour' AND clock_timestamp() AS ts_is_a_recent_timestamptz,
       e.headers
  FROM outbox.event e ORDER BY e.id;
-- one event per row, in the changing transaction
INSERT INTO orders SELECT g, 1, g, 'bulk' FROM generate_series(1, 3) g;
UPDATE orders SET status = 'bulk2' WHERE id <= 3;
SELECT c.op, count(*), count(DISTINCT e.txid) AS txids, array_agg(c.key ORDER BY c.id) AS keys
  FROM pg_temp.captured(3) c JOIN outbox.event e USING (id) GROUP BY c.op ORDER BY c.op;
-- the key follows the row: the new key on update, the old one on delete
UPDATE orders SET id = 30 WHERE id = 3;
DELETE FROM orders WHERE id = 30;
SELECT id, key, op, before->>'id' AS before_id, after->>'id' AS after_id FROM pg_temp.captured(9);


------------------------------------------------------------------------
-- An update that changes the key also publishes for the old key: first a
-- delete envelope keyed by the old key (what a DELETE of the old row
-- publishes), then the update keyed by the new key, in one transaction
------------------------------------------------------------------------
INSERT INTO orders VALUES (5, 1, 5, 'to move');
SELECT max(id) AS last_id FROM outbox.event \gset
UPDATE orders SET id = 50 WHERE id = 5;
SELECT c.id - :last_id AS n, c.key, c.op, c.before->>'id' AS before_id,
       c.after->>'id' AS after_id, c.before->>'status' AS before_status
  FROM pg_temp.captured(:last_id) c ORDER BY c.id;
SELECT count(DISTINCT e.txid) AS txids,
       count(DISTINCT convert_from(e.payload, 'UTF8')::jsonb->>'ts') AS distinct_ts
  FROM outbox.event e WHERE e.id > :last_id;
-- the old key's event is exactly the delete envelope of the old row
SELECT convert_from(d.payload, 'UTF8')::jsonb - 'ts' =
       jsonb_build_object('op', 'd', 'schema', 'public', 'table', 'orders',
                          'before', to_jsonb(o) - 'id' || '{"id": 5}', 'after', NULL) AS is_delete_of_old_row
  FROM outbox.event d, orders o WHERE d.id = :last_id + 1 AND o.id = 50;
-- an update that keeps the key publishes one event; so does one that
-- changes only other columns of a multi-column key's table
SELECT max(id) AS last_id FROM outbox.event \gset
UPDATE orders SET status = 'same key' WHERE id = 50;
UPDATE orders SET id = 50 WHERE id = 50;
SELECT c.key, c.op FROM pg_temp.captured(:last_id) c ORDER BY c.id;
-- several rows change key in one statement: each gets its pair, in order
INSERT INTO orders VALUES (6, 1, 6, 'a'), (7, 1, 7, 'b');
SELECT max(id) AS last_id FROM outbox.event \gset
UPDATE orders SET id = id * 10 WHERE id IN (6, 7);
SELECT c.key, c.op, c.before->>'id' AS before_id, c.after->>'id' AS after_id
  FROM pg_temp.captured(:last_id) c ORDER BY c.id;
-- a rolled back key change publishes nothing
SELECT max(id) AS last_id FROM outbox.event \gset
BEGIN;
UPDATE orders SET id = 500 WHERE id = 50;
ROLLBACK;
SELECT count(*) AS after_rollback FROM pg_temp.captured(:last_id);
DELETE FROM orders WHERE id IN (50, 60, 70);

-- multi-column keys: a change of any key column is a key change; a key
-- that becomes NULL deletes the old key; a NULL old key has nothing to delete
CREATE TABLE items (tenant integer, sku text, qty integer);
CREATE TRIGGER items_outbox AFTER INSERT OR UPDATE OR DELETE ON items
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('items.changes', 'tenant', 'sku');
CREATE TABLE notes (code text, body text);
CREATE TRIGGER notes_outbox AFTER INSERT OR UPDATE OR DELETE ON notes
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('notes.changes', 'code');
INSERT INTO items VALUES (1, 'a', 1);
INSERT INTO notes VALUES ('n1', 'x');
SELECT max(id) AS last_id FROM outbox.event \gset
UPDATE items SET qty = 2;
UPDATE items SET sku = 'b';
UPDATE items SET tenant = NULL;
UPDATE notes SET code = NULL;
UPDATE notes SET body = 'y';
UPDATE notes SET code = 'n2';
SELECT c.topic, c.key, c.key IS NULL AS key_is_null, c.op,
       c.before->>'qty' AS before_qty, c.after->>'qty' AS after_qty
  FROM pg_temp.captured(:last_id) c ORDER BY c.id;
-- the old key's event is size-checked like any other: a row too large for
-- one event fails the key change, and nothing is published
SELECT max(id) AS last_id FROM outbox.event \gset
INSERT INTO notes VALUES ('big', repeat('x', 499000));
SELECT regexp_replace(pg_temp.sqlstate_of($$UPDATE notes SET code = 'big2', body = repeat('y', 600000) WHERE code = 'big'$$),
                      'too large: 1\d{6} bytes', 'too large: 1xxxxxx bytes') AS too_large;
SELECT c.key, c.op FROM pg_temp.captured(:last_id) c ORDER BY c.id;
DROP TABLE items, notes;

-- a rolled back change produces no event; nor does a failed statement
SELECT max(id) AS last_id FROM outbox.event \gset
BEGIN;
INSERT INTO orders VALUES (100, 1, 1, 'rolled back');
DELETE FROM orders;
ROLLBACK;
BEGIN;
INSERT INTO orders VALUES (101, 1, 1, 'savepoint');
SAVEPOINT s;
UPDATE orders SET status = 'undone' WHERE id = 101;
ROLLBACK TO SAVEPOINT s;
COMMIT;
INSERT INTO orders VALUES (102, 1, 1, 'ok'), (102, 1, 1, 'duplicate');
SELECT id, key, op, after->>'status' AS status FROM pg_temp.captured(:last_id);
DELETE FROM orders;

------------------------------------------------------------------------
-- Column types appear as row_to_json renders them
------------------------------------------------------------------------
CREATE TABLE "Mixed Case" (
    id      bigint PRIMARY KEY,
    at      timestamptz,
    price   numeric,
    doc     jsonb,
    raw     bytea,
    tags    text[],
    flag    boolean,
    note    text,
    dropped text
);
ALTER TABLE "Mixed Case" DROP COLUMN dropped;
CREATE SCHEMA "app schema";
ALTER TABLE "Mixed Case" SET SCHEMA "app schema";
CREATE TRIGGER mixed_outbox AFTER INSERT ON "app schema"."Mixed Case"
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('mixed', 'id');
SELECT max(id) AS last_id FROM outbox.event \gset
INSERT INTO "app schema"."Mixed Case" VALUES
    (1, '2024-02-29 12:34:56.789+00', 12.3400, '{"b": [1, 2], "a": null}', '\xdeadbeef',
     ARRAY['x', 'y "z"'], true, E'line1\nline2 "quoted" \\ back'),
    (2, NULL, 'NaN', 'null', '', '{}', false, NULL);
SELECT id, key, schema_name, table_name, after FROM pg_temp.captured(:last_id);
SELECT c.after = to_jsonb(m) AS after_is_the_row
  FROM pg_temp.captured(:last_id) c
  JOIN "app schema"."Mixed Case" m ON m.id = (c.after->>'id')::bigint
 ORDER BY c.id;

------------------------------------------------------------------------
-- Keys: several columns give a JSON array; NULLs
------------------------------------------------------------------------
CREATE TABLE lines (
    tenant_id integer,
    id        integer,
    code      text,
    qty       numeric,
    ok        boolean,
    day       date,
    ratio     float8
);
CREATE TRIGGER lines_by_tenant AFTER INSERT ON lines
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('lines.changes', 'tenant_id', 'id');
CREATE TRIGGER lines_by_code AFTER INSERT ON lines
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('lines.by-code', 'code', 'id');
CREATE TRIGGER lines_by_value AFTER INSERT ON lines
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('lines.by_value', 'qty', 'ok', 'day', 'ratio');
CREATE TRIGGER lines_by_code_only AFTER INSERT ON lines
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('lines.code', 'code');
SELECT max(id) AS last_id FROM outbox.event \gset
INSERT INTO lines VALUES (7, 42, 'abc', 1.50, true, '2024-01-02', 0.25);
INSERT INTO lines VALUES (NULL, 43, 'say "hi"', 'NaN', false, NULL, 'Infinity');
INSERT INTO lines VALUES (8, NULL, NULL, -3, NULL, '2024-12-31', -1e100);
SELECT e.topic, e.key, e.key::jsonb AS key_as_json
  FROM outbox.event e WHERE e.id > :last_id AND e.topic <> 'lines.code'
 ORDER BY e.topic, e.id;
-- one key column: the plain text, NULL when the value is NULL
SELECT e.key, e.key IS NULL AS key_is_null
  FROM outbox.event e WHERE e.id > :last_id AND e.topic = 'lines.code' ORDER BY e.id;

------------------------------------------------------------------------
-- Misuse is refused when the trigger fires
------------------------------------------------------------------------
CREATE TABLE misuse (id integer, v text);
-- unknown key column
CREATE TRIGGER t AFTER INSERT ON misuse
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('misuse', 'nope');
INSERT INTO misuse VALUES (1, 'a');
SELECT pg_temp.sqlstate_of($$INSERT INTO misuse VALUES (1, 'a')$$);
DROP TRIGGER t ON misuse;
CREATE TRIGGER t AFTER INSERT ON misuse
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('misuse', 'id', 'nope');
SELECT pg_temp.sqlstate_of($$INSERT INTO misuse VALUES (1, 'a')$$);
DROP TRIGGER t ON misuse;
CREATE TRIGGER t AFTER INSERT ON misuse
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('misuse', 'ctid');
SELECT pg_temp.sqlstate_of($$INSERT INTO misuse VALUES (1, 'a')$$);
DROP TRIGGER t ON misuse;
-- no key column
CREATE TRIGGER t AFTER INSERT ON misuse
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('misuse');
INSERT INTO misuse VALUES (1, 'a');
DROP TRIGGER t ON misuse;
CREATE TRIGGER t AFTER INSERT ON misuse
    FOR EACH ROW EXECUTE FUNCTION outbox.capture();
SELECT pg_temp.sqlstate_of($$INSERT INTO misuse VALUES (1, 'a')$$);
DROP TRIGGER t ON misuse;
-- BEFORE, statement level, TRUNCATE
CREATE TRIGGER t BEFORE INSERT OR UPDATE OR DELETE ON misuse
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('misuse', 'id');
INSERT INTO misuse VALUES (1, 'a');
DROP TRIGGER t ON misuse;
CREATE TRIGGER t AFTER INSERT ON misuse
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.capture('misuse', 'id');
SELECT pg_temp.sqlstate_of($$INSERT INTO misuse VALUES (1, 'a')$$);
DROP TRIGGER t ON misuse;
CREATE TRIGGER t AFTER TRUNCATE ON misuse
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.capture('misuse', 'id');
SELECT pg_temp.sqlstate_of($$TRUNCATE misuse$$);
DROP TRIGGER t ON misuse;
-- invalid topics
CREATE TRIGGER t AFTER INSERT ON misuse
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('misuse changes', 'id');
INSERT INTO misuse VALUES (1, 'a');
DROP TRIGGER t ON misuse;
CREATE TRIGGER t AFTER INSERT ON misuse
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('', 'id');
SELECT pg_temp.sqlstate_of($$INSERT INTO misuse VALUES (1, 'a')$$);
DROP TRIGGER t ON misuse;
CREATE TRIGGER t AFTER INSERT ON misuse
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('..', 'id');
SELECT pg_temp.sqlstate_of($$INSERT INTO misuse VALUES (1, 'a')$$);
DROP TRIGGER t ON misuse;
-- too large an envelope (its exact size varies with the length of "ts")
CREATE TRIGGER t AFTER INSERT ON misuse
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('misuse', 'id');
SELECT regexp_replace(pg_temp.sqlstate_of($$INSERT INTO misuse VALUES (1, repeat('x', 1000000))$$),
                      'too large: 1000\d\d\d bytes', 'too large: 1000xxx bytes') AS too_large;
INSERT INTO misuse VALUES (2, repeat('x', 999000));
DROP TRIGGER t ON misuse;
-- a failed capture fails the change: only the one good row exists
SELECT id, length(v) FROM misuse;
SELECT topic, key, octet_length(payload) > 999000 AS big FROM outbox.event WHERE topic LIKE 'misuse%';
-- not a trigger call
SELECT outbox.capture();
SELECT pg_temp.sqlstate_of('SELECT outbox.capture()');

DROP TABLE orders, "app schema"."Mixed Case", lines, misuse;
DROP SCHEMA "app schema";
DROP EXTENSION outbox_kafka;
