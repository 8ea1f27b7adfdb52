
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: one topic stalls (all its partitions leaderless) beside
# healthy ones, under a steady stream (G6, issue 7 item 3).  After
# outbox_kafka.stall_timeout its partitions are held aside, all three at
# once (the relay asks the cluster which partitions of a stalling topic
# have no leader: a chunk that had events for only some of them must not
# leave the next chunks to find the others one stall_timeout each),
# visible in outbox.held_topics and outbox.status, while the healthy topics keep
# flowing: the p99 commit-to-consumer latency of the healthy topics may
# grow by at most 100 ms compared with the same stream without the stall.
# When the partitions get a leader again the held events follow, in
# per-key order, and nothing stays held.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use FaultStream;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $window = $ENV{FAULT_LATENCY_WINDOW} // 6;
my @healthy = ('fs.ok.a', 'fs.ok.b');
my $sick = 'fs.sick';
my @topics = (@healthy, $sick);
my $mock = start_mock(topics => [ map { "$_:3" } @topics ]);
my $node = new_node('stall', bootstrap => $mock->bootstrap, poll_interval => '200ms');
$node->safe_psql('postgres', "ALTER SYSTEM SET outbox_kafka.stall_timeout = '1s'");
$node->reload;

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');

sub healthy_p99
{
	my ($from, $to) = @_;
	my @lat = map { $fs->commit_latencies(topic => $_, from => $from, to => $to) } @healthy;
	return (FaultStream::percentile(0.99, @lat), scalar(@lat));
}

# baseline: the same stream, no stall
my $a0 = time();
$fs->wait_for(sub { time() >= $a0 + $window + 1 }, $window + 5);
my ($p99_base, $n_base) = healthy_p99($a0, $a0 + $window);

# stall: no leader for any partition of the sick topic
$mock->command_ok("leader $sick $_ -1") for 0 .. 2;
my $b0 = time();
my $held = $fs->wait_for(
	sub {
		$node->safe_psql('postgres',
			"SELECT count(*) FROM outbox.held_topics WHERE topic = '$sick' AND held_events > 0"
		) > 0;
	},
	10);
ok($held, "outbox.held_topics shows $sick held with its events");
# the three partitions are held as their events meet them, not
# necessarily in one pass: wait for the third
my $st;
$fs->wait_for(
	sub {
		$st = outbox_status($node, 'postgres');
		($st->{held_topics} // 0) == 3 && ($st->{held_events} // 0) > 0;
	},
	10);
note 'during the stall: ' . join(', ',
	map { "$_=" . ($st->{$_} // 'null') }
	  qw(state pending_events held_topics held_events last_error problem));
ok(($st->{held_topics} // 0) == 3 && ($st->{held_events} // 0) > 0,
	'outbox.status counts the three held partitions and their events')
  or note "held_topics: " . ($st->{held_topics} // 'null');
if ($held)
{
	note $node->safe_psql('postgres',
		'SELECT topic, reason, held_events, oldest_event_at IS NOT NULL FROM outbox.held_topics');
}
# measure from stall_timeout + 1 s on, for the same window
my $m0 = $b0 + 2;
$fs->wait_for(sub { time() >= $m0 + $window + 1 }, $window + 10);
my ($p99_stall, $n_stall) = healthy_p99($m0, $m0 + $window);
my $sick_delivered_during = scalar $fs->latencies(topic => $sick, from => $m0, to => $m0 + $window);
note sprintf('healthy topics p99: %.1f ms without the stall (%d events), %.1f ms with it (%d events)',
	1000 * $p99_base, $n_base, 1000 * $p99_stall, $n_stall);
my $n_flowed = scalar map { $fs->latencies(topic => $_, from => $m0, to => $m0 + $window) } @healthy;
ok($n_flowed > 0,
	"healthy topics keep flowing during the stall ($n_flowed of $n_stall events delivered)");
cmp_ok(1000 * $p99_stall, '<=', 1000 * $p99_base + 100,
	'the stall adds at most 100 ms to the p99 latency of the healthy topics');
is($sick_delivered_during, 0, 'nothing of the stalled topic delivered meanwhile (it has no leader)');

# the partitions get their leader back
$mock->command_ok("leader $sick $_ 1") for 0 .. 2;
$fs->fault_over;
ok($fs->grow(200, 30), 'the stream flows after the stall');
$fs->stop;
my $r = $fs->verify(max_duplicates => 0, name => 'stalled topic');
$r->{healthy_p99_base_ms} = sprintf('%.1f', 1000 * $p99_base);
$r->{healthy_p99_stall_ms} = sprintf('%.1f', 1000 * $p99_stall);
note 'figures: ' . FaultStream::figures($r);
my @wrongly_held = grep { $_ ne $sick } keys %{ $fs->held_seen };
is("@wrongly_held", '', 'no healthy topic was ever held aside');
ok( $fs->wait_for(
		sub {
			$node->safe_psql('postgres', 'SELECT count(*) FROM outbox.held_topics') eq '0';
		},
		10),
	'nothing held once the topic has a leader again');

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
