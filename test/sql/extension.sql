--
-- The extension itself: create, drop, re-create, membership, pg_dump
-- configuration tables.
--
CREATE EXTENSION outbox_kafka;
\set SHOW_CONTEXT never

SELECT extname, extversion, extrelocatable
  FROM pg_extension WHERE extname = 'outbox_kafka';
-- creating it twice is an error; IF NOT EXISTS is a no-op
CREATE EXTENSION outbox_kafka;
CREATE EXTENSION IF NOT EXISTS outbox_kafka;
-- it cannot be moved to another schema
CREATE SCHEMA elsewhere;
ALTER EXTENSION outbox_kafka SET SCHEMA elsewhere;
DROP SCHEMA elsewhere;

-- every relation, function and type in schema outbox belongs to the extension
SELECT c.relname, c.relkind,
       EXISTS (SELECT 1 FROM pg_depend d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_extension'::regclass
                  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'outbox_kafka')
                  AND d.deptype = 'e') AS member
  FROM pg_class c
 WHERE c.relnamespace = 'outbox'::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v')
 ORDER BY c.relname;
SELECT count(*) AS functions_not_members
  FROM pg_proc p
 WHERE p.pronamespace = 'outbox'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'outbox_kafka')
                      AND d.deptype = 'e');
SELECT count(*) AS types_not_members
  FROM pg_type t
 WHERE t.typnamespace = 'outbox'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                      AND (d.deptype = 'i'
                           OR (d.deptype = 'e'
                               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'outbox_kafka'))));
-- The members the install script creates.  A table's or view's row type and
-- an array type are internal parts of their table or element type (deptype
-- 'i'); since PostgreSQL 17 they are listed as extension members too
-- (upstream commit e5bc9454e5), so they are left out here: the listing is
-- the same on every supported version.
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS member
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'outbox_kafka')
   AND d.deptype = 'e'
   AND NOT EXISTS (SELECT 1 FROM pg_depend i
                    WHERE i.classid = d.classid AND i.objid = d.objid
                      AND i.deptype = 'i')
 ORDER BY 1;

-- pg_dump keeps pending events, the id sequence and the dead letters
SELECT c::regclass AS dumped, cond
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, cond)
 WHERE e.extname = 'outbox_kafka'
 ORDER BY u.c::regclass::text;

-- the event tables are what they should be
SELECT c.oid::regclass AS tbl,
       (SELECT array_agg(i.inhparent::regclass) FROM pg_inherits i WHERE i.inhrelid = c.oid) AS parent,
       (SELECT array_agg(x.indexrelid::regclass ORDER BY x.indexrelid::regclass::text)
          FROM pg_index x WHERE x.indrelid = c.oid) AS indexes
  FROM pg_class c
 WHERE c.relnamespace = 'outbox'::regnamespace AND c.relname ~ '^event(_\d)?$'
 ORDER BY c.relname;

------------------------------------------------------------------------
-- Drop and create again: the schema is gone, then back, fresh
------------------------------------------------------------------------
SELECT outbox.enqueue('x', 'before drop'::text);
SELECT outbox.enqueue('x', 'before drop'::text);
DROP EXTENSION outbox_kafka;
SELECT count(*) AS outbox_schemas FROM pg_namespace WHERE nspname = 'outbox';
SELECT count(*) AS outbox_relations FROM pg_class WHERE relname IN ('event_0', 'relay_state', 'dead_letters');
SELECT outbox.enqueue('x', 'no extension'::text);
CREATE EXTENSION outbox_kafka;
SELECT count(*) AS outbox_schemas FROM pg_namespace WHERE nspname = 'outbox';
-- a fresh outbox, and enqueue in this same session works on the new tables
SELECT count(*) AS events FROM outbox.event;
SELECT outbox.enqueue('x', 'after re-create'::text);
SELECT id, tableoid::regclass, convert_from(payload, 'UTF8') AS payload FROM outbox.event;
SELECT rotated_to FROM outbox.maintain(rotate_now => true);
SELECT outbox.enqueue('x', 'after rotation'::text);
SELECT id, tableoid::regclass, convert_from(payload, 'UTF8') AS payload FROM outbox.event ORDER BY id;

-- a capture trigger depends on the extension: DROP EXTENSION needs CASCADE
CREATE TABLE captured (id integer);
CREATE TRIGGER captured_outbox AFTER INSERT ON captured
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('captured', 'id');
DROP EXTENSION outbox_kafka;
SELECT count(*) AS outbox_schemas FROM pg_namespace WHERE nspname = 'outbox';
DROP EXTENSION outbox_kafka CASCADE;
SELECT count(*) AS outbox_schemas FROM pg_namespace WHERE nspname = 'outbox';
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'captured'::regclass;
INSERT INTO captured VALUES (1);
DROP TABLE captured;

-- an object of someone else's in the schema blocks DROP EXTENSION too
CREATE EXTENSION outbox_kafka;
CREATE TABLE outbox.not_ours (x int);
DROP EXTENSION outbox_kafka;
DROP TABLE outbox.not_ours;

DROP EXTENSION outbox_kafka;
SELECT count(*) AS outbox_schemas FROM pg_namespace WHERE nspname = 'outbox';
