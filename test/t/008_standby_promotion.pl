# Copyright (c) 2026, outbox_kafka developers
#
# G5: a relay on a streaming standby reports state "standby" and waits (no
# crash loop); after promotion it resumes from the replicated progress and
# publishes what the old primary left pending, without publishing again what
# the old primary had already published.
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OutboxKafkaTest;

my $mock = OutboxKafkaTest::start_mock(brokers => 1, topics => ['sb.events:2']);
my $bootstrap = $mock->bootstrap;

my $primary = OutboxKafkaTest::new_node(
	'primary',
	bootstrap => $bootstrap,
	poll_interval => '200ms',
	init => { allows_streaming => 1 });

# published by the primary before the standby exists
$primary->safe_psql('postgres',
	"SELECT outbox.enqueue('sb.events', 'before-' || g, key => g::text) FROM generate_series(1, 10) g"
);
ok(OutboxKafkaTest::wait_until_published($primary, 'postgres', 10),
	'primary publishes its events');

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;

ok( $standby->poll_query_until(
		'postgres', "SELECT state = 'standby' FROM outbox.status"),
	'the standby relay reports state standby');
ok($standby->wait_for_log(qr/is standby.*\n.*in recovery|the server is in recovery/),
	'the standby relay says why it waits');

# the primary stops publishing (its relay is switched off) and leaves events
$primary->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.databases = ''; SELECT pg_reload_conf()");
ok( $primary->poll_query_until(
		'postgres', 'SELECT state IS NULL FROM outbox.status'),
	'relay of the primary stopped');
$primary->safe_psql('postgres',
	"SELECT outbox.enqueue('sb.events', 'pending-' || g, key => g::text) FROM generate_series(1, 20) g"
);
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT pending_events FROM outbox.status'),
	'20', 'the standby sees the pending events');
is($standby->safe_psql('postgres', "SELECT state FROM outbox.status"),
	'standby', 'and does not publish them while in recovery');

my $log = slurp_file($standby->logfile);
unlike($log, qr/outbox_kafka worker.*exited with exit code/,
	'the standby relay never crashed');

$primary->stop('immediate');
$standby->promote;

ok( $standby->poll_query_until(
		'postgres',
		"SELECT pending_events = 0 AND events_published >= 20 FROM outbox.status"),
	'after promotion the relay publishes what was pending');

my @msgs = OutboxKafkaTest::consume_all($bootstrap, 'sb.events');
my %count;
$count{ $_->{payload} }++ for @msgs;
is(scalar(grep { /^pending-/ } keys %count), 20, 'all 20 pending events arrived');
is(scalar(grep { /^before-/ } keys %count), 10, 'the 10 earlier events are there');
is(scalar(grep { $count{$_} > 1 } keys %count), 0,
	'nothing published twice: progress was replicated');

$standby->stop;
$mock->stop;
done_testing();
