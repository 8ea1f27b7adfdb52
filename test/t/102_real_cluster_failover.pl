
# Copyright (c) 2026, outbox_kafka developers

# A 3-broker Apache Kafka cluster (KRaft, every node broker+controller),
# replication factor 3, min.insync.replicas=2, while events stream in:
#  - kill -9 the leader of a busy partition: a new leader is elected and
#    publishing goes on;
#  - kill -9 a second broker: fewer than min.insync.replicas remain, so
#    writes must wait (nothing lost, nothing dead-lettered, no crash loop);
#  - bring both back: everything committed is in Kafka, per key in commit
#    order; duplicates (by outbox-id) counted and reported.

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

my $topic = 'c.busy';
my $batch_size = 5000;
my $kafka = RealKafka->start(nodes => 3, min_insync => 2, topics => ["$topic:3"]);
ok($kafka->wait_in_sync($topic), 'topic with 3 replicas in sync');
my $md = $kafka->topic_metadata($topic);
is(scalar(@{ $md->[0]{replicas} }), 3, 'replication factor 3');

my $node = new_node(
	'real_cluster',
	bootstrap => $kafka->bootstrap,
	extra_conf => "outbox_kafka.batch_size = $batch_size\n");
$node->safe_psql('postgres', 'CREATE TABLE committed (id bigint PRIMARY KEY)');

# 8 000 events (2 000 more later), 20 per transaction, a few ms apart
my $sql = '';
for my $t (1 .. 400)
{
	$sql .=
	    "INSERT INTO committed SELECT outbox.enqueue('$topic', jsonb_build_object('t', $t, 'i', i),"
	  . " key => 'k' || (($t * 20 + i) % 61)) FROM generate_series(1, 20) i;\n"
	  . "SELECT pg_sleep(0.01);\n";
}
my $file = "${PostgreSQL::Test::Utils::tmp_check}/real_cluster.sql";
open my $fh, '>', $file or die $!;
print $fh $sql;
close $fh;
my ($out, $err) = ('', '');
my $stream = IPC::Run::start(
	[
		$node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-d', $node->connstr('postgres'), '-f', $file
	],
	'<', \undef, '>', \$out, '2>', \$err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));

ok($node->poll_query_until('postgres', 'SELECT events_published >= 1000 FROM outbox.status'),
	'publishing to the cluster');
my $pid = outbox_status($node, 'postgres')->{worker_pid};

# --- kill the leader of partition 0 ---------------------------------------------
my $leader = $kafka->topic_metadata($topic)->[0]{leader};
ok($leader >= 1, "partition 0 is led by broker $leader");
my $published = outbox_status($node, 'postgres')->{events_published};
$kafka->stop_node($leader, 'KILL');
my $t_kill = time();
ok( OutboxKafkaTest::poll_until(
		sub {
			my $p = $kafka->topic_metadata($topic) or return 0;
			return $p->[0]{leader} >= 1 && $p->[0]{leader} != $leader;
		}),
	'a new leader is elected for partition 0');
ok( $node->poll_query_until(
		'postgres', "SELECT events_published >= $published + 1500 FROM outbox.status"),
	'publishing goes on with two brokers');
note sprintf("1 500 more events acknowledged %.1f s after the leader was killed", time() - $t_kill);

# --- kill a second broker: writes wait ---------------------------------------------
eval { $stream->finish } or diag "stream: $err";
my ($second) = grep { $_ != $leader } 1 .. 3;
$kafka->stop_node($second, 'KILL');
my $t_two = time();
# more events while only one broker of three runs
$node->safe_psql('postgres',
	"INSERT INTO committed SELECT outbox.enqueue('$topic', jsonb_build_object('late', i),"
	  . " key => 'k' || (i % 61)) FROM generate_series(1, 2000) i");
my $n = $node->safe_psql('postgres', 'SELECT count(*) FROM committed');
is($n, 10000, '10000 events committed in all');
ok( $node->poll_query_until('postgres',
		"SELECT pending_events > 0 AND state <> 'starting' FROM outbox.status"),
	'with one broker of three (min.insync.replicas=2) events wait');
# they keep waiting while the broker is missing: wait for the relay to have
# tried (a producer request timeout), without a fixed sleep
my $pending0 = outbox_status($node, 'postgres')->{pending_events};
ok( OutboxKafkaTest::poll_until(
		sub {
			my $s = outbox_status($node, 'postgres');
			return ($s->{events_dead_lettered} // 0) > 0 || time() - $t_two > 6;
		},
		20),
	'watched the relay for 6 s with two brokers down');
my $st = outbox_status($node, 'postgres');
cmp_ok($st->{pending_events}, '>', 0, "events still wait ($st->{pending_events} pending)");
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered while writes wait');
is($st->{worker_pid}, $pid, 'same worker (no crash loop)');
note sprintf("one broker left for %.1f s; status: state %s, pending %s (was %s), last_error %s",
	time() - $t_two, $st->{state}, $st->{pending_events}, $pending0, $st->{last_error} // 'none');

# --- bring both back -----------------------------------------------------------------
$kafka->start_node($leader, wait => 0);
$kafka->start_node($second);
my $t_back = time();
ok($node->poll_query_until('postgres', 'SELECT pending_events = 0 FROM outbox.status'),
	'all published once the brokers are back');
note sprintf("backlog published %.1f s after the brokers were back", time() - $t_back);
$st = outbox_status($node, 'postgres');
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered');
is($st->{worker_pid}, $pid, 'still the same worker');
ok($kafka->wait_in_sync($topic), 'all replicas in sync again');

my @msgs = $kafka->consume($topic);
my @ids = split /\n/, $node->safe_psql('postgres', 'SELECT id FROM committed');
my $d = check_delivery(\@msgs, expected => \@ids);
is($d->{missing}, 0, 'nothing lost');
my $dups = $d->{duplicates};
cmp_ok($dups, '<=', $batch_size, "duplicates ($dups) within the bound");
diag "3-broker failover: $dups duplicate deliveries (by outbox-id) of 10000";

is($d->{order_violations}, 0, 'per key, Kafka order equals commit order')
  or diag join("\n", @{ $d->{order_diag} });

$node->stop;
$kafka->stop;
done_testing();
