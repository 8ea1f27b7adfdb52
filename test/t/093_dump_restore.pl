# Copyright (c) 2026, outbox_kafka developers
#
# pg_dump / pg_restore of a database with the extension into another
# cluster, as docs/operations.md ("Backup and restore") describes it:
#
# - pending events, held events and held topics, dead letters and the id
#   sequence are in the dump; the relay's progress (outbox.relay_state) is
#   not: the restored database starts from an empty tick;
# - the restored events keep the transaction ids of the old cluster, so the
#   new cluster's relay publishes them only once its own transaction
#   counter passes them (at once if it is already further, much later if
#   not), whatever was enqueued there meanwhile;
# - the documented procedure (re-stamp the events with a transaction of the
#   new cluster, held events back into the stream) makes every restored
#   event publishable at once, in id order;
# - a dump of a drained outbox taken with
#   --exclude-table-data='outbox.event_[0-9]' restores no event but keeps
#   the id sequence ('outbox.event_*' would also match outbox.event_id_seq
#   and lose it).
#
# No relay runs here: the test's relay_open_batch / relay_next_events
# (test/sql/include/relay_api.sql, over outbox._batch_bounds and
# _batch_events, the definition the relay implements) show what a relay
# would publish.
use strict;
use warnings;

use FindBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

sub new_cluster
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	# preloaded, no database listed: no relay runs
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'outbox_kafka'\n");
	$node->start;
	return $node;
}

# use up n transaction ids, one top-level transaction each
sub burn_xids
{
	my ($node, $n) = @_;
	$node->safe_psql('postgres', join('', map { "SELECT pg_current_xact_id();\n" } 1 .. $n));
}

sub xmax
{
	my ($node, $db) = @_;
	return $node->safe_psql($db // 'postgres',
		'SELECT pg_snapshot_xmax(pg_current_snapshot())');
}

# the test's relay functions, in schema relay_test of db (dumped with it)
sub install_relay_api
{
	my ($node, $db) = @_;
	my $sql = slurp_file("$FindBin::Bin/../sql/include/relay_api.sql");
	$sql =~ s/pg_temp\./relay_test./g;
	$node->safe_psql($db, "CREATE SCHEMA relay_test;\n$sql");
}

my $old = new_cluster('old');
my $new = new_cluster('new');

# --- the old cluster: published, held and pending events -----------------

# the old cluster is further on than the new one (as a production cluster
# usually is compared with a freshly made one)
burn_xids($old, 600);
$old->safe_psql('postgres', 'CREATE DATABASE app');
$old->safe_psql('app', 'CREATE EXTENSION outbox_kafka');
install_relay_api($old, 'app');
$old->safe_psql('app', q{
	SELECT outbox.enqueue('t.a', 'e1', key => 'k1');
	SELECT outbox.enqueue('t.b', 'e2', key => 'k2');
});
# e1 published, e2 held (topic t.b unknown), the batch done; the table
# holding them rotated away and truncated
$old->safe_psql('app', q{
	SELECT relay_test.relay_open_batch();
	SELECT outbox.hold_events(ARRAY[2], 't.b', -1, 'unknown topic', 'topic refused');
	SELECT relay_test.relay_ack_events(2);
	SELECT outbox.maintain(true);
	SELECT outbox.maintain();
});
is($old->safe_psql('app', 'SELECT count(*) FROM outbox.event'), '0',
	'old: e1 published and truncated, e2 only in its held queue');
$old->safe_psql('app', q{
	SELECT outbox.enqueue('t.a', 'e3', key => 'k1');
	SELECT outbox.enqueue('t.a', 'e4', key => 'k1');
	SELECT outbox.enqueue('t.dead', 'x');
	SELECT relay_test.relay_open_batch();
	SELECT outbox.dead_letter(5, 'MSG_SIZE_TOO_LARGE');
});
my $old_prev_tick = $old->safe_psql('app', 'SELECT prev_tick FROM outbox.relay_state');
isnt($old_prev_tick, '1:1:', "old: the relay's progress is at $old_prev_tick");
my $old_txid = $old->safe_psql('app', 'SELECT max(txid) FROM outbox.event');

my $dump = $PostgreSQL::Test::Utils::tmp_check . '/app.dump';
command_ok([ 'pg_dump', '-Fc', '-d', $old->connstr('app'), '-f', $dump ],
	'pg_dump -Fc');
my $dump_drained = $PostgreSQL::Test::Utils::tmp_check . '/app_no_events.dump';
command_ok(
	[ 'pg_dump', '-Fc', '--exclude-table-data=outbox.event_[0-9]',
	  '-d', $old->connstr('app'), '-f', $dump_drained ],
	"pg_dump -Fc --exclude-table-data='outbox.event_[0-9]'");

foreach my $db ('plain', 'restamped')
{
	$new->safe_psql('postgres', "CREATE DATABASE $db");
	command_ok([ 'pg_restore', '-d', $new->connstr($db), $dump ], "pg_restore into $db");
}
$new->safe_psql('postgres', 'CREATE DATABASE drained');
command_ok([ 'pg_restore', '-d', $new->connstr('drained'), $dump_drained ],
	'pg_restore of the dump without events');

