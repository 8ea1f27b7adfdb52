
# Copyright (c) 2026, outbox_kafka developers

# Exactly-once effects of the inbox under faults, on Apache Kafka
# (RealKafka.pm).  N keyed messages, each carrying its per-key sequence
# number, are produced at a steady rate while the inbox consumes them, with
# copies injected on the producing side (the same outbox-event-id header,
# as the relay re-publishes around a crash): a copy right behind some
# messages, and a late copy of others, three messages of their key later.
# While they are applied, in turn and repeatedly: SIGKILL of the inbox
# worker (a crash restart of the server), pg_ctl stop -m immediate + start,
# kill -9 of the broker + start; and a second database subscribes to the
# same topic during the run.  The handler records every application, with
# no constraint (applied_order a bigserial).  In each database: 0 missing,
# 0 doubled, per-key order = sequence order; and the offsets Kafka holds
# for the group outbox_kafka.<database>.<subscription> never run ahead of
# the ones PostgreSQL stored, and end equal to them.
#
# The default (20 000 messages, each fault twice) is the suite's;
# bench/inbox_exactly_once.sh runs the same file with a million messages
# through these settings:
#
#   INBOX_EO_N        messages (20000)
#   INBOX_EO_KEYS     keys (200)
#   INBOX_EO_RATE     produced per second (500; 0: as fast as possible)
#   INBOX_EO_CYCLES   rounds of the three faults (2)
#   INBOX_EO_BATCH    outbox_kafka.inbox_batch_size (200)
#
# and reads the line starting "exactly-once summary" it prints.

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
use Time::HiRes qw(time usleep);

my $n = $ENV{INBOX_EO_N} // 20000;
my $keys = $ENV{INBOX_EO_KEYS} // 200;
my $rate = $ENV{INBOX_EO_RATE} // 500;
my $cycles = $ENV{INBOX_EO_CYCLES} // 2;
my $batch = $ENV{INBOX_EO_BATCH} // 200;
my $topic = 'eo.orders';
my $partitions = 8;
# a long run must not give up on a slow but healthy catch-up
my $wait = $PostgreSQL::Test::Utils::timeout_default * (1 + $n / 20000);

my $t_start = time();
my $kafka = RealKafka->start(topics => ["$topic:$partitions"]);
my $node = new_node('inbox_eo', bootstrap => $kafka->bootstrap,
	databases => 'billing,billing2',
	extra_conf => "restart_after_crash = on\noutbox_kafka.inbox_batch_size = $batch\n");

