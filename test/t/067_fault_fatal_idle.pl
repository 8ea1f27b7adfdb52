
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: a fatal producer error while the relay is idle (issue 7
# item 1).  librdkafka 2.0.2 makes an idempotent producer fatal when its
# InitProducerId is answered with PRODUCER_FENCED; the mock answers the
# next one so, and a harmless settings change (linger.ms) makes the relay
# build a new producer while nothing is in flight.  Events enqueued after
# that must still be published: the relay must notice the fatal error (or
# the _FATAL refusal of produce) and build another producer.

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

my @topics = ('fs.fatal.idle.a', 'fs.fatal.idle.b');
my $mock = start_mock(topics => [ map { "$_:3" } @topics ]);
my $node = new_node('fatal_idle', bootstrap => $mock->bootstrap, poll_interval => '200ms');

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(200), 'the stream flows');
$fs->stop;
ok( $fs->wait_for(
		sub {
			$node->safe_psql('postgres',
				"SELECT state = 'idle' AND pending_events = 0 FROM outbox.status") eq 't';
		}),
	'relay idle');

my $offset = -s $node->logfile;
$mock->command_ok('request_errors InitProducerId PRODUCER_FENCED');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'linger.ms=2'");
$node->reload;
ok( $fs->wait_for(
		sub { slurp_file($node->logfile, $offset) =~ /fenced|fatal/i },
		20),
	'the fatal error of the new producer reaches the server log while the relay is idle');
ok( $fs->wait_for(
		sub {
			$node->safe_psql('postgres', "SELECT state FROM outbox.status") ne 'publishing';
		}),
	'relay not publishing (idle) after the fatal error');

$fs->start;
$fs->fault_over;
ok($fs->grow(200, 20), 'events enqueued after the fatal error are published');
$fs->stop;
my $r = $fs->verify(max_duplicates => 0, timeout => 20, name => 'fatal error while idle');
note 'figures: ' . FaultStream::figures($r);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
