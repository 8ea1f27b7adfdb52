
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: asking a slow cluster for leaders does not make the relay
# deaf.  When a chunk's events wait on partitions while the cluster
# acknowledged others of it, the relay asks for the waiting partitions'
# leaders (publish.c, probe_leaders), one topic at a time, each waiting at
# most 500 ms for metadata.  On a cluster slower than that, the relay used
# to wait 500 ms for every topic in turn, up to eight of them (4 s with no
# signal, barrier or commit served); now, once the cluster left a metadata
# request unanswered, no other request waits for 5 s: one timeout per
# probe.  Counted with the relay's DEBUG1 line for each unanswered
# request; the events are delivered in the end, nothing lost.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use MockKafka;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my @topics = map { "fs.probe.$_" } 1 .. 8;
my $mock = start_mock(topics => [ map { "$_:1" } @topics ]);
my $node = new_node(
	'leader_probe_slow',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => q{
outbox_kafka.stall_timeout = '10min'
log_min_messages = debug1
});

ok(wait_until_published($node, 'postgres', 0), 'the relay runs');

# every topic known to the relay before the cluster slows down, so that
# only the leader probe asks for metadata later
$node->safe_psql('postgres',
	join('; ', map { "SELECT outbox.enqueue('$_', '{\"warm\": true}')" } @topics));
ok(wait_until_published($node, 'postgres', scalar @topics), 'the topics are known');

# the cluster answers everything 1 s late (metadata too: later than the
# 500 ms a metadata request waits), and seven of the eight topics have no
# leader
$mock->command_ok('rtt 1 1000');
$mock->command_ok("leader $_ 0 -1") for @topics[ 1 .. 7 ];

my $log_from = -s $node->logfile;
$node->safe_psql('postgres', 'BEGIN; '
	  . join('; ', map { "SELECT outbox.enqueue('$_', '{\"n\": 1}')" } @topics)
	  . '; COMMIT');

# the first topic's event is acknowledged (the evidence), the probe runs
# and meets an unanswered metadata request
ok( poll_until(
		sub {
			slurp_file($node->logfile, $log_from) =~
			  /no metadata of topic "fs\.probe\.\d" within 500 ms/;
		}),
	'the leader probe met a cluster too slow to answer');

# leaders back: the seven wait no longer, the chunk completes
$mock->command_ok("leader $_ 0 1") for @topics[ 1 .. 7 ];
ok(wait_until_published($node, 'postgres', 2 * @topics),
	'every event is delivered once the leaders are back');

my @unanswered = slurp_file($node->logfile, $log_from) =~
  /no metadata of topic "fs\.probe\.\d" within 500 ms/g;
is(scalar @unanswered, 1,
	'one metadata request waited in vain, not one per waiting topic');

$mock->command_ok('rtt 1 0');
is( $node->safe_psql('postgres',
		'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'nothing dead-lettered');

$node->stop;
$mock->stop;
done_testing();
