# Copyright (c) 2026, outbox_kafka developers
#
# ALTER EXTENSION outbox_kafka UPDATE from 0.1 to the current version
# (through 0.2 and 0.3), as docs/operations.md describes it:
#
# - events enqueued under 0.1 are still there after the update and are
#   published by the relay (which backs off, saying why, while the schema is
#   still 0.1 and the library already newer);
# - the 0.2 objects exist and work: held topics, byte-bounded chunks,
#   re-queued dead letters carrying outbox-requeued-from, the new status
#   columns; the 0.3 batch functions serve the relay API;
# - an updated database has exactly the objects, definitions, privileges
#   and comments of a fresh install.
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OutboxKafkaTest;

my $mock = start_mock(brokers => 1, topics => ['upg.events:1']);
my $node = new_node(
	'upgrade',
	databases => 'upg',
	bootstrap => $mock->bootstrap,
	create_extension_in => []);
$node->safe_psql('postgres', 'CREATE DATABASE upg');
$node->safe_psql('postgres', 'CREATE DATABASE upg_api');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');

# --- 0.1 with events waiting -------------------------------------------------

$node->safe_psql('upg', "CREATE EXTENSION outbox_kafka VERSION '0.1'");
is($node->safe_psql('upg',
		"SELECT extversion FROM pg_extension WHERE extname = 'outbox_kafka'"),
	'0.1', 'installed at version 0.1');
$node->safe_psql('upg', q{
	SELECT outbox.enqueue('upg.events', '{"n": 1}'::jsonb, key => 'k1',
	                      headers => '{"trace": "a"}');
	SELECT outbox.enqueue('upg.events', 'two', key => 'k2');
	SELECT outbox.enqueue('upg.events', NULL::jsonb, key => 'k1');
});

# the library cannot work with the 0.1 schema: it waits and says what to do
# (it used to fail on a missing table and back off, again and again)
ok( $node->poll_query_until('upg',
		q{SELECT state = 'misconfigured'
		     AND last_error LIKE '%is at version 0.1 in this database, but the loaded library needs version%run ALTER EXTENSION outbox_kafka UPDATE%'
		    FROM outbox.status}),
	'before the update the relay waits, naming the versions and the fix');
unlike(slurp_file($node->logfile), qr/relation "outbox\.[a-z_]+" does not exist/,
	'... and never fails on an object the old schema lacks');
is($node->safe_psql('upg', 'SELECT pending_events FROM outbox.status'),
	'3', 'the three events wait');

# --- the update --------------------------------------------------------------

my $in_update = $node->safe_psql('upg', q{
	BEGIN;
	ALTER EXTENSION outbox_kafka UPDATE;
	SELECT string_agg(id || ':' || coalesce(key, '-') || ':' || payload_kind::text, ' ' ORDER BY id)
	  FROM outbox.event;
	COMMIT;
});
is($in_update, '1:k1:j 2:k2:t 3:k1:j',
	'after ALTER EXTENSION UPDATE the 0.1 events are still there');
is($node->safe_psql('upg',
		"SELECT extversion FROM pg_extension WHERE extname = 'outbox_kafka'"),
	'0.3', 'now at version 0.3');

ok(wait_until_published($node, 'upg', 3),
	'the relay publishes them without a restart');
my @msgs = consume_all($mock->bootstrap, 'upg.events');
is(scalar(@msgs), 3, 'three messages in Kafka');
is(join(' ', map { header_value($_, 'outbox-id') } @msgs), '1 2 3', 'in id order');
is($msgs[0]->{payload}, '{"n": 1}', 'JSON payload as enqueued under 0.1');
is(header_value($msgs[0], 'trace'), 'a', 'with its header');
is($msgs[2]->{payload}, undef, 'the tombstone is a tombstone');
is($node->safe_psql('upg',
		'SELECT state, last_error IS NULL, held_topics, held_events FROM outbox.status'),
	'idle|t|0|0', 'status: idle, error cleared, the 0.2 columns present');

# --- the 0.2 objects work (by hand, in a database without a relay) ----------

$node->safe_psql('upg_api', "CREATE EXTENSION outbox_kafka VERSION '0.1'");
# a dead letter made under 0.1, with the 0.1 relay API
$node->safe_psql('upg_api', q{
	SELECT outbox.enqueue('t.dead', 'poison', key => 'k', headers => '{"h": "v"}');
	SELECT outbox.enqueue('t.big', repeat('x', 3000), key => 'a');
	SELECT outbox.enqueue('t.big', repeat('y', 3000), key => 'b');
});
$node->safe_psql('upg_api', q{
	SELECT outbox.open_batch();
	SELECT outbox.dead_letter(1, 'MSG_SIZE_TOO_LARGE');
});
$node->safe_psql('upg_api', 'ALTER EXTENSION outbox_kafka UPDATE');

is($node->safe_psql('upg_api',
		q{SELECT string_agg(id::text, ',' ORDER BY id)
		    FROM outbox.next_events(10, NULL, 10)}),
	'1', 'next_events(max_events, after_id, max_bytes) bounds the chunk by bytes');
is($node->safe_psql('upg_api',
		q{SELECT outbox.hold_events(ARRAY[2, 3], 't.big', 'unknown topic', 'topic refused')}),
	'2', 'hold_events moves events to a held queue');
