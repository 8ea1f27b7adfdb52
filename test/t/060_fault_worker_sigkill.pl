
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: SIGKILL of the relay worker, three times, under a steady
# stream of enqueues (G1, G3, G4, G5).  A killed backend makes the
# postmaster reinitialise (restart_after_crash), so every session loses its
# connection too; the stream's sessions reconnect and carry on.  At the
# consumer: every committed event, nothing rolled back, per-key order,
# duplicates at most what was in flight at each kill (bound: one chunk,
# outbox_kafka.batch_size, per kill).

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

my $kills = 3;
my $batch_size = 1000;
my @topics = ('fs.kill.a', 'fs.kill.b', 'fs.kill.c');
my $mock = start_mock(topics => [ map { "$_:3" } @topics ]);
my $node = new_node(
	'sigkill',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => "restart_after_crash = on\noutbox_kafka.batch_size = $batch_size\n");

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');

for my $i (1 .. $kills)
{
	my $pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM outbox.status');
	ok($pid, "kill $i: worker pid $pid");
	my $offset = -s $node->logfile;
	$fs->note_killed($pid);
	kill 'KILL', $pid;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	ok( $fs->wait_for(
			sub {
				my ($ret, $out) = $node->psql('postgres',
					"SELECT worker_pid IS NOT NULL AND worker_pid <> $pid FROM outbox.status");
				$ret == 0 && $out eq 't';
			}),
		"kill $i: a new worker runs");
	$fs->fault_over;
	ok($fs->grow(200), "kill $i: the stream flows again");
}
$fs->stop;
my $r = $fs->verify(max_duplicates => $kills * $batch_size, name => 'SIGKILL x3');
note 'figures: ' . FaultStream::figures($r);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