my $handler = q{
CREATE TABLE applied (applied_order bigserial, key text, seq int, event text);
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO applied (key, seq, event)
    VALUES (convert_from(m.key, 'UTF8'),
            (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int,
            m.headers ->> 'outbox-event-id');
END
$$;
};
$node->safe_psql($_, $handler) foreach qw(billing billing2);
$node->safe_psql('billing', qq{SELECT outbox.subscribe('eo', '$topic', 'apply(outbox.inbox_message)')});

# --- the messages: message i is seq int(i / keys) of key k(i % keys) -----------
my $input = "$PostgreSQL::Test::Utils::tmp_check/eo_messages.tsv";
my $copies = 0;
{
	open my $fh, '>', $input or die "$input: $!";
	my $line = sub {
		my $i = shift;
		return sprintf("k%d\teo-%d\t{\"seq\": %d}\n", $i % $keys, $i, int($i / $keys));
	};
	for my $i (0 .. $n - 1)
	{
		print $fh $line->($i);
		# a copy right behind it
		if ($i % 50 == 25) { print $fh $line->($i); $copies++; }
		# a late copy of the message of the same key three sequence
		# numbers back (already applied, or not yet: either way once)
		if ($i % 73 == 0 && $i >= 3 * $keys) { print $fh $line->($i - 3 * $keys); $copies++; }
	}
	close $fh;
}
my $produced_total = $n + $copies;
note "producing $n messages and $copies copies at "
  . ($rate ? "$rate/s" : 'full speed');
my ($prod_out, $prod_err) = ('', '');
my $producer = IPC::Run::start(
	[ $RealKafka::ADMIN, '-b', $kafka->bootstrap, 'produce', $topic, $rate ],
	'<', $input, '>', \$prod_out, '2>', \$prod_err);
# it retries for ever: if the test dies, it must not outlive it
END { $producer->kill_kill if $producer && $producer->pumpable; }

# query_or_empty, and '' too when psql dies of a broken pipe (the server
# went away between its start and the query: a crash restart)
sub query { my $r = eval { query_or_empty($node, $_[0], $_[1]) }; return $r // ''; }
sub worker_pid { my $r = eval { inbox_worker_pid($node, $_[0]) }; return $r // ''; }

# messages consumed by a database (copies included), -1 while it does not
# answer: cheap to ask however long the run
sub consumed
{
	my $c = query($_[0], q{SELECT coalesce(sum(next_offset), 0) FROM outbox.inbox_offset WHERE subscription = 'eo'});
	return $c eq '' ? -1 : $c;
}

# poll_until, asking every 0.2 s: a long run must not spend the machine on
# polls
sub poll_slowly
{
	my ($code, $timeout) = @_;
	return poll_until(sub { my $r = $code->(); usleep(200_000) unless $r; $r }, $timeout);
}

# the offsets Kafka holds for a database's group, {partition => offset}
sub kafka_offsets
{
	my $db = shift;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $RealKafka::ADMIN, '-b', $kafka->bootstrap, 'group-offsets',
			"outbox_kafka.$db.eo", $topic ], '>', \$out, '2>', \$err)
	  or return undef;
	return { map { split / / } split /\n/, $out };
}

# the offsets PostgreSQL stored, {partition => offset}
sub stored_offsets
{
	my $db = shift;
	my $out = query($db, q{SELECT "partition", next_offset FROM outbox.inbox_offset WHERE subscription = 'eo'});
	return { map { split /\|/ } split /\n/, $out };
}

# Kafka's offsets read first, then PostgreSQL's: Kafka's must not be ahead
my $ahead = 0;
my $offset_checks = 0;
sub check_kafka_behind_db
{
	foreach my $db (@_)
	{
		my $k = kafka_offsets($db) or next;
		my $s = stored_offsets($db);
		next unless %$s;
		$offset_checks++;
		foreach my $p (grep { /^\d+$/ } keys %$k)
		{
			next if $k->{$p} < 0;
			if (!defined $s->{$p} || $k->{$p} > $s->{$p})
			{
				$ahead++;
				diag "group outbox_kafka.$db.eo partition $p: Kafka has $k->{$p}, PostgreSQL "
				  . ($s->{$p} // 'nothing');
			}
		}
	}
}

# --- the faults, at evenly spaced points of billing's progress ------------------
# (in offsets consumed, copies included)
my @faults = ((qw(worker_kill immediate broker_kill)) x $cycles);
my %done = (worker_kill => 0, immediate => 0, broker_kill => 0);
my $step = int($produced_total / (@faults + 2));
my $second_db_at;
my @dbs = ('billing');
for my $j (0 .. $#faults)
{
	my $at = ($j + 1) * $step;
	ok(poll_slowly(sub { consumed('billing') >= $at && worker_pid('billing') ne '' }, $wait),
		"billing consumed $at, its inbox worker runs");
	check_kafka_behind_db(@dbs);
	my $f = $faults[$j];
	if ($f eq 'worker_kill')
	{
		my $pid = worker_pid('billing');
		my $offset = -s $node->logfile;
		kill 'KILL', $pid;
		$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
		ok(poll_until(sub { my $p = worker_pid('billing'); $p ne '' && $p ne $pid }, $wait),
			"SIGKILL of inbox worker $pid: a new one after the crash restart");
	}
	elsif ($f eq 'immediate')
	{
		$node->stop('immediate');
		$node->start;
		pass('pg_ctl stop -m immediate, start');
	}
	else
	{
		$kafka->stop_node(1, 'KILL');
		$kafka->start_node(1);
		pass('broker kill -9, start');
	}
	$done{$f}++;
	if ($j == 0)
	{
		# the second database subscribes to the same topic, from its start
		$node->safe_psql('billing2',
			qq{SELECT outbox.subscribe('eo', '$topic', 'apply(outbox.inbox_message)')});
		$second_db_at = consumed('billing');
		push @dbs, 'billing2';
	}
}

$producer->finish;
is($?, 0, 'the producer delivered everything') or diag $prod_err;
like($prod_out, qr/^delivered $produced_total$/m, "$produced_total messages in the topic");
my $t_produced = time();

foreach my $db (@dbs)
{
	ok(poll_slowly(sub {
			query($db, qq{SELECT count(*) = $partitions AND sum(stored_offset) = $produced_total
			                 FROM outbox.inbox_status WHERE subscription = 'eo'}) eq 't';
		}, $wait), "$db: every offset consumed");
}
my $t_applied = time();

my %result;
foreach my $db (@dbs)
{
	my $r = $node->safe_psql($db, qq{
WITH expected AS (
  SELECT 'k' || (i % $keys) AS key, i / $keys AS seq FROM generate_series(0, $n - 1) i),
ordered AS (
  SELECT seq < lag(seq) OVER (PARTITION BY key ORDER BY applied_order) AS back FROM applied)
SELECT (SELECT count(*) FROM applied),
       (SELECT count(*) FROM expected e WHERE NOT EXISTS
          (SELECT FROM applied a WHERE a.key = e.key AND a.seq = e.seq)),
       (SELECT count(*) - count(DISTINCT (key, seq)) FROM applied),
       (SELECT count(*) FROM applied a WHERE NOT EXISTS
          (SELECT FROM expected e WHERE a.key = e.key AND a.seq = e.seq)),
       (SELECT count(*) FROM ordered WHERE back),
       (SELECT sum(duplicates) FROM outbox.inbox_status WHERE subscription = 'eo')});
	my ($count, $missing, $double, $unexpected, $back, $dups) = split /\|/, $r;
	$result{$db} = "$db: applied $count, missing $missing, doubled $double, unexpected $unexpected, "
	  . "out of order $back, copies skipped (inbox_status.duplicates) $dups";
	is($missing, 0, "$db: 0 missing");
	is($double, 0, "$db: 0 doubled");
	is($unexpected, 0, "$db: 0 unexpected");
	is($back, 0, "$db: per-key order intact");
	is($count, $n, "$db: $n effects");
}

# the offsets reached Kafka too, after PostgreSQL's, and end equal
foreach my $db (@dbs)
{
	ok(poll_slowly(sub {
			my $k = kafka_offsets($db) or return 0;
			my $s = stored_offsets($db);
			return 0 unless keys %$s == $partitions;
			return !grep { ($k->{$_} // -1) != $s->{$_} } keys %$s;
		}, $wait), "$db: the group outbox_kafka.$db.eo holds the stored offsets");
}
check_kafka_behind_db(@dbs);
is($ahead, 0, "Kafka's committed offsets never ahead of PostgreSQL's ($offset_checks checks)");

# manual assignment (docs/inbox.md): two databases on one topic, and no
# consumer group with a member, so nothing to rebalance
foreach my $db (@dbs)
{
	my $k = kafka_offsets($db);
	is($k->{members} // 'none', 0, "$db: the group outbox_kafka.$db.eo has no members ("
		. ($k->{state} // '?') . ')');
}

my $summary = sprintf(
	"exactly-once summary: %d messages + %d copies (%d keys, rate %s/s, batch %d), "
	  . "faults: %d worker SIGKILL, %d immediate restart, %d broker kill -9, second database "
	  . "subscribed when billing had consumed %d; produced in %.0f s, all applied %.0f s after the start "
	  . "(%.0f s after the last was produced); %s; %s; Kafka offsets ahead: %d of %d checks",
	$n, $copies, $keys, $rate || 'max', $batch, $done{worker_kill}, $done{immediate},
	$done{broker_kill}, $second_db_at, $t_produced - $t_start, $t_applied - $t_start,
	$t_applied - $t_produced, $result{billing}, $result{billing2} // 'billing2: -', $ahead,
	$offset_checks);
diag $summary;

$node->stop;
$kafka->stop;
done_testing();
