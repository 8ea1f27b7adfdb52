
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: fast shutdown while every broker is down and the relay has
# a full local queue of events in flight (issue 7 item 8).  pg_ctl stop -m
# fast must return within outbox_kafka.shutdown_timeout plus a few seconds;
# after a restart with the brokers back, every committed event arrives in
# per-key order, duplicates at most what was in flight.

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
my @topics = ('fs.stop.a', 'fs.stop.b');
my $mock = start_mock(topics => [ map { "$_:3" } @topics ]);
my $node = new_node('stop_down', bootstrap => $mock->bootstrap, poll_interval => '200ms',
	extra_conf => "outbox_kafka.batch_size = $batch_size\noutbox_kafka.shutdown_timeout = '2s'\n");

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');
$mock->command_ok('broker_down all');
my $t_down = time();
ok( $fs->wait_for(
		sub {
			time() - $t_down > 3
			  && $node->safe_psql('postgres', 'SELECT pending_events > 200 FROM outbox.status') eq 't';
		},
		20),
	'events pile up while the brokers are down');
$fs->stop;

my $t0 = time();
$node->stop('fast');
my $took = time() - $t0;
cmp_ok($took, '<=', 2 + 3,
	sprintf('fast shutdown with the brokers down took %.1f s (shutdown_timeout 2 s)', $took));

$mock->command_ok('broker_up all');
$node->start;
$fs->fault_over;
$fs->start;
ok($fs->grow(200, 30), 'the stream flows after the restart');
$fs->stop;
my $r = $fs->verify(max_duplicates => $batch_size, name => 'shutdown with brokers down');
$r->{shutdown_s} = sprintf('%.1f', $took);
note 'figures: ' . FaultStream::figures($r);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
