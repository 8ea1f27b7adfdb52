# Copyright (c) 2026, outbox_kafka developers
#
# docs/operations.md, "Failover without racing the relay", procedure 2: a
# standby whose configuration lists no database (ALTER SYSTEM on the
# standby, after it was built from the primary's base backup, which carries
# the primary's postgresql.auto.conf) runs no relay, neither in recovery nor
# after promotion, so the steps that must precede publishing can be taken on
# the promoted server; listing the database and reloading then publishes
# what waited, once each.
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OutboxKafkaTest;

my $topic = 'fo.events';
my $mock = OutboxKafkaTest::start_mock(brokers => 1, topics => ["$topic:2"]);
my $bootstrap = $mock->bootstrap;

my $relays = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'outbox_kafka worker'};

my $primary = OutboxKafkaTest::new_node(
	'fo_primary',
	bootstrap => $bootstrap,
	poll_interval => '200ms',
	init => { allows_streaming => 1 });
# the list as the docs warn about it: in postgresql.auto.conf, copied by
# pg_basebackup
$primary->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.databases = 'postgres'; SELECT pg_reload_conf()");
$primary->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', 'before-' || g, key => g::text) FROM generate_series(1, 10) g");
ok(OutboxKafkaTest::wait_until_published($primary, 'postgres', 10),
	'the primary publishes its events');
is($primary->safe_psql('postgres', $relays), '1',
	'pg_stat_activity shows the running relay as an outbox_kafka worker');

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('fo_standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
like(slurp_file($standby->data_dir . '/postgresql.auto.conf'),
	qr/outbox_kafka\.databases = 'postgres'/,
	"the base backup carried the primary's list in postgresql.auto.conf");

# the procedure: on the standby, no database listed
$standby->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.databases = ''; SELECT pg_reload_conf()");
ok($standby->poll_query_until('postgres', "SELECT ($relays) = 0"),
	'the standby runs no relay once it lists no database');

# the old primary leaves events it did not publish (its relay is off)
$primary->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.databases = ''; SELECT pg_reload_conf()");
ok($primary->poll_query_until('postgres', "SELECT ($relays) = 0"), 'the primary relay stopped');
$primary->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', 'pending-' || g, key => g::text) FROM generate_series(1, 20) g");
$primary->wait_for_catchup($standby);
$primary->stop('immediate');

my $log_offset = -s $standby->logfile;
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'promoted');

# Between the promotion and the listing: the steps of the docs can run here.
# They run on a server where no relay runs and nothing was published.
$standby->safe_psql('postgres',
	"SELECT setval('outbox.event_id_seq', (SELECT last_value FROM outbox.event_id_seq) + 1000000)");
is($standby->safe_psql('postgres', $relays), '0', 'after the promotion no relay runs');
is($standby->safe_psql('postgres', 'SELECT worker_pid IS NULL FROM outbox.status'),
	't', 'and outbox.status shows none');
is($standby->safe_psql('postgres', 'SELECT pending_events FROM outbox.status'),
	'20', 'the 20 events wait');
is(scalar(grep { $_->{payload} =~ /^pending-/ } OutboxKafkaTest::consume_all($bootstrap, $topic)),
	0, 'none of them is in Kafka');
unlike(slurp_file($standby->logfile, $log_offset),
	qr/outbox_kafka worker started for database/,
	'the log shows no relay started since the promotion');

# the steps done: list the database, reload
$standby->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.databases = 'postgres'; SELECT pg_reload_conf()");
ok(OutboxKafkaTest::wait_until_published($standby, 'postgres', 20),
	'listed and reloaded, the new primary publishes what waited');

my @msgs = OutboxKafkaTest::consume_all($bootstrap, $topic);
my %count;
$count{ $_->{payload} }++ for @msgs;
is(scalar(grep { /^pending-/ } keys %count), 20, 'all 20 pending events arrived');
is(scalar(grep { $count{$_} > 1 } keys %count), 0, 'each once');

$standby->stop;
$mock->stop;
done_testing();
