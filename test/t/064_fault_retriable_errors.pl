
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: bursts of retriable Produce errors (NOT_LEADER_FOR_PARTITION,
# REQUEST_TIMED_OUT, a dropped connection) and partition leader changes
# between two brokers under a steady stream.  librdkafka retries them; the
# relay must deliver everything, in per-key order, dead-letter nothing.

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
my @topics = ('fs.retry.a', 'fs.retry.b', 'fs.retry.c');
my $mock = start_mock(brokers => 2, topics => [ map { "$_:3" } @topics ]);
my $node = new_node('retriable', bootstrap => $mock->bootstrap, poll_interval => '200ms',
	extra_conf => "outbox_kafka.batch_size = $batch_size\n");

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');

for my $round (1 .. 4)
{
	$mock->command_ok(
		'produce_errors 12 NOT_LEADER_FOR_PARTITION REQUEST_TIMED_OUT NOT_ENOUGH_REPLICAS _TRANSPORT');
	my $to = 1 + $round % 2;
	foreach my $t (@topics)
	{
		$mock->command_ok("leader $t $_ $to") for 0 .. 2;
	}
	ok($fs->grow(150, 30), "round $round: the stream flows through the errors and leader moves");
}
$fs->fault_over;
$fs->stop;
my $r = $fs->verify(max_duplicates => 4 * $batch_size, name => 'retriable errors and leader changes');
note 'figures: ' . FaultStream::figures($r);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
