--
-- Privileges: nothing in schema outbox is open to PUBLIC (but
-- last_event_id); application roles get enqueue through the documented
-- GRANT and their topics through outbox.grant_topic; pg_monitor reads
-- status.
--
CREATE EXTENSION outbox_kafka;
\set SHOW_CONTEXT never

\i test/sql/include/sqlstate_of.sql

-- Every way a role might touch the outbox directly.
CREATE FUNCTION pg_temp.table_attempts()
RETURNS TABLE (tbl text, action text, result text) LANGUAGE sql AS $$
    SELECT t, a, pg_temp.sqlstate_of(format(s, t, c))
      FROM (VALUES (1, 'outbox.event', 'topic'), (2, 'outbox.event_0', 'topic'),
                   (3, 'outbox.event_1', 'topic'), (4, 'outbox.event_2', 'topic'),
                   (5, 'outbox.relay_state', 'batches_done'), (6, 'outbox.dead_letters', 'error'),
                   (7, 'outbox.rotation', 'current_table'), (8, 'outbox.event_table', 'retired_at'),
                   (9, 'outbox.topic_grant', 'granted_by')
           ) AS tt(tn, t, c),
           (VALUES (1, 'SELECT', 'SELECT count(*) FROM %s'),
                   (2, 'INSERT', 'INSERT INTO %s DEFAULT VALUES'),
                   (3, 'UPDATE', 'UPDATE %1$s SET %2$I = %2$I'),
                   (4, 'DELETE', 'DELETE FROM %s'),
                   (5, 'TRUNCATE', 'TRUNCATE %s')) AS aa(an, a, s)
     ORDER BY tn, an
$$;
CREATE FUNCTION pg_temp.function_attempts()
RETURNS TABLE (call text, result text) LANGUAGE sql AS $$
    SELECT c, pg_temp.sqlstate_of('SELECT ' || c)
      FROM unnest(ARRAY[
        $q$outbox.enqueue('t', '{}'::jsonb)$q$,
        $q$outbox.enqueue('t', 'x'::text)$q$,
        $q$outbox.enqueue('t', '\x00'::bytea)$q$,
        $q$outbox._requeue_event('t', NULL, '\x00', 'b', NULL, NULL)$q$,
        $q$outbox.last_event_id()$q$,
        $q$outbox.grant_topic('public', '*')$q$,
        $q$outbox.revoke_topic('public')$q$,
        $q$outbox._topic_grantee('public')$q$,
        $q$* FROM outbox.topic_grants$q$,
        $q$outbox.dead_letter(1, 'x')$q$,
        $q$outbox.maintain()$q$,
        $q$outbox.requeue_dead_letters()$q$,
        $q$outbox.worker_status()$q$,
        $q$outbox.storage_status()$q$,
        $q$outbox._is_preloaded()$q$,
        $q$outbox.capture()$q$,
        $q$nextval('outbox.event_id_seq')$q$,
        $q$* FROM outbox.status$q$]) WITH ORDINALITY AS f(c, n)
     ORDER BY n
$$;

CREATE ROLE regress_outbox_app NOLOGIN;
CREATE ROLE regress_outbox_mon NOLOGIN IN ROLE pg_monitor;
CREATE ROLE regress_outbox_owner NOLOGIN;

SELECT outbox.enqueue('p', 'by the superuser'::text);

------------------------------------------------------------------------
-- A plain role can do nothing
------------------------------------------------------------------------
SET ROLE regress_outbox_app;
SELECT outbox.enqueue('p', 'x'::text);
SELECT * FROM outbox.event_0;
SELECT * FROM pg_temp.function_attempts();
SELECT * FROM pg_temp.table_attempts();
RESET ROLE;

------------------------------------------------------------------------
-- The documented grant: enqueue, and nothing else
------------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb),
                          outbox.enqueue(text, text, text, jsonb),
                          outbox.enqueue(text, bytea, text, jsonb) TO regress_outbox_app;
