# Copyright (c) 2026, outbox_kafka developers
#
# A fatal producer error (as librdkafka 2.0.2 can raise after a disconnect
# with idempotence on) makes the relay destroy and recreate its producer and
# publish again what was not acknowledged: nothing lost, duplicates bounded
# by what was in flight.
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OutboxKafkaTest;

my $mock = OutboxKafkaTest::start_mock(brokers => 1, topics => ['fatal.events:3']);
my $bootstrap = $mock->bootstrap;
my $node = OutboxKafkaTest::new_node('fatal', bootstrap => $bootstrap,
	poll_interval => '200ms');

ok($node->poll_query_until('postgres', "SELECT state = 'idle' FROM outbox.status"),
	'relay idle');
is($node->safe_psql('postgres', 'SELECT outbox._inject_producer_fatal_error()'),
	't', 'fault armed: the producer fails at its next delivery');

$node->safe_psql('postgres',
	"SELECT count(outbox.enqueue('fatal.events', jsonb_build_object('n', g), key => (g % 50)::text)) FROM generate_series(1, 3000) g"
);
ok(OutboxKafkaTest::wait_until_published($node, 'postgres', 1),
	'events are published in the end');
ok($node->wait_for_log(qr/recreates its Kafka producer after a fatal error/),
	'the relay recreated its producer');

my $status = OutboxKafkaTest::outbox_status($node, 'postgres');
is($status->{events_dead_lettered}, 0, 'nothing dead-lettered');
like($status->{last_error} // '', qr/fatal|injected/i,
	'the fatal error is shown in outbox.status');

my @msgs = OutboxKafkaTest::consume_all($bootstrap, 'fatal.events');
my %seen;
$seen{ OutboxKafkaTest::header_value($_, 'outbox-id') }++ for @msgs;
is(scalar(keys %seen), 3000, 'every event arrived');
my $dups = @msgs - scalar(keys %seen);
note "duplicates after the fatal error: $dups";
cmp_ok($dups, '<=', 5000, 'duplicates bounded by one chunk in flight');

# the new producer works
$node->safe_psql('postgres', "SELECT outbox.enqueue('fatal.events', 'after', key => 'k')");
ok( OutboxKafkaTest::poll_until(
		sub {
			grep { ($_->{payload} // '') eq 'after' }
			  OutboxKafkaTest::consume_all($bootstrap, 'fatal.events');
		}),
	'events flow after the producer was recreated');

$node->stop;
$mock->stop;
done_testing();
