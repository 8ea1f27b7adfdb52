# Copyright (c) 2026, outbox_kafka developers
#
# Without outbox_kafka in shared_preload_libraries the extension still
# installs and enqueue still works (events wait); CREATE EXTENSION warns and
# outbox.status says, with a hint, that nothing is published.  Once the
# library is preloaded, the waiting events are published.
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OutboxKafkaTest;

my $mock = OutboxKafkaTest::start_mock(brokers => 1, topics => ['np.events:1']);
my $node = PostgreSQL::Test::Cluster->new('not_preloaded');
$node->init;
$node->start;

my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'CREATE EXTENSION outbox_kafka');
is($ret, 0, 'CREATE EXTENSION works without preloading');
like(
	$stderr,
	qr/WARNING:  outbox_kafka is not loaded via shared_preload_libraries: events are stored but nothing is published/,
	'CREATE EXTENSION warns that nothing is published');
like($stderr, qr/HINT:  Add outbox_kafka to shared_preload_libraries/,
	'with a hint');

is( $node->safe_psql(
		'postgres',
		"SELECT outbox.enqueue('np.events', 'e' || g, key => g::text) FROM generate_series(1, 3) g ORDER BY 1 LIMIT 1"
	),
	'1',
	'enqueue works and returns ids');

my $status = OutboxKafkaTest::outbox_status($node, 'postgres');
is($status->{state}, undef, 'no relay state');
is($status->{worker_pid}, undef, 'no relay pid');
is($status->{pending_events}, 3, 'the events wait');
like($status->{problem}, qr/not loaded via shared_preload_libraries/,
	'status names the problem');
like($status->{hint}, qr/shared_preload_libraries/, 'and gives a hint');

# preload it: the waiting events are published
$node->append_conf(
	'postgresql.conf', sprintf(q{
shared_preload_libraries = 'outbox_kafka'
outbox_kafka.databases = 'postgres'
outbox_kafka.bootstrap_servers = '%s'
}, $mock->bootstrap));
$node->restart;
ok(OutboxKafkaTest::wait_until_published($node, 'postgres', 3),
	'after preloading, the waiting events are published');
is(scalar(OutboxKafkaTest::consume_all($mock->bootstrap, 'np.events')),
	3, 'all three arrived');
is(OutboxKafkaTest::outbox_status($node, 'postgres')->{problem},
	undef, 'and the status shows no problem');

$node->stop;
$mock->stop;
done_testing();
