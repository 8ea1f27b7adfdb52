
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: a backlog of large events (issue 7 item 5).  300 events of
# 900 kB pile up while the brokers are down, beside a steady stream of
# small ones; with outbox_kafka.max_batch_bytes = 16MB the worker's peak
# resident memory (VmHWM in /proc/<pid>/status, which also counts the
# shared buffers it touched) must stay under 3 x max_batch_bytes + 100 MB
# while it drains them, and everything is delivered.

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

my $n_big = $ENV{FAULT_BIG_EVENTS} // 300;
my $big_bytes = 900_000;
my $max_batch_mb = 16;
my $bound_mb = 3 * $max_batch_mb + 100;
my @topics = ('fs.big.small');
my $mock = start_mock(topics => [ 'fs.big.small:3', 'fs.big.large:3' ]);
my $node = new_node('large', bootstrap => $mock->bootstrap, poll_interval => '200ms');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.max_batch_bytes = '${max_batch_mb}MB'");
$node->reload;
my $pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM outbox.status');

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics, pace_ms => 50);
$fs->start;
ok($fs->grow(100), 'the stream flows');

$mock->command_ok('broker_down all');
my $sql = '';
for (my $i = 0; $i < $n_big; $i += 10)
{
	$sql .= "SELECT count(outbox.enqueue('fs.big.large', repeat(md5(g::text), "
	  . ($big_bytes / 32) . "), key => 'big-' || (g % 7)))"
	  . " FROM generate_series($i + 1, $i + 10) g;\n";
}
$node->safe_psql('postgres', $sql);
note "$n_big events of $big_bytes bytes enqueued while the brokers are down";
$mock->command_ok('broker_up all');
$fs->fault_over;
my $t0 = time();
ok( $fs->wait_for(
		sub {
			$node->safe_psql('postgres', 'SELECT pending_events < 50 FROM outbox.status') eq 't';
		},
		120),
	'the backlog of large events drains');
my $drain = time() - $t0;
$fs->stop;
my $r = $fs->verify(max_duplicates => 0, name => 'large events backlog');

my $now_pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM outbox.status');
my $statf = slurp_file("/proc/$now_pid/status");
my ($hwm) = $statf =~ /^VmHWM:\s+(\d+) kB/m;
my ($rss_anon) = $statf =~ /^RssAnon:\s+(\d+) kB/m;
$r->{drain_s} = sprintf('%.1f', $drain);
$r->{worker_vmhwm_mb} = sprintf('%.0f', $hwm / 1024);
$r->{worker_rssanon_mb} = sprintf('%.0f', ($rss_anon // 0) / 1024);
note 'figures: ' . FaultStream::figures($r);
is($now_pid, $pid, 'the same worker drained the backlog (not OOM-killed or restarted)');
cmp_ok($hwm / 1024, '<=', $bound_mb,
	sprintf('worker peak RSS %.0f MB within 3 x max_batch_bytes + 100 MB = %d MB',
		$hwm / 1024, $bound_mb));
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'no large event dead-lettered');

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
