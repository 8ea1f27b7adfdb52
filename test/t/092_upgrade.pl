# Copyright (c) 2026, outbox_kafka developers
#
# ALTER EXTENSION outbox_kafka UPDATE from 0.1 to the current version
# (through 0.2, 0.3, 0.4, 0.5, 0.6 and 0.7), as docs/operations.md describes it:
#
# - events enqueued under 0.1 are still there after the update and are
#   published by the relay (which backs off, saying why, while the schema is
#   still 0.1 and the library already newer), without outbox-event-id;
#   events enqueued after it carry one;
# - applications keep working: the new library enqueues into the old
#   schema before the update, and a role that could enqueue under 0.3 may
#   publish to any topic after it (a '*' grant to PUBLIC), while on a
#   fresh install it may not;
# - the 0.2 objects exist and work: held topics, byte-bounded chunks,
#   re-queued dead letters carrying outbox-requeued-from, the new status
#   columns; the SQL relay API (open_batch, next_events, ack_events) is gone;
# - a 0.4 held topic and its queue become a whole-topic hold (partition
#   -1) of 0.5;
# - 0.6 adds the inbox (subscriptions, offsets, de-duplication records,
#   its dead letters and status);
# - 0.7 adds per-key hold, a Kafka dead-letter topic and rewind by
#   timestamp to the inbox;
# - a database updated step by step (0.1 to 0.2 to 0.3 to 0.4 to 0.5 to
#   0.6 to 0.7) and one updated at once have exactly the objects,
#   definitions, triggers, privileges and comments of a fresh 0.7 install.
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
# an application role of 0.1: EXECUTE on enqueue, as the docs said then
$node->safe_psql('upg', q{
	CREATE ROLE upg_app;
	GRANT EXECUTE ON FUNCTION outbox.enqueue(text, text, text, jsonb) TO upg_app;
});
is($node->safe_psql('upg',
		"SELECT extversion FROM pg_extension WHERE extname = 'outbox_kafka'"),
	'0.1', 'installed at version 0.1');
$node->safe_psql('upg', q{
	SELECT outbox.enqueue('upg.events', '{"n": 1}'::jsonb, key => 'k1',
	                      headers => '{"trace": "a"}');
	SELECT outbox.enqueue('upg.events', 'two', key => 'k2');
	SELECT outbox.enqueue('upg.events', NULL::jsonb, key => 'k1');
});
is($node->safe_psql('upg', 'SELECT count(*) FROM outbox.event'), '3',
	'the new library enqueues into the 0.1 schema');

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
	'0.7', 'now at version 0.7');

ok(wait_until_published($node, 'upg', 3),
	'the relay publishes them without a restart');
my @msgs = consume_all($mock->bootstrap, 'upg.events');
is(scalar(@msgs), 3, 'three messages in Kafka');
is(join(' ', map { header_value($_, 'outbox-id') } @msgs), '1 2 3', 'in id order');
is($msgs[0]->{payload}, '{"n": 1}', 'JSON payload as enqueued under 0.1');
is(header_value($msgs[0], 'trace'), 'a', 'with its header');
is($msgs[2]->{payload}, undef, 'the tombstone is a tombstone');
is(scalar(grep { defined header_value($_, 'outbox-event-id') } @msgs), 0,
	'events enqueued before 0.4 have no outbox-event-id');
is($node->safe_psql('upg', q{
	SET ROLE upg_app;
	SELECT outbox.enqueue('upg.events', 'after the update', key => 'k3') IS NOT NULL;
	}), 't', 'a role that could enqueue under 0.1 still publishes after the update');
is($node->safe_psql('upg', 'SELECT grantee, topic_pattern FROM outbox.topic_grants'),
	'PUBLIC|*', 'because the update granted every topic to PUBLIC');
my $uuid = $node->safe_psql('upg', 'SELECT event_uuid FROM outbox.event WHERE id = 4');
like($uuid, qr/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
	'an event enqueued after the update has a UUIDv7');
