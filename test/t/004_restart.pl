
# Copyright (c) 2026, outbox_kafka developers

# Restarts and crashes (G1, G3, G4, G5): a clean restart publishes nothing
# again; an immediate shutdown while publishing and a SIGKILL of the worker
# lose nothing, and the duplicates they cause stay within what was in flight
# (at most outbox_kafka.batch_size).  Then, on the same server and broker, the
# fault suite's steady stream (test/t/FaultStream.pm) through three SIGKILLs
# of the worker and two immediate shutdowns: every committed event, nothing
# rolled back, per-key order, duplicates at most one chunk per crash.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use FaultStream;
use IPC::Run;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $topic = 't.restart';
my $batch_size = 5000;
my $mock = start_mock(topics => ["$topic:4"]);
my $node = new_node(
	'restart',
	bootstrap => $mock->bootstrap,
	poll_interval => '1s',
	extra_conf => "restart_after_crash = on\noutbox_kafka.batch_size = $batch_size\n");

$node->safe_psql('postgres',
	'CREATE TABLE committed (id bigint PRIMARY KEY, phase int NOT NULL)');

# Enqueue $n events of phase $phase in transactions of $per_tx, recording
# their ids in the same transactions.  Returns the SQL script.
sub enqueue_script
{
	my ($phase, $n, $per_tx) = @_;
	my $sql = '';
	for (my $done = 0; $done < $n; $done += $per_tx)
	{
		my $k = $n - $done < $per_tx ? $n - $done : $per_tx;
		$sql .=
		    "INSERT INTO committed (id, phase) SELECT outbox.enqueue('$topic',"
		  . " jsonb_build_object('phase', $phase, 'i', $done + i),"
		  . " key => 'key-' || (($done + i) % 37)), $phase"
		  . " FROM generate_series(1, $k) i;\n";
	}
	return $sql;
}

sub committed_ids
{
	my ($phase) = @_;
	return split /\n/,
	  $node->safe_psql('postgres',
		"SELECT id FROM committed WHERE phase = $phase ORDER BY id");
}

# (missing, duplicates) of the events @ids in @msgs
sub deliveries
{
	my ($msgs, @ids) = @_;
	my $d = check_delivery($msgs, expected => \@ids);
	return ($d->{missing}, $d->{duplicates});
}

# --- phase 1: publish, then a clean restart -------------------------------------
$node->safe_psql('postgres', enqueue_script(1, 2000, 100));
my @p1 = committed_ids(1);
is(scalar(@p1), 2000, '2000 events enqueued');
ok(wait_until_published($node, 'postgres', 2000), 'phase 1 published');

my @msgs = consume_all($mock->bootstrap, $topic);
my ($missing, $dups) = deliveries(\@msgs, @p1);
is($missing, 0, 'phase 1: every event delivered');
is($dups, 0, 'phase 1: no duplicates');

$node->restart;    # fast shutdown
ok($node->poll_query_until('postgres',
		"SELECT state = 'idle' FROM outbox.status"),
	'worker idle after the restart');

$node->safe_psql('postgres', enqueue_script(2, 500, 100));
my @p2 = committed_ids(2);
ok(wait_until_published($node, 'postgres', 500), 'phase 2 published');

@msgs = consume_all($mock->bootstrap, $topic);
($missing, $dups) = deliveries(\@msgs, @p1);
is($missing + $dups, 0,
	'after a clean restart nothing published before it is published again');
($missing, $dups) = deliveries(\@msgs, @p2);
is($missing, 0, 'phase 2: the 500 new events arrive');
is($dups, 0, 'phase 2: once each');
is(scalar(@msgs), 2500, 'exactly 2500 messages in the topic');

# Start enqueuing $n events of $phase in the background, transactions of 50.
sub start_enqueuer
{
	my ($phase, $n) = @_;
	my $script = "${PostgreSQL::Test::Utils::tmp_check}/restart_phase$phase.sql";
	open my $fh, '>', $script or die "could not write $script: $!";
	print $fh enqueue_script($phase, $n, 50);
	close $fh;
	my $e = { out => '', err => '' };
	$e->{h} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-X', '-q',
			'-d', $node->connstr('postgres'), '-f', $script
		],
		'<', \undef, '>', \$e->{out}, '2>', \$e->{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return $e;
}

