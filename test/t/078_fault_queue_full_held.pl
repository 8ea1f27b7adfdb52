
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: librdkafka's queue is full (batch_size above
# queue.buffering.max.messages) and every event of the chunk in flight
# belongs to a topic that is then held because it stalls.  The relay used
# to spin: nothing of its own was waiting, yet it went round its loop at
# once, for as long as the stall lasted, taking a whole core from the
# database server.  Now it waits for room in the queue (delivery reports
# wake it).  The relay's CPU time is read from /proc over a few seconds of
# the stall; once the partition has a leader again, everything is
# published, in order, once.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use POSIX qw(sysconf _SC_CLK_TCK);

plan skip_all => 'needs /proc' unless -r '/proc/self/stat';

my $sick = 'fs.qf.sick';
my $ok = 'fs.qf.ok';
my $mock = start_mock(topics => [ "$sick:1", "$ok:1" ]);
my $node = new_node(
	'queue_full',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => qq{
outbox_kafka.stall_timeout = '1s'
outbox_kafka.batch_size = 50
outbox_kafka.producer_properties = 'queue.buffering.max.messages=5'
});

$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$ok', '{\"warm\": 1}'::jsonb, key => 'k')");
ok(wait_until_published($node, 'postgres', 1), 'warm-up event published');

$mock->command_ok("leader $sick 0 -1");
$node->safe_psql('postgres', qq{
	SELECT outbox.enqueue('$sick', jsonb_build_object('n', i), key => 'k') FROM generate_series(1, 20) i;
	SELECT outbox.enqueue('$ok', jsonb_build_object('n', i), key => 'k') FROM generate_series(1, 20) i;
});
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM outbox.held_topics WHERE topic = '$sick'"),
	'the stalled topic is held');

# cpu_seconds($pid): user + system CPU time of a process so far
sub cpu_seconds
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or die "no /proc/$pid/stat: $!";
	my $stat = <$fh>;
	close($fh);
	$stat =~ s/^.*\) //;
	my @f = split / /, $stat;
	return ($f[11] + $f[12]) / sysconf(_SC_CLK_TCK);
}

my $pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM outbox.status');
my ($cpu0, $t0) = (cpu_seconds($pid), time());
usleep(3_000_000);    # a measuring window, not a wait for something
my ($cpu1, $t1) = (cpu_seconds($pid), time());
my $share = ($cpu1 - $cpu0) / ($t1 - $t0);
note sprintf('relay CPU during the stall: %.1f %% of a core', 100 * $share);
cmp_ok($share, '<', 0.2, 'the relay does not spin while the stalled topic fills the queue');

$mock->command_ok("leader $sick 0 1");
ok(wait_until_published($node, 'postgres', 41),
	'once the partition has a leader again everything is published');
foreach my $topic ($sick, $ok)
{
	my @n = map { $_->{payload} =~ /"n": (\d+)/ ? $1 : () } consume_all($mock->bootstrap, $topic);
	is(join(',', @n), join(',', 1 .. 20), "$topic: every event once, in order");
}

$node->stop;
$mock->stop;
done_testing();
