
# Copyright (c) 2026, outbox_kafka developers

# Broker outages (G5): events wait while the cluster is down, outbox.status
# says so, nothing is dead-lettered; when the broker returns every event is
# delivered.  Also an outage longer than the producer's message timeout, and
# a server shutdown during an outage, which must finish within
# outbox_kafka.shutdown_timeout plus a little, and lose nothing.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $topic = 't.outage';
my $mock = start_mock(topics => ["$topic:2"]);
my $node = new_node(
	'outage',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms');

$node->safe_psql('postgres',
	'CREATE TABLE committed (id bigint PRIMARY KEY, phase int NOT NULL)');

sub enqueue_events
{
	my ($phase, $n) = @_;
	my $sql = '';
	for my $i (1 .. $n / 10)
	{
		$sql .=
		    "INSERT INTO committed SELECT outbox.enqueue('$topic',"
		  . " jsonb_build_object('phase', $phase, 'i', $i * 10 + g),"
		  . " key => 'k' || g), $phase FROM generate_series(1, 10) g;\n";
	}
	$node->safe_psql('postgres', $sql);
	return split /\n/,
	  $node->safe_psql('postgres', "SELECT id FROM committed WHERE phase = $phase");
}

sub check_delivered
{
	my ($what, @ids) = @_;
	my $by_id = by_outbox_id(consume_all($mock->bootstrap, $topic));
	my ($missing, $dups) = (0, 0);
	foreach my $id (@ids)
	{
		my $n = scalar(@{ $by_id->{$id} // [] });
		$missing++ unless $n;
		$dups += $n - 1 if $n > 1;
	}
	is($missing, 0, "$what: all " . scalar(@ids) . " events delivered");
	note "$what: $dups duplicate deliveries";
	cmp_ok($dups, '<=', scalar(@ids), "$what: duplicates at most the events in flight");
	return;
}

my @warm = enqueue_events(0, 10);
ok(wait_until_published($node, 'postgres', 10), 'warm-up published');
my $worker_pid = outbox_status($node, 'postgres')->{worker_pid};

# --- a short outage -------------------------------------------------------------------
my $outage_log_start = -s $node->logfile;
$mock->command_ok('broker_down 1');
my @p1 = enqueue_events(1, 200);
ok( $node->poll_query_until(
		'postgres',
		"SELECT state = 'broker_unreachable' AND pending_events > 0"
		  . " FROM outbox.status"),
	'outbox.status: broker_unreachable with events pending')
  or diag explain outbox_status($node, 'postgres');
my $st = outbox_status($node, 'postgres');
note "during the outage: state $st->{state}, pending $st->{pending_events}, last_error "
  . ($st->{last_error} // 'none');
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered during the outage');
is($st->{dead_letters}, 0, 'outbox.dead_letters is empty');
ok(defined $st->{last_error}, 'last_error says what is wrong');

$mock->command_ok('broker_up 1');
ok( $node->poll_query_until(
		'postgres',
		"SELECT pending_events = 0 AND state IN ('idle', 'publishing') FROM outbox.status"
	),
	'after the broker returns everything is published and the state recovers');
check_delivered('short outage', @p1);
my $outage_log = substr(slurp_file($node->logfile), $outage_log_start);
my $state_lines = () = $outage_log =~ /outbox_kafka worker for database "postgres" is /g;
cmp_ok($state_lines, '<=', 6,
	"no log flood: $state_lines state line(s) for the whole outage");
like($outage_log, qr/(WARNING|LOG):  librdkafka: \w+: /,
	'librdkafka log lines reach the server log, from the worker');
is(outbox_status($node, 'postgres')->{dead_letters}, 0, 'still no dead letters');

# --- an outage longer than message.timeout.ms -------------------------------------------
my $offset = -s $node->logfile;
# The relay sets message.timeout.ms = 0 (never expire) and refuses an
# override unless outbox_kafka.allow_unsafe_producer_properties is on; this
# phase checks that expiring messages are retried, not dropped, so it opts
# in where the setting exists.
$node->safe_psql('postgres',
	'ALTER SYSTEM SET outbox_kafka.allow_unsafe_producer_properties = on');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'message.timeout.ms=1500'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
enqueue_events(2, 10);    # the producer is rebuilt with the setting when idle
ok(wait_until_published($node, 'postgres', 220), 'published with message.timeout.ms = 1500');
$node->wait_for_log(qr/recreates its Kafka producer: settings changed/, $offset);

$mock->command_ok('broker_down 1');
my $retried_before = outbox_status($node, 'postgres')->{events_retried};
my @p3 = enqueue_events(3, 100);
ok( $node->poll_query_until(
		'postgres',
		"SELECT events_retried > $retried_before AND pending_events > 0 FROM outbox.status"
	),
	'events whose produce timed out are retried, not dropped')
  or diag explain outbox_status($node, 'postgres');
$st = outbox_status($node, 'postgres');
note "long outage: state $st->{state}, retried $st->{events_retried}, last_error "
  . ($st->{last_error} // 'none');
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered after message timeouts');
is($st->{dead_letters}, 0, 'outbox.dead_letters still empty');
like($st->{state}, qr/^(broker_unreachable|backing_off)$/,
	"state says it is waiting ($st->{state})");

$mock->command_ok('broker_up 1');
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 AND state IN ('idle', 'publishing') FROM outbox.status"),
	'after the long outage everything is published');
check_delivered('long outage', @p3);
is(outbox_status($node, 'postgres')->{worker_pid},
	$worker_pid, 'the same worker process throughout both outages (no crash loop)');
unlike(slurp_file($node->logfile),
	qr/terminated by signal|exited with exit code/,
	'no process of the server exited during the outages');

$node->safe_psql('postgres',
	'ALTER SYSTEM RESET outbox_kafka.producer_properties');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET outbox_kafka.allow_unsafe_producer_properties');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');

# --- shutdown during an outage ----------------------------------------------------------
$mock->command_ok('broker_down 1');
my @p4 = enqueue_events(4, 100);
ok( $node->poll_query_until(
		'postgres',
		"SELECT state IN ('broker_unreachable', 'backing_off') AND pending_events > 0"
		  . " FROM outbox.status"),
	'outage again, events pending');
my $shutdown_timeout = $node->safe_psql('postgres',
	"SELECT round(setting::numeric / 1000, 1) FROM pg_settings WHERE name = 'outbox_kafka.shutdown_timeout'");
my $t0 = time();
$node->stop('fast');
my $took = time() - $t0;
cmp_ok($took, '<', $shutdown_timeout + 10,
	sprintf("fast shutdown during the outage took %.1f s (shutdown_timeout %s s)",
		$took, $shutdown_timeout));

$mock->command_ok('broker_up 1');
$node->start;
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 FROM outbox.status"),
	'after restart with the broker back everything is published');
check_delivered('shutdown during outage', @p4);
check_delivered('earlier events', @warm, @p1, @p3);
is(outbox_status($node, 'postgres')->{dead_letters}, 0, 'no dead letters at all');

$node->stop;
$mock->stop;
done_testing();
