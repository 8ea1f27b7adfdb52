
# Copyright (c) 2026, outbox_kafka developers

# G8 for held topics (issue 16, defect 11): outbox.held_event is a queue
# whose rows are deleted as they are published.  While another session
# holds an old snapshot, none of those dead row versions can be pruned, so
# every hold used to leave its whole queue behind on disk, hold after hold.
# outbox.maintain() now empties held_event once every queue is empty
# (TRUNCATE does not wait for old snapshots), so under a snapshot held
# across three holds the table ends up small again after each.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use IPC::Run;
use MockKafka;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'fs.bloat.held';
my $events = 1500;
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'held_bloat',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => q{
outbox_kafka.stall_timeout = '1s'
});

# a session with an old snapshot, open for the whole test (a long report
# on the application's tables: it takes no lock on the outbox's)
my ($in, $out, $err) = ('', '', '');
my $snapshot = IPC::Run::start(
	[ $node->installed_command('psql'), '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres') ],
	'<', \$in, '>', \$out, '2>', \$err);
$in .= "BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT 'snapshot ' || count(*) FROM pg_class WHERE relname = 'no such table';\n";
ok(poll_until(sub { $snapshot->pump_nb; $out =~ /snapshot 0/ }, 60),
	'another session holds an old snapshot');

my $published = 0;
my $sizes = '';
for my $round (1 .. 3)
{
	# the partition loses its leader: the events are held, in the queue
	$mock->command_ok("leader $topic 0 -1");
	$node->safe_psql('postgres', qq{
		SELECT outbox.enqueue('$topic', jsonb_build_object('round', $round, 'pad', repeat('x', 200)),
		                      key => 'k' || (i % 10))
		  FROM generate_series(1, $events) i});
	ok( $node->poll_query_until('postgres',
			"SELECT coalesce(sum(held_events), 0) >= $events - 10 FROM outbox.held_topics"),
		"round $round: the events wait in the held queue");

	# the leader is back: the queue drains and the hold is released
	$mock->command_ok("leader $topic 0 1");
	$published += $events;
	ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM outbox.held_topics'),
		"round $round: the hold is released");
	ok(wait_until_published($node, 'postgres', 1), "round $round: nothing is pending");
	ok( $node->poll_query_until('postgres',
			"SELECT pg_relation_size('outbox.held_event') <= 256 * 1024"),
		"round $round: outbox.held_event is small again");
	$sizes .= ' ' . $node->safe_psql('postgres', "SELECT pg_relation_size('outbox.held_event')");
}
note "held_event size after each round:$sizes";

$snapshot->pump_nb;
is($err, '', 'the old snapshot was never in the way');
$in .= "COMMIT;\n\\q\n";
$snapshot->finish;

my @msgs = consume_all($mock->bootstrap, $topic);
my $r = check_delivery(\@msgs);
is($r->{delivered}, $published, 'every event is delivered');
is($r->{order_violations}, 0, 'per key, in commit order');

$node->stop;
$mock->stop;
done_testing();
