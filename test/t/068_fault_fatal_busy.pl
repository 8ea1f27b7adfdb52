
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: a fatal producer error while the relay is busy.  The mock
# answers a Produce request with OUT_OF_ORDER_SEQUENCE_NUMBER, which an
# idempotent librdkafka 2.0.2 producer treats as a fatal "sequence
# desynchronization".  The relay destroys the producer and builds a new
# one; everything is delivered, in per-key order, duplicates at most what
# was in flight (one chunk).

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
my @topics = ('fs.fatal.busy.a', 'fs.fatal.busy.b');
my $mock = start_mock(topics => [ map { "$_:3" } @topics ]);
my $node = new_node('fatal_busy', bootstrap => $mock->bootstrap, poll_interval => '200ms',
	extra_conf => "outbox_kafka.batch_size = $batch_size\n");

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');
my $offset = -s $node->logfile;
$mock->command_ok('request_errors Produce OUT_OF_ORDER_SEQUENCE_NUMBER');
ok( $fs->wait_for(
		sub { slurp_file($node->logfile, $offset) =~ /desynchronization|fatal/i }, 20),
	'the producer turned fatal while publishing');
$fs->fault_over;
ok($fs->grow(300, 30), 'the stream flows after the fatal error');
$fs->stop;
my $r = $fs->verify(max_duplicates => $batch_size, name => 'fatal error while busy');
note 'figures: ' . FaultStream::figures($r);
like(slurp_file($node->logfile, $offset), qr/recreat/i, 'the relay said it recreated its producer');

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
