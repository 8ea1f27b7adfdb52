
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: every broker answers late (RTT 3 s, beyond
# outbox_kafka.stall_timeout = 1 s) for a while under a steady stream.
# The cluster is slow, not gone: events must not be lost, reordered or
# dead-lettered, nothing may stay held aside once the delay is over, and
# duplicates stay within what was in flight (one chunk per re-creation).

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

my $batch_size = 1000;
my @topics = ('fs.rtt.a', 'fs.rtt.b');
my $mock = start_mock(brokers => 2, topics => [ map { "$_:3" } @topics ]);
my $node = new_node('rtt', bootstrap => $mock->bootstrap, poll_interval => '200ms',
	extra_conf => "outbox_kafka.batch_size = $batch_size\n");
$node->safe_psql('postgres', "ALTER SYSTEM SET outbox_kafka.stall_timeout = '1s'");
$node->reload;

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');

$mock->command_ok('rtt all 3000');
my $t0 = time();
$fs->wait_for(sub { time() - $t0 >= 8 }, 10);
my $st = outbox_status($node, 'postgres');
note "with RTT 3 s: state $st->{state}, pending $st->{pending_events}, last_error "
  . ($st->{last_error} // 'none') . ', problem ' . ($st->{problem} // 'none');
ok(defined($st->{last_error}) || defined($st->{problem}),
	'while acknowledgements take longer than stall_timeout, outbox.status says why (last_error or problem)');
$mock->command_ok('rtt all 0');
$fs->fault_over;
ok($fs->grow(200, 30), 'the stream flows again once responses are prompt');
$fs->stop;
my $r = $fs->verify(max_duplicates => 2 * $batch_size, name => 'RTT 3 s');
note 'figures: ' . FaultStream::figures($r);
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'nothing dead-lettered because the cluster was slow');

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