ok(wait_until_published($node, 'upg', 4), 'and is published');
@msgs = consume_all($mock->bootstrap, 'upg.events');
is(header_value($msgs[3], 'outbox-event-id'), $uuid, 'carrying it as outbox-event-id');
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
# one version at a time, as a database that was updated at each release
foreach my $v ('0.2', '0.3', '0.4', '0.5', '0.6', '0.7')
{
	if ($v eq '0.5')
	{
		# a topic held by 0.4, with its queue
		$node->safe_psql('upg_api', q{
			SELECT outbox.enqueue('t.held', 'waits', key => 'h');
			SELECT outbox.hold_events(ARRAY[id], 't.held', 'not authorised', 'topic refused')
			  FROM outbox.event WHERE topic = 't.held';
		});
	}
	if ($v eq '0.7')
	{
		# a service role allowed to subscribe under 0.6
		$node->safe_psql('upg_api', q{
			CREATE ROLE upg_subscriber;
			GRANT EXECUTE ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text)
			  TO upg_subscriber;
		});
	}
	$node->safe_psql('upg_api', "ALTER EXTENSION outbox_kafka UPDATE TO '$v'");
	is($node->safe_psql('upg_api',
			"SELECT extversion FROM pg_extension WHERE extname = 'outbox_kafka'"),
		$v, "updated to $v");
}
is($node->safe_psql('upg_api', q{
	SELECT has_function_privilege('upg_subscriber',
	         'outbox.subscribe(text, text, regprocedure, integer, text, text)', 'EXECUTE'),
	       has_function_privilege('public',
	         'outbox.subscribe(text, text, regprocedure, integer, text, text)', 'EXECUTE')}),
	't|f', '0.7: a role granted outbox.subscribe keeps it on its new signature, PUBLIC does not get it');
$node->safe_psql('upg_api', q{
	REVOKE EXECUTE ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text)
	  FROM upg_subscriber;
});
is($node->safe_psql('upg_api',
		q{SELECT topic, partition IS NULL, held_events, reason FROM outbox.held_topics}),
	't.held|t|1|not authorised',
	'a topic held by 0.4 is held as a whole by 0.5, with its queue');
is($node->safe_psql('upg_api',
		q{SELECT string_agg(key, ',') FROM outbox.held_events('t.held', -1)}),
	'h', 'whose events the 0.5 relay reads');
$node->safe_psql('upg_api', q{
	SELECT outbox.release_held_events('t.held', -1, array_agg(id), true) FROM outbox.held_event;
});

is($node->safe_psql('upg_api',
		q{SELECT string_agg(e.id::text, ',' ORDER BY e.id)
		    FROM outbox.relay_state st,
		         outbox._batch_events(st.prev_tick, st.cur_tick, 0, st.batch_last_id, 10, 10) e}),
	'1', 'the batch opened under 0.1 reads with _batch_events, bounded by bytes');
foreach my $gone ('open_batch()', 'next_events(integer,bigint,bigint)', 'ack_events(bigint,bigint)')
{
	is($node->safe_psql('upg_api', "SELECT to_regprocedure('outbox.$gone') IS NULL"),
		't', "outbox.$gone is gone");
}
is($node->safe_psql('upg_api',
		q{SELECT outbox.hold_events(ARRAY[2, 3], 't.big', -1, 'unknown topic', 'topic refused')}),
	'2', 'hold_events moves events to a held queue');
is($node->safe_psql('upg_api',
		q{SELECT topic, reason, error_class, held_events FROM outbox.held_topics}),
	't.big|unknown topic|topic refused|2', 'outbox.held_topics shows the held topic');
is($node->safe_psql('upg_api', 'SELECT held_topics, held_events FROM outbox.status'),
	'1|2', 'outbox.status counts held topics and events');
is($node->safe_psql('upg_api',
		q{SELECT string_agg(id::text, ',') FROM outbox.held_events('t.big', -1, 10, 100)}),
	'2', 'held_events reads the head of the queue, bounded by bytes');
is($node->safe_psql('upg_api',
		q{SELECT outbox.release_held_events('t.big', -1, ARRAY[2, 3])}),
	't', 'release_held_events empties the queue and releases the topic');
is($node->safe_psql('upg_api', 'SELECT outbox.requeue_dead_letters()'),
	'1', 'a dead letter made under 0.1 is re-queued under 0.5');