sub end_enqueuer
{
	my ($e) = @_;
	eval { $e->{h}->finish };    # the enqueuing session lost its server
	note "enqueuing session ended: " . ($e->{err} =~ s/\n/ /gr);
}

# --- phase 2b: clean (fast) restart while publishing ----------------------------------
my $enq = start_enqueuer(22, 3000);
ok( $node->poll_query_until(
		'postgres',
		"SELECT (SELECT count(*) FROM committed WHERE phase = 22) >= 1000"
		  . " AND events_published >= 500 + 500 FROM outbox.status"),
	'phase 2b is being published');
$node->restart;
end_enqueuer($enq);
my @p2b = committed_ids(22);
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 FROM outbox.status"),
	'phase 2b published after the restart');
@msgs = consume_all($mock->bootstrap, $topic);
($missing, $dups) = deliveries(\@msgs, @p2b);
is($missing, 0,
	'fast restart while publishing: every committed event delivered');
is($dups, 0,
	'fast restart while publishing: no duplicates (the worker records what was acknowledged before it exits)'
);

# --- phase 3: immediate shutdown while publishing ---------------------------------
my $published_base = outbox_status($node, 'postgres')->{events_published};
$enq = start_enqueuer(3, 3000);
# crash once a good part is published and more is still coming
ok( $node->poll_query_until(
		'postgres',
		"SELECT (SELECT count(*) FROM committed WHERE phase = 3) >= 1000"
		  . " AND events_published >= $published_base + 500 FROM outbox.status"),
	'phase 3 is being published');
$node->stop('immediate');
end_enqueuer($enq);
$node->start;

my @p3 = committed_ids(3);
note scalar(@p3) . " phase-3 events committed before the crash";
ok(@p3 >= 1000, 'at least 1000 phase-3 events committed');
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 FROM outbox.status"),
	'everything committed before the crash is published after it');

@msgs = consume_all($mock->bootstrap, $topic);
($missing, $dups) = deliveries(\@msgs, @p3);
is($missing, 0, 'crash: every committed event delivered at least once');
note "immediate shutdown: $dups duplicate deliveries";
cmp_ok($dups, '<=', $batch_size,
	"crash: duplicates ($dups) at most one batch (outbox_kafka.batch_size = $batch_size)");
($missing, $dups) = deliveries(\@msgs, @p1, @p2, @p2b);
is($missing + $dups, 0,
	'crash: events acknowledged long before it are not published again');
my $d = check_delivery(\@msgs, expected => [ @p1, @p2, @p2b, @p3 ]);
is($d->{unknown}, 0, 'no message for an event that did not commit');
is($d->{order_violations}, 0,
	'per key, first deliveries are in commit (id) order')
  or diag join("\n", @{ $d->{order_diag} });

# --- phase 3b: crash when everything is acknowledged --------------------------------
# outbox.status says nothing is pending and the worker is idle: no message
# is in flight, so by G4 ("duplicates ... at most the events in flight
# then") a crash now must not publish anything again.  wal_writer_delay is
# set to its maximum, a legal setting, so that the outcome does not depend on
# whether the WAL writer happened to flush the relay's bookkeeping before
# the crash.
$node->safe_psql('postgres', "ALTER SYSTEM SET wal_writer_delay = '10s'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->safe_psql('postgres', enqueue_script(33, 2000, 2000));
my @p3b = committed_ids(33);
{
	my $mon = $node->background_psql('postgres');
	ok( poll_until(
			sub {
				$mon->query_safe(
					"SELECT pending_events = 0 AND state = 'idle' FROM outbox.status"
				) eq 't';
			}),
		'phase 3b published, worker idle');
	$node->stop('immediate');
	eval { $mon->quit };
}
$node->start;
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 AND state = 'idle' FROM outbox.status"),
	'worker idle again after the crash');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET wal_writer_delay');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
