# Copyright (c) 2026, outbox_kafka developers
#
# A fatal producer error (as librdkafka 2.0.2 can raise after a disconnect
# with idempotence on) makes the relay destroy and recreate its producer and
# publish again what was not acknowledged: nothing lost, duplicates bounded
# by what was in flight.  The error is raised the way a broker raises it,
# through the mock cluster (no test hook in the extension):
#  - while busy: a Produce response OUT_OF_ORDER_SEQUENCE_NUMBER on a
#    partition's first in-flight batch ("sequence desynchronization"), once
#    while a burst of 3000 events is published, once under the fault suite's
#    steady stream (test/t/FaultStream.pm);
#  - while idle: InitProducerId answered with PRODUCER_FENCED for the
#    producer the relay builds after a harmless settings change (linger.ms)
#    while nothing is in flight.  Events enqueued after that must still be
#    published: the relay must notice the fatal error (or the _FATAL refusal
#    of produce) and build another producer.
# The stream is checked at a consumer for completeness, no rolled-back
# event, per-key order and duplicates at most one chunk.  (This file was
# 009, 067_fault_fatal_idle.pl and 068_fault_fatal_busy.pl.)
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use FaultStream;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OutboxKafkaTest;

my $batch_size = 1000;
my @topics = ('fs.fatal.a', 'fs.fatal.b');
my $mock = start_mock(brokers => 1,
	topics => [ 'fatal.events:3', map { "$_:3" } @topics ]);
my $bootstrap = $mock->bootstrap;
my $node = new_node('fatal', bootstrap => $bootstrap, poll_interval => '200ms',
	extra_conf => "outbox_kafka.batch_size = $batch_size\n");

is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_proc WHERE proname LIKE '\\_inject%' AND pronamespace = 'outbox'::regnamespace"
	),
	'0',
	'no test-only fault injection function in the outbox schema');
ok($node->poll_query_until('postgres', "SELECT state = 'idle' FROM outbox.status"),
	'relay idle');

# --- fatal while busy -----------------------------------------------------------
my $offset = -s $node->logfile;
$mock->command_ok('request_errors Produce OUT_OF_ORDER_SEQUENCE_NUMBER');
$node->safe_psql('postgres',
	"SELECT count(outbox.enqueue('fatal.events', jsonb_build_object('n', g), key => (g % 50)::text)) FROM generate_series(1, 3000) g"
);
ok(wait_until_published($node, 'postgres', 1), 'events are published in the end');
ok($node->wait_for_log(qr/recreat\w* (its|the) (Kafka )?producer/i, $offset),
	'the relay recreated its producer');

my $status = outbox_status($node, 'postgres');
is($status->{events_dead_lettered}, 0, 'nothing dead-lettered');
# outbox.status clears last_error once the relay has recovered (issue 7
# item 11), so the fatal error is looked for in the server log
like(slurp_file($node->logfile, $offset), qr/fatal|desynchroni/i,
	'the fatal error is reported in the server log');

my @msgs = consume_all($bootstrap, 'fatal.events');
my $d = check_delivery(\@msgs);
is($d->{delivered}, 3000, 'every event arrived');
note "duplicates after the fatal error: $d->{duplicates}";
cmp_ok($d->{duplicates}, '<=', 5000, 'duplicates bounded by one chunk in flight');
is($d->{order_violations}, 0, 'per key, first deliveries in commit order')
  or diag join("\n", @{ $d->{order_diag} });

# the new producer works
$node->safe_psql('postgres', "SELECT outbox.enqueue('fatal.events', 'after', key => 'k')");
ok( poll_until(
		sub {
			grep { ($_->{payload} // '') eq 'after' } consume_all($bootstrap, 'fatal.events');
		}),
	'events flow after the producer was recreated');

# --- fatal while busy, under a steady stream (was 068) -------------------------------
my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');
$offset = -s $node->logfile;
$mock->command_ok('request_errors Produce OUT_OF_ORDER_SEQUENCE_NUMBER');
ok( $fs->wait_for(
		sub { slurp_file($node->logfile, $offset) =~ /desynchronization|fatal/i }, 20),
	'the producer turned fatal while publishing the stream');
$fs->fault_over;
ok($fs->grow(300, 30), 'the stream flows after the fatal error');
$fs->stop;
my $r = $fs->verify(max_duplicates => $batch_size, name => 'fatal error while busy');
note 'figures: ' . FaultStream::figures($r);
like(slurp_file($node->logfile, $offset), qr/recreat/i,
	'the relay said it recreated its producer');

# --- fatal while idle -------------------------------------------------------------
ok($node->poll_query_until('postgres',
		"SELECT state = 'idle' AND pending_events = 0 FROM outbox.status"),
	'relay idle again');
$offset = -s $node->logfile;
$mock->command_ok('request_errors InitProducerId PRODUCER_FENCED');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'linger.ms=2'");
$node->reload;
ok( poll_until(sub { slurp_file($node->logfile, $offset) =~ /fenced/i }, 20),
	'the fatal error of the producer built while idle reaches the log');
ok( $fs->wait_for(
		sub {
			$node->safe_psql('postgres', "SELECT state FROM outbox.status") ne 'publishing';
		}),
	'relay not publishing (idle) after the fatal error');
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('fatal.events', 'after-idle-fatal', key => 'k')");
ok( poll_until(
		sub {
			grep { ($_->{payload} // '') eq 'after-idle-fatal' }
			  consume_all($bootstrap, 'fatal.events');
		},
		30),
	'an event enqueued after a fatal error while idle is published');

# verify counts from the start of the stream: no duplicates beyond those of
# the busy fault
my $dups_before = $r->{duplicates};
$fs->start;
$fs->fault_over;
ok($fs->grow(200, 20), 'stream events enqueued after the fatal error are published');
$fs->stop;
$r = $fs->verify(max_duplicates => $dups_before, timeout => 20,
	name => 'fatal error while idle');
note 'figures: ' . FaultStream::figures($r);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