is($node->safe_psql('upg_api',
		q{SELECT topic, key, headers::text, event_uuid IS NOT NULL FROM outbox.event WHERE id = (SELECT max(id) FROM outbox.event)}),
	q{t.dead|k|{"h": "v", "outbox-requeued-from": "1"}|t},
	'the re-queued event carries outbox-requeued-from, and an identity it lacked');

# --- an updated database equals a fresh 0.7 install ------------------------

$node->safe_psql('fresh', 'CREATE EXTENSION outbox_kafka');
is($node->safe_psql('fresh',
		"SELECT extversion FROM pg_extension WHERE extname = 'outbox_kafka'"),
	'0.7', 'a fresh install is 0.7');
# secure by default: EXECUTE on enqueue publishes nowhere without a grant
$node->safe_psql('fresh', q{
	CREATE ROLE fresh_app;
	GRANT EXECUTE ON FUNCTION outbox.enqueue(text, text, text, jsonb) TO fresh_app;
});
my ($ret, $stdout, $stderr) = $node->psql('fresh', q{
	SET ROLE fresh_app;
	SELECT outbox.enqueue('upg.events', 'x');
});
like($stderr, qr/permission denied to publish to topic "upg.events"/,
	'a fresh install grants no topic');
is($node->safe_psql('fresh', 'SELECT count(*) FROM outbox.topic_grant'), '0',
	'outbox.topic_grant is empty');

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
    || E'\n' || coalesce((
      SELECT string_agg(pg_get_triggerdef(t.oid), '; ' ORDER BY 1)
        FROM pg_trigger t WHERE t.tgrelid = objid AND NOT t.tgisinternal), '')
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
# the roles this test granted EXECUTE to are not the extension's
$node->safe_psql('upg',
	'REVOKE EXECUTE ON FUNCTION outbox.enqueue(text, text, text, jsonb) FROM upg_app');
$node->safe_psql('fresh',
	'REVOKE EXECUTE ON FUNCTION outbox.enqueue(text, text, text, jsonb) FROM fresh_app');
my $updated = $node->safe_psql('upg', $describe);
my $stepwise = $node->safe_psql('upg_api', $describe);
my $fresh = $node->safe_psql('fresh', $describe);
my @updated_objs = ($updated =~ /^(\w[^\n]*(?:function|table|view|sequence|schema|type)[^\n]*)$/mg);
ok(scalar(@updated_objs) >= 35, scalar(@updated_objs) . ' objects compared');
is($updated, $fresh,
	'an updated 0.1 has exactly the objects, definitions, triggers, privileges and comments of a fresh install');
is($stepwise, $fresh,
	'so has one updated 0.1 to 0.2 to 0.3 to 0.4 to 0.5 to 0.6 to 0.7, one version at a time');
foreach my $obj ('table outbox.held_topic', 'table outbox.held_event',
	'view outbox.held_topics', 'function outbox.hold_events(bigint[],text,integer,text,text)',
	'table outbox.topic_grant', 'view outbox.topic_grants',
	'function outbox.grant_topic(text,text)', 'function outbox.revoke_topic(text,text)',
	'function outbox.last_event_id()',
	'table outbox.inbox_subscription', 'table outbox.inbox_offset',
	'table outbox.inbox_dead_letter', 'view outbox.inbox_status',
	'table outbox.inbox_held', 'table outbox.inbox_rewind_request', 'view outbox.inbox_held_keys',
	'function outbox.inbox_rewind_to_time(text,timestamp with time zone)',
	'view outbox.subscriptions',
	'function outbox.subscribe(text,text,regprocedure,integer,text,text)')
{
	like($updated, qr/^\Q$obj\E$/m, "updated database has $obj");
}
like($updated, qr/^table outbox\.event\n[^\n]*\n[^\n]*event_uuid uuid/m,
	'outbox.event has event_uuid');
like($updated, qr/CREATE TRIGGER topic_grant_changed/, 'the grant cache trigger is there');
unlike($updated, qr/^function outbox\.(open_batch|next_events|ack_events)\(/m,
	'the SQL relay API is gone');

$node->stop;
$mock->stop;
done_testing();
