
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: part of a chunk fails while later events of the same
# partitions are acknowledged (issue 7 item 2).  The mock refuses a few
# Produce requests with TOPIC_AUTHORIZATION_FAILED and
# UNKNOWN_TOPIC_OR_PART (conditions an operator fixes; not reasons to
# dead-letter); requests after them succeed.  G3 must hold: a later event
# of a key is never delivered before an earlier one that was not, so the
# per-key check (first deliveries in commit order, no gaps) must pass and
# nothing is dead-lettered.

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
my @topics = ('fs.part.a', 'fs.part.b');
my $mock = start_mock(topics => [ map { "$_:3" } @topics ]);
my $node = new_node('partial', bootstrap => $mock->bootstrap, poll_interval => '200ms',
	extra_conf => "outbox_kafka.batch_size = $batch_size\n");

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');
$mock->command_ok('produce_errors 2 TOPIC_AUTHORIZATION_FAILED');
ok($fs->grow(200, 30), 'the stream flows on after refused requests (authorization)');
$mock->command_ok('produce_errors 2 UNKNOWN_TOPIC_OR_PART');
ok($fs->grow(200, 30), 'the stream flows on after refused requests (unknown topic)');
$fs->fault_over;
$fs->stop;
my $r = $fs->verify(max_duplicates => 2 * $batch_size, timeout => 45,
	name => 'partly failed chunks');
note 'figures: ' . FaultStream::figures($r);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