is($node->safe_psql('upg_api',
		q{SELECT topic, reason, error_class, held_events FROM outbox.held_topics}),
	't.big|unknown topic|topic refused|2', 'outbox.held_topics shows the held topic');
is($node->safe_psql('upg_api', 'SELECT held_topics, held_events FROM outbox.status'),
	'1|2', 'outbox.status counts held topics and events');
is($node->safe_psql('upg_api',
		q{SELECT string_agg(id::text, ',') FROM outbox.held_events('t.big', 10, 100)}),
	'2', 'held_events reads the head of the queue, bounded by bytes');
is($node->safe_psql('upg_api',
		q{SELECT outbox.release_held_events('t.big', ARRAY[2, 3])}),
	't', 'release_held_events empties the queue and releases the topic');
is($node->safe_psql('upg_api', 'SELECT outbox.ack_events(3, 3)'),
	't', 'the 0.1 batch completes under 0.2');

is($node->safe_psql('upg_api', 'SELECT outbox.requeue_dead_letters()'),
	'1', 'a dead letter made under 0.1 is re-queued under 0.2');
is($node->safe_psql('upg_api',
		q{SELECT topic, key, headers::text FROM outbox.event WHERE id = 4}),
	q{t.dead|k|{"h": "v", "outbox-requeued-from": "1"}},
	'the re-queued event carries outbox-requeued-from');

# --- an updated database equals a fresh 0.2 install ------------------------

$node->safe_psql('fresh', 'CREATE EXTENSION outbox_kafka');
is($node->safe_psql('fresh',
		"SELECT extversion FROM pg_extension WHERE extname = 'outbox_kafka'"),
	'0.3', 'a fresh install is 0.3');

# every member object of the extension, with its definition, columns,
# constraints, indexes, privileges and comment
my $describe = q{
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'outbox_kafka'),
objs AS (
  SELECT d.classid, d.objid, d.objsubid
    FROM pg_depend d, ext
   WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
     AND d.deptype = 'e')
SELECT pg_describe_object(classid, objid, objsubid) || E'\n' ||
  CASE classid
  WHEN 'pg_proc'::regclass THEN
    pg_get_functiondef(objid)
    || ' acl=' || coalesce((SELECT proacl::text FROM pg_proc WHERE oid = objid), '-')
    || ' comment=' || coalesce(obj_description(objid, 'pg_proc'), '-')
  WHEN 'pg_class'::regclass THEN
    (SELECT relkind::text || ' acl=' || coalesce(relacl::text, '-')
            || ' comment=' || coalesce(obj_description(objid, 'pg_class'), '-')
            || CASE WHEN relkind = 'v' THEN E'\n' || pg_get_viewdef(objid) ELSE '' END
       FROM pg_class WHERE oid = objid)
    || E'\n' || coalesce((
      SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod)
                        || CASE WHEN attnotnull THEN ' not null' ELSE '' END
                        || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
                        || coalesce(' comment ' || col_description(objid, attnum), ''),
                        ', ' ORDER BY attnum)
        FROM pg_attribute a
        LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
       WHERE a.attrelid = objid AND a.attnum > 0 AND NOT a.attisdropped), '')
    || E'\n' || coalesce((
      SELECT string_agg(conname || ' ' || pg_get_constraintdef(c.oid), '; ' ORDER BY conname)
        FROM pg_constraint c WHERE c.conrelid = objid), '')
    || E'\n' || coalesce((
      SELECT string_agg(pg_get_indexdef(indexrelid), '; ' ORDER BY 1)
        FROM pg_index WHERE indrelid = objid), '')
  WHEN 'pg_namespace'::regclass THEN
    (SELECT 'acl=' || coalesce(nspacl::text, '-') || ' comment='
            || coalesce(obj_description(objid, 'pg_namespace'), '-')
       FROM pg_namespace WHERE oid = objid)
  ELSE '' END
FROM objs
UNION ALL
SELECT 'extconfig ' || (SELECT string_agg(c::regclass::text || ' where ' || w, ', ' ORDER BY 1)
                          FROM unnest(e.extconfig, e.extcondition) AS u(c, w))
  FROM pg_extension e WHERE e.extname = 'outbox_kafka'
ORDER BY 1
};
my $updated = $node->safe_psql('upg', $describe);
my $fresh = $node->safe_psql('fresh', $describe);
my @updated_objs = ($updated =~ /^(\w[^\n]*(?:function|table|view|sequence|schema|type)[^\n]*)$/mg);
ok(scalar(@updated_objs) >= 30, scalar(@updated_objs) . ' objects compared');
is($updated, $fresh,
	'an updated 0.1 has exactly the objects, definitions, privileges and comments of a fresh install');
foreach my $obj ('table outbox.held_topic', 'table outbox.held_event',
	'view outbox.held_topics', 'function outbox.hold_events(bigint[],text,text,text)',
	'function outbox.next_events(integer,bigint,bigint)')
{
	like($updated, qr/^\Q$obj\E$/m, "updated database has $obj");
}
unlike($updated, qr/^function outbox\.next_events\(integer,bigint\)$/m,
	'the 0.1 next_events(integer, bigint) is gone');

$node->stop;
$mock->stop;
done_testing();
