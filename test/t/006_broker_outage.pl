
# Copyright (c) 2026, outbox_kafka developers

# Broker outages (G5): events wait while the cluster is down, outbox.status
# says so, nothing is dead-lettered; when the brokers return every event is
# delivered.  Also an outage longer than the producer's message timeout;
# then, with the fault suite's steady stream (test/t/FaultStream.pm), every
# broker down for FAULT_OUTAGE_SECONDS (default 30), and a fast shutdown with
# every broker down and a full local queue in flight, which must finish
# within outbox_kafka.shutdown_timeout plus a little and lose nothing.  One
# server and one two-broker mock cluster throughout.

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

my $topic = 't.outage';
my $batch_size = 1000;
my $shutdown_timeout = 2;
my $outage = $ENV{FAULT_OUTAGE_SECONDS} // 30;
my @topics = ('fs.down.a', 'fs.down.b');
my $mock = start_mock(brokers => 2,
	topics => [ "$topic:2", map { "$_:3" } @topics ]);
my $node = new_node(
	'outage',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => "outbox_kafka.batch_size = $batch_size\n"
	  . "outbox_kafka.shutdown_timeout = '${shutdown_timeout}s'\n");

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
	my $d = check_delivery([ consume_all($mock->bootstrap, $topic) ],
		expected => \@ids);
	my $dups = $d->{duplicates};
	is($d->{missing}, 0, "$what: all " . scalar(@ids) . " events delivered");
	note "$what: $dups duplicate deliveries";
	cmp_ok($dups, '<=', scalar(@ids), "$what: duplicates at most the events in flight");
	return;
}

my @warm = enqueue_events(0, 10);
ok(wait_until_published($node, 'postgres', 10), 'warm-up published');
my $worker_pid = outbox_status($node, 'postgres')->{worker_pid};

# --- a short outage -------------------------------------------------------------------
my $outage_log_start = -s $node->logfile;
$mock->command_ok('broker_down all');
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

$mock->command_ok('broker_up all');
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

$mock->command_ok('broker_down all');
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

$mock->command_ok('broker_up all');
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 AND state IN ('idle', 'publishing') FROM outbox.status"),
	'after the long outage everything is published');
check_delivered('long outage', @p3);
is(outbox_status($node, 'postgres')->{worker_pid},
	$worker_pid, 'the same worker process throughout both outages (no crash loop)');
unlike(slurp_file($node->logfile),
	qr/terminated by signal|exited with exit code/,
	'no process of the server exited during the outages');

$offset = -s $node->logfile;
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET outbox_kafka.producer_properties');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET outbox_kafka.allow_unsafe_producer_properties');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
# the stream below runs with the relay's own message.timeout.ms (never
# expire): wait until the producer has been rebuilt without the override
enqueue_events(5, 10);
ok(wait_until_published($node, 'postgres', 1), 'published after the reset');
$node->wait_for_log(qr/recreates its Kafka producer: settings changed/, $offset);

# --- every broker down for $outage s under a steady stream -----------------------
# (was 062_fault_brokers_down.pl)
my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');
my $pid = outbox_status($node, 'postgres')->{worker_pid};

$mock->command_ok('broker_down all');
my $t_down = time();
ok( $fs->wait_for(
		sub {
			$node->safe_psql('postgres',
				"SELECT state = 'broker_unreachable' AND pending_events > 0 FROM outbox.status"
			) eq 't';
		},
		20),
	'stream: outbox.status says broker_unreachable with events pending')
  or diag explain outbox_status($node, 'postgres');
# keep the brokers down for the whole outage while the stream goes on
$fs->wait_for(sub { time() - $t_down >= $outage }, $outage + 5);
$st = outbox_status($node, 'postgres');
note "after ${outage} s down: state $st->{state}, pending $st->{pending_events}, last_error "
  . ($st->{last_error} // 'none');
is($st->{dead_letters}, 0, 'nothing dead-lettered during the long outage');
ok(defined $st->{last_error}, 'last_error says what is wrong during the long outage');

$mock->command_ok('broker_up all');
$fs->fault_over;
ok($fs->grow(200, 30), 'the stream flows again after the outage');
ok( $fs->wait_for(
		sub {
			my $s = outbox_status($node, 'postgres');
			$s->{state} =~ /^(idle|publishing)$/ && !defined $s->{last_error};
		},
		10),
	'after recovery outbox.status no longer reports the outage (state, last_error)')
  or diag explain outbox_status($node, 'postgres');
$fs->stop;
my $r = $fs->verify(max_duplicates => 0, name => "all brokers down ${outage} s");
$r->{outage_s} = $outage;
note 'figures: ' . FaultStream::figures($r);
cmp_ok($r->{recovery_s}, '<=', 2,
	"everything committed before the brokers returned delivered $r->{recovery_s} s after their return");
is(outbox_status($node, 'postgres')->{worker_pid}, $pid,
	'the same worker throughout the stream outage (no crash loop)');

# --- fast shutdown with every broker down -------------------------------------------
# (with 070_fault_shutdown_brokers_down.pl) the relay has a full local queue
# in flight; pg_ctl stop -m fast returns within shutdown_timeout plus a few
# seconds; after a restart with the brokers back nothing is lost
my $dups_before = $r->{duplicates};
$fs->start;
ok($fs->grow(300), 'the stream flows before the shutdown');
$mock->command_ok('broker_down all');
$t_down = time();
my @p4 = enqueue_events(4, 100);
ok( $fs->wait_for(
		sub {
			time() - $t_down > 3
			  && $node->safe_psql('postgres',
				"SELECT state IN ('broker_unreachable', 'backing_off') AND pending_events > 200"
				  . " FROM outbox.status") eq 't';
		},
		20),
	'outage again: events pile up, outbox.status says the brokers are unreachable');
$fs->stop;
is( $node->safe_psql('postgres',
		"SELECT setting FROM pg_settings WHERE name = 'outbox_kafka.shutdown_timeout'"),
	$shutdown_timeout * 1000, "shutdown_timeout is $shutdown_timeout s");
my $t0 = time();
$node->stop('fast');
my $took = time() - $t0;
cmp_ok($took, '<=', $shutdown_timeout + 3,
	sprintf("fast shutdown with the brokers down took %.1f s (shutdown_timeout %d s)",
		$took, $shutdown_timeout));

$mock->command_ok('broker_up all');
$node->start;
$fs->fault_over;
$fs->start;
ok($fs->grow(200, 30), 'the stream flows after the restart');
$fs->stop;
$r = $fs->verify(max_duplicates => $dups_before + $batch_size,
	name => 'shutdown with brokers down');
$r->{shutdown_s} = sprintf('%.1f', $took);
note 'figures: ' . FaultStream::figures($r);
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 FROM outbox.status"),
	'after restart with the brokers back everything is published');
check_delivered('shutdown during outage', @p4);
check_delivered('earlier events', @warm, @p1, @p3);
is(outbox_status($node, 'postgres')->{dead_letters}, 0, 'no dead letters at all');

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
