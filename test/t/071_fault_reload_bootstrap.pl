
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: the relay starts with a wrong bootstrap_servers (a loopback
# port nobody listens on) under a steady stream, so events wait in flight;
# a reload with the corrected address must take effect within a couple of
# seconds (issue 7 item 8: it took 273 s), and every event arrives.

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

my @topics = ('fs.reload.a', 'fs.reload.b');
my $mock = start_mock(topics => [ map { "$_:3" } @topics ]);
my $node = new_node('reload', bootstrap => '127.0.0.1:9', poll_interval => '200ms');

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
# the relay has events in flight that nobody acknowledges, and says so
ok( $fs->wait_for(
		sub {
			$node->safe_psql('postgres',
				"SELECT state = 'broker_unreachable' AND pending_events > 100 FROM outbox.status"
			) eq 't';
		},
		20),
	'events wait while the bootstrap servers are unreachable')
  or diag explain outbox_status($node, 'postgres');
is($fs->delivered_count, 0, 'nothing delivered meanwhile');

my $bs = $mock->bootstrap;
$node->safe_psql('postgres', "ALTER SYSTEM SET outbox_kafka.bootstrap_servers = '$bs'");
$node->reload;
my $t0 = time();
$fs->fault_over;
my $flowing = $fs->wait_for(sub { $fs->delivered_count > 0 }, 15);
my $took = time() - $t0;
ok($flowing, 'events flow after the reload');
cmp_ok($took, '<=', 2, sprintf('the corrected bootstrap_servers took effect %.1f s after the reload', $took));
ok($fs->grow(200, 15), 'the stream flows');
$fs->stop;
my $r = $fs->verify(max_duplicates => 0, timeout => 30, name => 'reload of bootstrap_servers');
$r->{reload_effect_s} = sprintf('%.1f', $took);
note 'figures: ' . FaultStream::figures($r);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