-- EXECUTE alone publishes nowhere on a new installation: no topic grant
SET ROLE regress_outbox_app;
SELECT outbox.enqueue('p', 'x'::text);
RESET ROLE;
SELECT outbox.grant_topic('regress_outbox_app', 'p');
SET ROLE regress_outbox_app;
SELECT outbox.enqueue('p', '{"by": "app"}'::jsonb, 'k', '{"h": "v"}');
SELECT outbox.enqueue('p', 'by app'::text);
SELECT outbox.enqueue('p', '\x617070'::bytea);
SELECT outbox.enqueue('p', 'untyped by app');
-- validation applies as for anyone
SELECT outbox.enqueue('p q', 'x'::text);
SELECT * FROM pg_temp.function_attempts();
SELECT * FROM pg_temp.table_attempts() WHERE action IN ('SELECT', 'INSERT');
RESET ROLE;
SELECT id, topic, key, payload_kind,
       CASE payload_kind WHEN 'b' THEN encode(payload, 'hex')
                         ELSE convert_from(payload, 'UTF8') END AS payload,
       headers
  FROM outbox.event ORDER BY id;

------------------------------------------------------------------------
-- pg_monitor members read outbox.status, nothing else
------------------------------------------------------------------------
SET ROLE regress_outbox_mon;
SELECT database, state, pending_events, pending_events_exact, dead_letters,
       current_table, problem IS NOT NULL AS has_problem
  FROM outbox.status;
SELECT * FROM pg_temp.function_attempts();
SELECT * FROM pg_temp.table_attempts() WHERE action = 'SELECT';
RESET ROLE;
-- while a plain role cannot
SET ROLE regress_outbox_owner;
SELECT * FROM outbox.status;
RESET ROLE;

------------------------------------------------------------------------
-- The capture trigger on a role's own table: it needs EXECUTE on
-- outbox.capture to create the trigger, and no rights on the outbox
-- tables; its changes and those of others are captured.
------------------------------------------------------------------------
SELECT outbox.grant_topic('regress_outbox_owner', 'owned.*');
CREATE TABLE owned_orders (id integer PRIMARY KEY, v text);
ALTER TABLE owned_orders OWNER TO regress_outbox_owner;
SET ROLE regress_outbox_owner;
CREATE TRIGGER owned_outbox AFTER INSERT OR UPDATE OR DELETE ON owned_orders
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('owned.changes', 'id');
RESET ROLE;
GRANT EXECUTE ON FUNCTION outbox.capture() TO regress_outbox_owner;
SET ROLE regress_outbox_owner;
CREATE TRIGGER owned_outbox AFTER INSERT OR UPDATE OR DELETE ON owned_orders
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('owned.changes', 'id');
INSERT INTO owned_orders VALUES (1, 'by owner');
UPDATE owned_orders SET v = 'updated by owner';
GRANT INSERT, DELETE, SELECT ON owned_orders TO regress_outbox_mon;
SELECT * FROM outbox.event_1;
RESET ROLE;
-- a role with no outbox rights at all changes the table: refused until
-- it may publish to the topic; then captured too
SET ROLE regress_outbox_mon;
INSERT INTO owned_orders VALUES (2, 'by mon');
RESET ROLE;
SELECT outbox.grant_topic('regress_outbox_mon', 'owned.changes');
SET ROLE regress_outbox_mon;
INSERT INTO owned_orders VALUES (2, 'by mon');
DELETE FROM owned_orders WHERE id = 1;
RESET ROLE;
SELECT id, topic, key, convert_from(payload, 'UTF8')::jsonb->>'op' AS op,
       convert_from(payload, 'UTF8')::jsonb->'after' AS after
  FROM outbox.event WHERE topic = 'owned.changes' ORDER BY id;

-- The envelope is built with the rights of the role whose change fired
-- the trigger, never with the extension owner's: row_to_json runs the
-- casts to json of the row's types, which a table owner may define.
CREATE SCHEMA regress_outbox_owner_s AUTHORIZATION regress_outbox_owner;
SET ROLE regress_outbox_owner;
CREATE TYPE regress_outbox_owner_s.mood AS ENUM ('happy');
CREATE FUNCTION regress_outbox_owner_s.mood_json(regress_outbox_owner_s.mood) RETURNS json
LANGUAGE sql AS $$
    SELECT json_build_object('current_user', current_user::text,
                             'superuser', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))
$$;
CREATE CAST (regress_outbox_owner_s.mood AS json)
    WITH FUNCTION regress_outbox_owner_s.mood_json(regress_outbox_owner_s.mood);
