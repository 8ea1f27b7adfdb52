
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: DROP DATABASE of an unrelated database while the relay waits
# for deliveries with every broker down (issue 7 item 8).  DROP DATABASE
# waits until every process has absorbed a signal barrier; a relay that
# does not serve barriers in its wait loop held it for 23-57 s.  It must
# complete within 5 s; the stream is then delivered in full.

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

my @topics = ('fs.drop.a', 'fs.drop.b');
my $mock = start_mock(topics => [ map { "$_:3" } @topics ]);
my $node = new_node('dropdb', bootstrap => $mock->bootstrap, poll_interval => '200ms');
$node->safe_psql('postgres', 'CREATE DATABASE unrelated');

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(200), 'the stream flows');
$mock->command_ok('broker_down all');
# the relay has events in flight that nobody acknowledges, and says so
ok( $fs->wait_for(
		sub {
			$node->safe_psql('postgres',
				"SELECT state = 'broker_unreachable' AND pending_events > 100 FROM outbox.status"
			) eq 't';
		},
		20),
	'the relay waits for deliveries with the brokers down')
  or diag explain outbox_status($node, 'postgres');

my $t0 = time();
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE unrelated',
	timeout => 90);
my $took = time() - $t0;
is($ret, 0, 'DROP DATABASE succeeded') or diag $err;
cmp_ok($took, '<', 5, sprintf('DROP DATABASE of an unrelated database took %.1f s', $took));

$mock->command_ok('broker_up all');
$fs->fault_over;
ok($fs->grow(200, 30), 'the stream flows after the brokers return');
$fs->stop;
my $r = $fs->verify(max_duplicates => 0, name => 'DROP DATABASE during outage');
$r->{drop_database_s} = sprintf('%.1f', $took);
note 'figures: ' . FaultStream::figures($r);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
