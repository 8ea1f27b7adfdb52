
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: immediate shutdown (pg_ctl -m immediate, a crash for the
# server) and restart, twice, under a steady stream (G1, G4, G5).  Every
# committed event is delivered after the restart, in per-key order;
# duplicates at most what was in flight (one chunk per crash).

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

my $crashes = 2;
my $batch_size = 1000;
my @topics = ('fs.imm.a', 'fs.imm.b');
my $mock = start_mock(topics => [ map { "$_:3" } @topics ]);
my $node = new_node(
	'immediate',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => "outbox_kafka.batch_size = $batch_size\n");

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');

for my $i (1 .. $crashes)
{
	$node->stop('immediate');
	$fs->tick;
	my $t0 = time();
	$node->start;
	$fs->fault_over;
	ok($fs->grow(200), "crash $i: the stream flows again after the restart");
	note sprintf('crash %d: flowing %.1f s after the restart began', $i, time() - $t0);
}
$fs->stop;
my $r = $fs->verify(max_duplicates => $crashes * $batch_size,
	name => 'immediate shutdown x2');
note 'figures: ' . FaultStream::figures($r);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
