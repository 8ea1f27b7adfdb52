
# Copyright (c) 2026, outbox_kafka developers

# A real Kafka broker goes away while events are being published: first a
# graceful stop (SIGTERM, controlled shutdown), then kill -9.  Events wait
# (no dead letters), then flow when the broker is back: nothing lost, the
# duplicates (counted by the outbox-id header) stay within the documented
# bound (G4: the events in flight, at most outbox_kafka.batch_size) and are
# reported, and per key the first deliveries keep commit order.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use IPC::Run;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RealKafka;
use Test::More;
use Time::HiRes qw(time);

my $topic = 'r.restart';
my $batch_size = 5000;
my $kafka = RealKafka->start(topics => ["$topic:4"]);
my $node = new_node(
	'real_restart',
	bootstrap => $kafka->bootstrap,
	extra_conf => "outbox_kafka.batch_size = $batch_size\n");
$node->safe_psql('postgres',
	'CREATE TABLE committed (id bigint PRIMARY KEY, phase int NOT NULL)');

# Enqueue $tx transactions of 20 events in the background, a few ms apart,
# recording the ids in the same transactions.
sub start_stream
{
	my ($phase, $tx) = @_;
	my $sql = '';
	for my $t (1 .. $tx)
	{
		$sql .=
		    "INSERT INTO committed SELECT outbox.enqueue('$topic', jsonb_build_object('p', $phase, 't', $t, 'i', i),"
		  . " key => 'k' || (($t * 20 + i) % 53)), $phase FROM generate_series(1, 20) i;\n"
		  . "SELECT pg_sleep(0.01);\n";
	}
	my $file = "${PostgreSQL::Test::Utils::tmp_check}/real_restart_$phase.sql";
	open my $fh, '>', $file or die $!;
	print $fh $sql;
	close $fh;
	my $s = { out => '', err => '' };
	$s->{h} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-f', $file
		],
		'<', \undef, '>', \$s->{out}, '2>', \$s->{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return $s;
}

sub committed_count
{
	my ($phase) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM committed WHERE phase = $phase");
}

sub committed_ids
{
	my ($phase) = @_;
	return [ split /\n/,
		$node->safe_psql('postgres', "SELECT id FROM committed WHERE phase = $phase") ];
}

my %figures;
foreach my $case ([ 1, 'TERM', 'graceful stop' ], [ 2, 'KILL', 'kill -9' ])
{
	my ($phase, $sig, $what) = @$case;
	my $base = outbox_status($node, 'postgres')->{events_published} // 0;
	my $stream = start_stream($phase, 300);    # 6 000 events over a few seconds

	# the broker goes away while events are committed and published
	ok( $node->poll_query_until(
			'postgres',
			"SELECT events_published >= $base + 1000 FROM outbox.status"),
		"$what: publishing is under way");
	my $pid = outbox_status($node, 'postgres')->{worker_pid};
	$kafka->stop_node(1, $sig);
	my $t_down = time();

	# while it is down: events wait, nothing is dead-lettered
	ok( $node->poll_query_until(
			'postgres', "SELECT pending_events > 0 FROM outbox.status"),
		"$what: events wait while the broker is down");
	$kafka->start_node(1);
	my $t_up = time();
	eval { $stream->{h}->finish } or diag "stream: $stream->{err}";
	ok($node->poll_query_until('postgres', "SELECT pending_events = 0 FROM outbox.status"),
		"$what: everything published once the broker is back");
	my $t_done = time();

	my $st = outbox_status($node, 'postgres');
	is($st->{events_dead_lettered}, 0, "$what: nothing dead-lettered");
	is($st->{worker_pid}, $pid, "$what: the same worker throughout (no crash loop)");
	is(committed_count($phase), 6000, "$what: 6000 events committed");

	my @msgs = $kafka->consume($topic);
	my $d = check_delivery(\@msgs, expected => committed_ids($phase));
	my $dups = $d->{duplicates};
	is($d->{missing}, 0, "$what: nothing lost");
	cmp_ok($dups, '<=', $batch_size,
		"$what: duplicates ($dups) within the bound (events in flight, at most batch_size $batch_size)");
	is($d->{order_violations}, 0, "$what: per key, first deliveries in commit order")
	  or diag join("\n", @{ $d->{order_diag} });
	$figures{$what} = $dups;
	note sprintf("%s: broker down %.1f s, backlog published %.1f s after it was back; %d duplicate deliveries",
		$what, $t_up - $t_down, $t_done - $t_up, $dups);
}
diag "duplicates measured by outbox-id: graceful stop $figures{'graceful stop'}, kill -9 $figures{'kill -9'}";

$node->stop;
$kafka->stop;
done_testing();