CREATE TABLE regress_outbox_owner_s.moods (id integer, mood regress_outbox_owner_s.mood);
CREATE TRIGGER moods_outbox AFTER INSERT ON regress_outbox_owner_s.moods
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('owned.moods', 'id');
INSERT INTO regress_outbox_owner_s.moods VALUES (1, 'happy');
RESET ROLE;
SELECT key, convert_from(payload, 'UTF8')::jsonb->'after'->'mood' AS mood_as_json
  FROM outbox.event WHERE topic = 'owned.moods';

------------------------------------------------------------------------
-- Topic grants: exact names, prefixes, all topics, PUBLIC, membership,
-- revoke, the view, and what is refused with which SQLSTATE
------------------------------------------------------------------------
CREATE ROLE regress_outbox_orders NOLOGIN;
CREATE ROLE regress_outbox_member NOLOGIN IN ROLE regress_outbox_orders;
GRANT EXECUTE ON FUNCTION outbox.enqueue(text, text, text, jsonb)
    TO regress_outbox_orders, regress_outbox_member;
SELECT outbox.grant_topic('regress_outbox_orders', 'orders.*');
SELECT outbox.grant_topic('regress_outbox_orders', 'invoices');
SELECT outbox.grant_topic('regress_outbox_orders', 'orders.*') AS granted_again;
SET ROLE regress_outbox_orders;
SELECT outbox.enqueue('orders.created', 'prefix'::text) IS NOT NULL AS prefix_allowed;
SELECT outbox.enqueue('orders.', 'empty rest'::text) IS NOT NULL AS bare_prefix_allowed;
SELECT outbox.enqueue('invoices', 'exact'::text) IS NOT NULL AS exact_allowed;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('orders', 'x'::text)$$) AS not_the_prefix;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('ordersx', 'x'::text)$$) AS other_prefix;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('invoices.eu', 'x'::text)$$) AS exact_is_exact;
-- the whole error a caller sees
SELECT outbox.enqueue('payments', 'x'::text);
-- nor can it grant itself anything
SELECT outbox.grant_topic('regress_outbox_orders', '*');
RESET ROLE;
-- a member has the privileges of its role
SET ROLE regress_outbox_member;
SELECT outbox.enqueue('orders.paid', 'member'::text) IS NOT NULL AS member_allowed;
RESET ROLE;
-- PUBLIC, then all topics
SELECT outbox.grant_topic('PUBLIC', 'public.news');
SELECT outbox.grant_topic('regress_outbox_member', '*');
SET ROLE regress_outbox_orders;
SELECT outbox.enqueue('public.news', 'anyone'::text) IS NOT NULL AS public_allowed;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('payments', 'x'::text)$$) AS still_refused;
SET ROLE regress_outbox_member;
SELECT outbox.enqueue('payments', 'x'::text) IS NOT NULL AS all_topics_allowed;
RESET ROLE;
SELECT grantee, topic_pattern, matches, granted_by = session_user AS granted_by_me
  FROM outbox.topic_grants ORDER BY grantee, topic_pattern;
-- revoke: one pattern, then all of a role's; takes effect at once, also in
-- a session that was just allowed
SET ROLE regress_outbox_orders;
SELECT outbox.enqueue('invoices', 'before revoke'::text) IS NOT NULL AS allowed_before;
RESET ROLE;
SELECT outbox.revoke_topic('regress_outbox_orders', 'invoices');
SELECT outbox.revoke_topic('regress_outbox_orders', 'invoices') AS revoked_again;
SET ROLE regress_outbox_orders;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('invoices', 'x'::text)$$) AS after_revoke;
SELECT outbox.enqueue('orders.created', 'prefix still'::text) IS NOT NULL AS prefix_still_allowed;
RESET ROLE;
SELECT outbox.revoke_topic('regress_outbox_orders');
SELECT outbox.revoke_topic('public', 'public.news');
SET ROLE regress_outbox_member;
SELECT outbox.enqueue('orders.created', 'own grant'::text) IS NOT NULL AS own_all_topics_grant;
RESET ROLE;
SELECT outbox.revoke_topic('regress_outbox_member');
SET ROLE regress_outbox_member;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('orders.created', 'x'::text)$$) AS nothing_left;
RESET ROLE;
-- in a transaction, a grant counts from the next statement on and a
-- rolled back grant never counted
BEGIN;
SELECT outbox.grant_topic('regress_outbox_orders', 'tx.*');
SET LOCAL ROLE regress_outbox_orders;
SELECT outbox.enqueue('tx.one', 'in the granting transaction'::text) IS NOT NULL AS allowed_in_tx;
ROLLBACK;
SET ROLE regress_outbox_orders;
SELECT pg_temp.sqlstate_of($$SELECT outbox.enqueue('tx.one', 'x'::text)$$) AS after_rollback;
RESET ROLE;
-- bad patterns and unknown roles
SELECT pg_temp.sqlstate_of($$SELECT outbox.grant_topic('regress_outbox_orders', 'a*b')$$) AS star_inside;
SELECT pg_temp.sqlstate_of($$SELECT outbox.grant_topic('regress_outbox_orders', 'bad topic')$$) AS space;
SELECT pg_temp.sqlstate_of($$SELECT outbox.grant_topic('regress_outbox_orders', '')$$) AS empty;
SELECT pg_temp.sqlstate_of($$SELECT outbox.grant_topic('regress_outbox_orders', NULL)$$) AS null_pattern;
SELECT pg_temp.sqlstate_of($$SELECT outbox.grant_topic('regress_no_such_role', 'x')$$) AS unknown_role;
SELECT pg_temp.sqlstate_of($$SELECT outbox.grant_topic(NULL, 'x')$$) AS null_role;
SELECT split_part(pg_temp.sqlstate_of($$INSERT INTO outbox.topic_grant (grantee, topic_pattern) VALUES (0, '**')$$),
                  ' DETAIL', 1) AS table_checks_too;
