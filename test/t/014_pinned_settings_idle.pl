
# Copyright (c) 2026, outbox_kafka developers

# The relay pins the session settings it needs, whatever ALTER DATABASE
# says (read-only default, timeouts, serializable), and says in
# outbox.status why it cannot work when it cannot.  An idle relay uses no
# transaction id and writes no WAL.  A held topic keeps its retry clock
# (held_since) across a restart.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.pinned';
my $mock = start_mock(topics => ["$topic:2", 't.sick:1']);
my $node = new_node('pinned', bootstrap => $mock->bootstrap, poll_interval => '50ms');

# hostile database defaults: the relay must not inherit them
$node->safe_psql('postgres', q{
ALTER DATABASE postgres SET default_transaction_read_only = on;
ALTER DATABASE postgres SET default_transaction_isolation = 'serializable';
ALTER DATABASE postgres SET statement_timeout = '1ms';
ALTER DATABASE postgres SET lock_timeout = '1ms';
ALTER DATABASE postgres SET idle_in_transaction_session_timeout = '1ms';
ALTER DATABASE postgres SET search_path = 'nowhere';
});
# the test's own sessions override them on their command line; the relay
# gets no such help
$ENV{PGOPTIONS} = join ' ', map { "-c $_" } (
	'default_transaction_read_only=off', 'statement_timeout=0', 'lock_timeout=0',
	'idle_in_transaction_session_timeout=0', 'search_path=public',
	'default_transaction_isolation=read\\ committed');
$node->restart;
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', i::text, key => 'k' || (i % 5)) FROM generate_series(1, 100) i");
ok(wait_until_published($node, 'postgres', 100),
	'published although the database defaults are read-only, serializable and with 1 ms timeouts');
is(scalar(consume_all($mock->bootstrap, $topic)), 100, 'all 100 events in Kafka');

# idle: no transaction id, no WAL
my ($x0, $l0) = split /\|/, $node->safe_psql('postgres',
	"SELECT pg_current_xact_id(), pg_current_wal_insert_lsn()");
my $t0 = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
# twenty poll intervals at least: the measurement needs time to pass
$node->poll_query_until('postgres', "SELECT clock_timestamp() > '$t0'::timestamptz + interval '1 s'")
  or die 'clock';
my ($x1, $l1) = split /\|/, $node->safe_psql('postgres',
	"SELECT pg_current_xact_id(), pg_current_wal_insert_lsn()");
is($x1 - $x0, 1, 'an idle relay polling every 50 ms used no transaction id in a second');
my $wal = $node->safe_psql('postgres', "SELECT pg_wal_lsn_diff('$l1', '$l0')");
cmp_ok($wal, '<=', 200, "an idle relay wrote no WAL of its own ($wal bytes in a second)");

# a relay that cannot work says why: take away a function it calls
$node->safe_psql('postgres',
	'ALTER FUNCTION outbox.maintain(boolean) RENAME TO maintain_gone');
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', 'x'::text)");
ok( $node->poll_query_until('postgres',
		"SELECT state = 'backing_off' AND last_error LIKE '%outbox.maintain%' FROM outbox.status"),
	'outbox.status says why the relay cannot work')
  or diag explain outbox_status($node, 'postgres');
$node->safe_psql('postgres',
	'ALTER FUNCTION outbox.maintain_gone(boolean) RENAME TO maintain');
ok(wait_until_published($node, 'postgres', 1), 'and recovers once it can');

# a held topic keeps its retry clock across a restart
$mock->command_ok('topic_error t.sick UNKNOWN_TOPIC_OR_PART');
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('t.sick', 'held'::text)");
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM outbox.held_topics WHERE topic = 't.sick' AND held_events = 1"),
	'a topic the cluster does not know is held aside at once')
  or diag $node->safe_psql('postgres', 'SELECT * FROM outbox.held_topics');
my $since = $node->safe_psql('postgres',
	"SELECT held_since FROM outbox.held_topics WHERE topic = 't.sick'");
like($node->safe_psql('postgres',
		"SELECT reason FROM outbox.held_topics WHERE topic = 't.sick'"),
	qr/UNKNOWN_TOPIC_OR_PART/, 'the reason names the unknown topic');
$node->restart;
ok( $node->poll_query_until('postgres',
		"SELECT state IS NOT NULL AND state <> 'starting' FROM outbox.status"),
	'relay back after the restart');
is($node->safe_psql('postgres',
		"SELECT held_since FROM outbox.held_topics WHERE topic = 't.sick'"),
	$since, 'held_since (the max_retry_time clock) survived the restart');
$mock->command_ok('topic_error t.sick NONE');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM outbox.held_topics"),
	'released once the cluster knows the topic');
is(scalar(grep { ($_->{payload} // '') eq 'held' } consume_all($mock->bootstrap, 't.sick')),
	1, 'the held event was published once');

$node->stop;
$mock->stop;
done_testing();