@msgs = consume_all($mock->bootstrap, $topic);
($missing, $dups) = deliveries(\@msgs, @p3b);
is($missing, 0, 'crash when idle: every event delivered');
note "crash when idle: $dups duplicate deliveries";
is($dups, 0,
	'crash when idle: nothing acknowledged and reported published (pending_events = 0) is published again'
);

# --- phase 4: SIGKILL of the worker ----------------------------------------------
my $st = outbox_status($node, 'postgres');
my $old_pid = $st->{worker_pid};
ok($old_pid, "worker pid $old_pid");
my $offset = -s $node->logfile;
$node->safe_psql('postgres', enqueue_script(4, 1000, 100));
kill 'KILL', $old_pid;
# a killed backend makes the postmaster reinitialise (restart_after_crash)
$node->wait_for_log(qr/all server processes terminated; reinitializing/,
	$offset);
ok( $node->poll_query_until(
		'postgres',
		"SELECT worker_pid IS NOT NULL AND worker_pid <> $old_pid"
		  . " AND state = 'idle' AND pending_events = 0 FROM outbox.status"),
	'a new worker runs and has published the backlog');

$node->safe_psql('postgres', enqueue_script(5, 200, 100));
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 FROM outbox.status"),
	'events enqueued after the kill are published');

my @p4 = committed_ids(4);
my @p5 = committed_ids(5);
is(scalar(@p4), 1000, '1000 events committed before the kill');
@msgs = consume_all($mock->bootstrap, $topic);
($missing, $dups) = deliveries(\@msgs, @p4);
is($missing, 0, 'SIGKILL: every event committed before it delivered');
note "SIGKILL: $dups duplicate deliveries";
cmp_ok($dups, '<=', $batch_size, "SIGKILL: duplicates ($dups) at most one batch");
($missing, $dups) = deliveries(\@msgs, @p5);
is($missing + $dups, 0, 'SIGKILL: events after it delivered once');
($missing, $dups) = deliveries(\@msgs, @p1, @p2, @p2b);
is($missing + $dups, 0, 'SIGKILL: older events not published again');
is(check_delivery(\@msgs)->{order_violations}, 0,
	'per key, first deliveries still in commit order');

# --- the fault suite: a steady stream through SIGKILLs and crashes -------------
# (was 060_fault_worker_sigkill.pl and 061_fault_immediate_shutdown.pl)
# Chunks of $stream_batch events, as those tests had; the stream's own topics.
my $stream_batch = 1000;
my $kills = 3;
my $crashes = 2;
my @topics = ('fs.kill.a', 'fs.kill.b', 'fs.kill.c');
$mock->command_ok("create_topic $_ 3") for @topics;
$node->safe_psql('postgres', "ALTER SYSTEM SET outbox_kafka.batch_size = $stream_batch");
$node->safe_psql('postgres', "ALTER SYSTEM SET outbox_kafka.poll_interval = '200ms'");
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT setting = '$stream_batch' FROM pg_settings WHERE name = 'outbox_kafka.batch_size'"),
	"batch_size $stream_batch for the stream");

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
my $r = $fs->verify(max_duplicates => $kills * $stream_batch, name => 'SIGKILL x3');
note 'figures: ' . FaultStream::figures($r);

# verify counts from the start of the stream: the crashes may add one chunk
# each to the duplicates the kills left
my $dups_before = $r->{duplicates};
$fs->start;
ok($fs->grow(300), 'the stream flows again before the crashes');
for my $i (1 .. $crashes)
{
	$node->stop('immediate');
	$fs->tick;
	my $t0 = time();
	$node->start;
	$fs->fault_over;
	ok($fs->grow(200), "crash $i: the stream flows again after the restart");
	note sprintf('crash %d: flowing %.1f s after the restart began', $i, time() - $t0);
}
$fs->stop;
$r = $fs->verify(max_duplicates => $dups_before + $crashes * $stream_batch,
	name => 'immediate shutdown x2');
note 'figures: ' . FaultStream::figures($r);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