-- superusers publish anywhere without a grant
SELECT outbox.enqueue('ungranted.topic', 'superuser'::text) IS NOT NULL AS superuser_allowed;
SELECT count(*) AS grants_left FROM outbox.topic_grant;

------------------------------------------------------------------------
-- Catalog facts
------------------------------------------------------------------------
-- every SECURITY DEFINER function pins search_path
SELECT p.oid::regprocedure AS function, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'outbox'::regnamespace AND p.prosecdef
 ORDER BY p.oid::regprocedure::text;
SELECT count(*) AS secdef_without_search_path
  FROM pg_proc p
 WHERE p.pronamespace = 'outbox'::regnamespace AND p.prosecdef
   AND NOT coalesce(EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%'), false);
-- no function is executable by PUBLIC but last_event_id, which shows only
-- the caller's own transaction (a NULL proacl would mean it is)
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p
 WHERE p.pronamespace = 'outbox'::regnamespace
   AND (p.proacl IS NULL
        OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                    WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'));
SELECT count(*) AS functions_in_schema FROM pg_proc WHERE pronamespace = 'outbox'::regnamespace;
-- no table, sequence or view grants anything to PUBLIC
SELECT c.oid::regclass AS open_to_public, c.relkind
  FROM pg_class c
 WHERE c.relnamespace = 'outbox'::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
   AND (c.relacl IS NULL
        OR EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0));
-- all privileges granted to anyone but the owner (the extension's own
-- grants, plus the ones this test made)
SELECT o.object, r.rolname AS grantee, a.privilege_type
  FROM (SELECT p.oid::regprocedure::text AS object, p.proacl AS acl, p.proowner AS owner
          FROM pg_proc p WHERE p.pronamespace = 'outbox'::regnamespace
        UNION ALL
        SELECT c.oid::regclass::text, c.relacl, c.relowner
          FROM pg_class c WHERE c.relnamespace = 'outbox'::regnamespace) o,
       aclexplode(o.acl) a
       JOIN pg_roles r ON r.oid = a.grantee
 WHERE a.grantee <> o.owner
 ORDER BY 1, 2, 3;
-- the schema: PUBLIC may use it, but not create in it
SELECT a.privilege_type
  FROM pg_namespace n, aclexplode(n.nspacl) a
 WHERE n.nspname = 'outbox' AND a.grantee = 0;
SET ROLE regress_outbox_app;
CREATE TABLE outbox.mine (x int);
CREATE FUNCTION outbox.enqueue(topic text, payload int) RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint';
RESET ROLE;

------------------------------------------------------------------------
-- Clean up
------------------------------------------------------------------------
DROP OWNED BY regress_outbox_app, regress_outbox_mon, regress_outbox_owner,
    regress_outbox_orders, regress_outbox_member CASCADE;
DROP EXTENSION outbox_kafka;
DROP ROLE regress_outbox_app, regress_outbox_mon, regress_outbox_owner,
    regress_outbox_orders, regress_outbox_member;