# --- a plain restore ------------------------------------------------------

is($new->safe_psql('plain', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM outbox.event'),
	'3,4,5', 'pending events (and the dead-lettered one, still in its table) are restored');
is($new->safe_psql('plain', q{SELECT string_agg(txid::text, ',' ORDER BY id) FROM outbox.event}),
	$old->safe_psql('app', q{SELECT string_agg(txid::text, ',' ORDER BY id) FROM outbox.event}),
	'with the transaction ids of the old cluster');
is($new->safe_psql('plain', 'SELECT id, topic FROM outbox.held_event'),
	'2|t.b', 'held events are restored');
is($new->safe_psql('plain', 'SELECT topic, reason FROM outbox.held_topic'),
	't.b|unknown topic', 'held topics are restored');
is($new->safe_psql('plain', 'SELECT id, error FROM outbox.dead_letters'),
	'5|MSG_SIZE_TOO_LARGE', 'dead letters are restored');
is($new->safe_psql('plain',
		q{SELECT string_agg(id || ':' || event_uuid, ' ' ORDER BY id) FROM outbox.event}),
	$old->safe_psql('app',
		q{SELECT string_agg(id || ':' || event_uuid, ' ' ORDER BY id) FROM outbox.event}),
	'every event keeps its identity (outbox-event-id)');
is($new->safe_psql('plain', 'SELECT prev_tick FROM outbox.relay_state'),
	'1:1:', "the relay's progress is not: it starts from an empty tick");
is($new->safe_psql('plain', "SELECT nextval('outbox.event_id_seq')"),
	'6', 'the id sequence goes on where the old cluster stopped');

my $new_xmax = xmax($new, 'plain');
cmp_ok($old_txid, '>', $new_xmax,
	"the old transaction ids ($old_txid) are ahead of the new cluster's ($new_xmax)");
is($new->safe_psql('plain', 'SELECT events FROM relay_test.relay_open_batch()'),
	'0', 'so the new relay publishes none of them yet');
cmp_ok($new->safe_psql('plain', 'SELECT pending_events FROM outbox.status'),
	'>=', 3, 'while outbox.status counts them as pending');
# an event enqueued in the new cluster goes out before them
$new->safe_psql('plain', "SELECT outbox.enqueue('t.a', 'e7', key => 'k1')");
$new->safe_psql('plain', 'SELECT relay_test.relay_open_batch()');
is($new->safe_psql('plain', q{SELECT string_agg(id::text, ',') FROM relay_test.relay_next_events(100)}),
	'7', "an event enqueued after the restore is published before them (k1's order breaks)");
$new->safe_psql('plain', 'SELECT relay_test.relay_ack_events(7)');

# --- the documented procedure ------------------------------------------------

$new->safe_psql('restamped', q{
BEGIN;
-- events of held topics go back into the stream (the new relay holds
-- their topic again if Kafka still refuses it)
INSERT INTO outbox.event_0 (id, created_at, topic, key, payload, payload_kind, headers,
                            event_uuid)
SELECT h.id, h.created_at, h.topic, h.key, h.payload, h.payload_kind, h.headers,
       h.event_uuid
  FROM outbox.held_event h
 WHERE NOT EXISTS (SELECT 1 FROM outbox.event e WHERE e.id = h.id);
DELETE FROM outbox.held_event;
DELETE FROM outbox.held_topic;
-- events the dead letters hold are not published again (requeue them)
DELETE FROM outbox.event e USING outbox.dead_letters d WHERE e.id = d.id;
-- every stored event now belongs to this transaction of the new cluster
UPDATE outbox.event SET txid = pg_current_xact_id();
COMMIT;
});
is($new->safe_psql('restamped', 'SELECT events FROM relay_test.relay_open_batch()'),
	'3', 're-stamped: the next batch holds every restored event');
is($new->safe_psql('restamped',
		q{SELECT string_agg(id || ':' || topic || ':' || coalesce(key, '-'), ' ' ORDER BY id)
		    FROM relay_test.relay_next_events(100)}),
	'2:t.b:k2 3:t.a:k1 4:t.a:k1', 'in id order, the held event included');
is($new->safe_psql('restamped', 'SELECT count(*) FROM outbox.event WHERE event_uuid IS NULL'),
	'0', 'the held event went back with its identity');
is($new->safe_psql('restamped', 'SELECT held_topics, held_events FROM outbox.status'),
	'0|0', 'no topic is held any more');

# --- the plain restore's events go out once the counter passes them -------

burn_xids($new, $old_txid - $new_xmax + 10);
is($new->safe_psql('plain', 'SELECT events FROM relay_test.relay_open_batch()'),
	'3', 'plain restore: once the new counter passes the old ids, the restored events are published');

# --- a drained outbox dumped without events -------------------------------

is($new->safe_psql('drained', 'SELECT count(*) FROM outbox.event'), '0',
	'--exclude-table-data: no event restored');
is($new->safe_psql('drained', "SELECT nextval('outbox.event_id_seq')"), '6',
	'the id sequence is restored (outbox-id stays unique for consumers)');

$old->stop;
$new->stop;
done_testing();
