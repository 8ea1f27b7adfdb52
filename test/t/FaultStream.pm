
# Copyright (c) 2026, outbox_kafka developers

=pod

=head1 NAME

FaultStream - a steady stream of enqueues through a fault, checked at the consumer

=head1 SYNOPSIS

  use FindBin;
  use lib $FindBin::Bin;
  use OutboxKafkaTest;
  use FaultStream;

  my $mock = start_mock(topics => ['fs.a:3', 'fs.b:2']);
  my $node = new_node('x', bootstrap => $mock->bootstrap);
  my $fs = FaultStream->new(node => $node, mock => $mock,
      topics => ['fs.a', 'fs.b']);
  $fs->start;                              # sessions enqueue, consumer reads
  $fs->wait_for(sub { $fs->committed_count >= 500 });
  ... inject the fault, end it ...
  $fs->fault_over;                         # for the time to recover
  $fs->stop;                               # sessions finish their transaction
  my $r = $fs->verify(max_duplicates => 5000);
  note FaultStream::figures($r);

=head1 DESCRIPTION

Several sessions (background psql processes running the procedure
fs_stream) enqueue events in short transactions, paced, some of which roll
back.  Every key is written by exactly one session, so the commit order of a
key is known: each committed event carries its key and a per-key sequence
number q (1, 2, 3, ...) in its JSON payload, and is recorded in the table
fs_log in the same transaction.  Rolled-back events carry "rb": 1 and q = -1;
the sequence fs_rolled_back counts those transactions (sequences ignore
rollback).  Keys map to one topic each, spread over the topics given.

A background consumer (test/mock_kafka/fs_consume) reads every partition of
the topics from the beginning for the whole test and records when each
message arrived.  Sessions that lose their server (crash, restart) are
started again by tick(), which wait_for() calls while it polls; after a
restart a session continues each key after its last committed sequence
number.

verify() waits (bounded) until every committed event has arrived and then
checks, as test assertions:

=over

=item * every committed event delivered, by outbox-id header, with its
payload, key and topic (or dead-lettered, when the test allows it);

=item * no rolled-back event delivered, nothing unknown delivered;

=item * order per key: after removing repeated outbox-ids (re-deliveries of
what was already delivered, which at-least-once allows), the sequence
numbers of a key are strictly increasing and without gaps, in the order of
the partition log.  So the first occurrence of every event follows commit
order, and no event of a key is delivered before an earlier one that was
delivered later (G3 under faults);

=item * duplicates (messages minus distinct outbox-ids) within the bound the
test states;

=item * no crash in the server log since start(): no "terminated by signal"
(except for pids the test killed itself), PANIC, TRAP, "server process ...
was terminated";

=item * outbox.status accounts for it: nothing pending, no held events,
dead letters as expected.

=back

It returns the figures (committed, rolled back, delivered, duplicates, time
to recover, latency) for docs/reliability.md.

=cut

package FaultStream;

use strict;
use warnings;

use Carp;
use File::Basename;
use JSON::PP;
use MockKafka ();
use OutboxKafkaTest ();
use POSIX qw(WNOHANG);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our $CONSUMER_BIN = $ENV{FS_CONSUME} // MockKafka::helper_path('fs_consume');

my $instances = 0;

=pod

=head1 METHODS

=over

=item FaultStream->new(node => $node, mock => $mock, topics => [...], %options)

Options: db (postgres), sessions (4), keys (keys per session, 6),
max_events (most events per transaction, 3), rollback_pct (20), pace_ms
(pause between a session's transactions, 20), pad (bytes of filler per
payload, 0).  Creates the stream's tables and procedure in the database.

=cut

sub new
{
	my ($class, %o) = @_;
	croak "node, mock and topics are required"
	  unless $o{node} && $o{mock} && $o{topics};
	croak "fs_consume not found at $CONSUMER_BIN (run make -C test/mock_kafka)"
	  unless -x $CONSUMER_BIN;
	$instances++;
	my $self = bless {
		node => $o{node},
		mock => $o{mock},
		db => $o{db} // 'postgres',
		topics => $o{topics},
		sessions => $o{sessions} // 4,
		keys => $o{keys} // 6,
		max_events => $o{max_events} // 3,
		rollback_pct => $o{rollback_pct} // 20,
		pace_ms => $o{pace_ms} // 20,
		pad => $o{pad} // 0,
		name => basename($0, '.pl') . "_fs$instances",
		pids => {},
		spawned_at => {},
		restarts => 0,
		running => 0,
		msgs => [],
		consumer_off => 0,
		consumer_partial => '',
		killed_pids => [],
	}, $class;
	$self->_setup;
	return $self;
}

sub _setup
{
	my ($self) = @_;
	$self->{node}->safe_psql(
		$self->{db}, q{
CREATE TABLE IF NOT EXISTS fs_log (
    k text NOT NULL, q int NOT NULL, id bigint NOT NULL, topic text NOT NULL,
    s int NOT NULL, t timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (k, q));
CREATE TABLE IF NOT EXISTS fs_control (stop boolean NOT NULL);
CREATE SEQUENCE IF NOT EXISTS fs_rolled_back;
CREATE OR REPLACE PROCEDURE fs_stream(sess int, nkeys int, topics text[],
    max_ev int, rb_pct int, pace_ms int, pad int)
LANGUAGE plpgsql AS $$
DECLARE
    seqs int[] := array_fill(0, ARRAY[nkeys]);
    kidx int; n int; key text; tp text; rb boolean; eid bigint;
    filler text := repeat('x', pad);
BEGIN
    FOR kidx IN 1..nkeys LOOP
        SELECT coalesce(max(l.q), 0) INTO n FROM fs_log l
         WHERE l.k = format('s%s-k%s', sess, kidx);
        seqs[kidx] := n;
    END LOOP;
    COMMIT;
    LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM fs_control WHERE stop);
        rb := random() * 100 < rb_pct;
        FOR i IN 1 .. 1 + floor(random() * max_ev)::int LOOP
            kidx := 1 + floor(random() * nkeys)::int;
            key := format('s%s-k%s', sess, kidx);
            tp := topics[1 + (sess * nkeys + kidx) % array_length(topics, 1)];
            IF rb THEN
                PERFORM outbox.enqueue(tp, jsonb_build_object('k', key, 'q', -1,
                    'rb', 1, 't', 0), key => key);
            ELSE
                seqs[kidx] := seqs[kidx] + 1;
                eid := outbox.enqueue(tp, jsonb_build_object('k', key,
                    'q', seqs[kidx],
                    't', floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
                    'pad', filler), key => key);
                INSERT INTO fs_log (k, q, id, topic, s)
                VALUES (key, seqs[kidx], eid, tp, sess);
            END IF;
        END LOOP;
        IF rb THEN
            PERFORM nextval('fs_rolled_back');
            ROLLBACK;
        ELSE
            COMMIT;
        END IF;
        IF pace_ms > 0 THEN
            PERFORM pg_sleep(pace_ms / 1000.0);
        END IF;
    END LOOP;
END
$$;
DELETE FROM fs_control;
INSERT INTO fs_control VALUES (false);
});
	return;
}

=pod

=item $fs->start

Start the consumer (once) and the sessions; remembers the server log
position for the crash check.

=cut

sub start
{
	my ($self) = @_;
	my $node = $self->{node};
	$self->{log_start} //= -s $node->logfile;
	$self->{started_at} //= time();
	$node->safe_psql($self->{db}, 'UPDATE fs_control SET stop = false');
	$self->_start_consumer unless $self->{consumer_pid};
	$self->{running} = 1;
	$self->_spawn($_) for 1 .. $self->{sessions};
	return;
}

sub _start_consumer
{
	my ($self) = @_;
	my $file = "$PostgreSQL::Test::Utils::tmp_check/$self->{name}_consumer.out";
	unlink $file;
	$self->{consumer_file} = $file;
	pipe(my $r, my $w) or die "pipe: $!";
	my @cmd = ($CONSUMER_BIN, '-b', $self->{mock}->bootstrap,
		map { ('-t', $_) } @{ $self->{topics} });
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		close $w;
		open STDIN, '<&', $r or POSIX::_exit(126);
		open STDOUT, '>', $file or POSIX::_exit(126);
		open STDERR, '>>', "$file.err" or POSIX::_exit(126);
		exec @cmd or POSIX::_exit(127);
	}
	close $r;
	$self->{consumer_pid} = $pid;
	$self->{consumer_stdin} = $w;
	my $ready = 0;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	until ($ready || time() > $deadline)
	{
		usleep(20_000);
		$ready = -s $file && PostgreSQL::Test::Utils::slurp_file($file) =~ /^READY/m;
	}
	croak "fs_consume did not start (see $file.err)" unless $ready;
	$self->{consumer_off} = 0;
	return;
}

sub _spawn
{
	my ($self, $s) = @_;
	my $node = $self->{node};
	my $topics = '{' . join(',', map { qq{"$_"} } @{ $self->{topics} }) . '}';
	my $log = "$PostgreSQL::Test::Utils::tmp_check/$self->{name}_session$s.log";
	my @cmd = (
		$node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-d', $node->connstr($self->{db}), '-c',
		"CALL fs_stream($s, $self->{keys}, '$topics', $self->{max_events},"
		  . " $self->{rollback_pct}, $self->{pace_ms}, $self->{pad})");
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open STDIN, '<', '/dev/null' or POSIX::_exit(126);
		open STDOUT, '>>', $log or POSIX::_exit(126);
		open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
		exec @cmd or POSIX::_exit(127);
	}
	$self->{pids}{$s} = $pid;
	$self->{spawned_at}{$s} = time();
	return;
}

=pod

=item $fs->tick

Reap sessions that ended; while the stream runs, start them again (a
session ends when its server crashed or restarted).  Read what the consumer
received.

=cut

sub tick
{
	my ($self) = @_;
	foreach my $s (sort keys %{ $self->{pids} })
	{
		my $pid = $self->{pids}{$s};
		next unless $pid;
		my $r = waitpid($pid, WNOHANG);
		next unless $r == $pid;
		delete $self->{pids}{$s};
	}
	if ($self->{running})
	{
		foreach my $s (1 .. $self->{sessions})
		{
			next if $self->{pids}{$s};
			# a server that is down refuses at once: try again every 200 ms
			next if time() - ($self->{spawned_at}{$s} // 0) < 0.2;
			$self->{restarts}++;
			$self->_spawn($s);
		}
	}
	$self->_read_consumer;
	$self->_sample_held;
	return;
}

# Every 500 ms, note which topics outbox.held_topics lists (when the view
# exists): held_seen() tells whether a topic was ever held.
sub _sample_held
{
	my ($self) = @_;
	return if time() - ($self->{held_sampled_at} // 0) < 0.5;
	$self->{held_sampled_at} = time();
	# the server may be down on purpose (a fault): psql then exits before
	# reading its query, and IPC::Run dies writing it; a missed sample is fine
	my ($ret, $out) = eval {
		$self->{node}->psql($self->{db},
			"SELECT string_agg(topic, ' ') FROM outbox.held_topics");
	};
	return unless defined $ret && $ret == 0;
	$self->{held_seen}{$_}++ for split / /, $out;
	return;
}

=pod

=item $fs->held_seen

Hash: topic => how many samples found it in outbox.held_topics.

=cut

sub held_seen
{
	my ($self) = @_;
	return $self->{held_seen} // {};
}

=pod

=item $fs->wait_for($code, $timeout)

Poll $code (every 20 ms, calling tick) until it returns true or $timeout
seconds (default timeout_default) pass.  Returns the last value.

=cut

sub wait_for
{
	my ($self, $code, $timeout) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time() + $timeout;
	while (1)
	{
		$self->tick;
		my $r = eval { $code->() };
		return $r if $r;
		return $r if time() > $deadline;
		usleep(20_000);
	}
}

=pod

=item $fs->committed_count

Events committed so far (0 while the server is down).

=cut

sub committed_count
{
	my ($self) = @_;
	# as in _sample_held: psql against a server that is down may die
	my ($ret, $out) =
	  eval { $self->{node}->psql($self->{db}, 'SELECT count(*) FROM fs_log') };
	return defined $ret && $ret == 0 ? $out + 0 : 0;
}

=pod

=item $fs->delivered_count

Distinct outbox-ids the consumer has received so far.

=cut

sub delivered_count
{
	my ($self) = @_;
	$self->_read_consumer;
	my %ids = map { $_->{id} => 1 } @{ $self->{msgs} };
	return scalar keys %ids;
}

=pod

=item $fs->grow($n, $timeout)

Wait until $n more events have been committed and the consumer has
received $n more distinct events than now (the stream flows).  Returns
true if it did.

=cut

sub grow
{
	my ($self, $n, $timeout) = @_;
	my $c0 = $self->committed_count;
	my $d0 = $self->delivered_count;
	return $self->wait_for(
		sub {
			$self->committed_count >= $c0 + $n
			  && $self->delivered_count >= $d0 + $n;
		},
		$timeout);
}

=pod

=item $fs->note_killed($pid)

Tell the crash check that $pid was killed on purpose by the test.

=cut

sub note_killed
{
	my ($self, $pid) = @_;
	push @{ $self->{killed_pids} }, $pid;
	return;
}

=pod

=item $fs->fault_over

The fault has ended now: verify() reports how long it took until every
event committed before this moment had reached the consumer.

=cut

sub fault_over
{
	my ($self) = @_;
	$self->{fault_over_at} = time();
	return;
}

=pod

=item $fs->stop

Ask the sessions to stop after their current transaction and wait for them.

=cut

sub stop
{
	my ($self) = @_;
	$self->{running} = 0;
	$self->{node}->safe_psql($self->{db}, 'UPDATE fs_control SET stop = true');
	my $ok = $self->wait_for(sub { !%{ $self->{pids} } }, 30);
	unless ($ok)
	{
		kill 'TERM', $_ for values %{ $self->{pids} };
		$self->wait_for(sub { !%{ $self->{pids} } }, 10);
	}
	return;
}

sub _read_consumer
{
	my ($self) = @_;
	my $file = $self->{consumer_file};
	return unless $file && -e $file;
	open my $fh, '<', $file or return;
	seek $fh, $self->{consumer_off}, 0;
	local $/;
	my $data = <$fh> // '';
	$self->{consumer_off} += length $data;
	close $fh;
	$data = $self->{consumer_partial} . $data;
	my $nl = rindex($data, "\n");
	$self->{consumer_partial} = substr($data, $nl + 1);
	return if $nl < 0;
	foreach my $line (split /\n/, substr($data, 0, $nl))
	{
		next unless $line =~ /^M /;
		my (undef, $recv, $topic, $part, $off, $id, $key, $payload) =
		  split / /, $line, 8;
		my $m = {
			recv => $recv / 1e6,
			topic => $topic,
			partition => $part,
			offset => $off,
			id => $id,
			key => $key,
			payload => $payload,
		};
		my $p = eval { decode_json($payload) };
		if ($p)
		{
			$m->{k} = $p->{k};
			$m->{q} = $p->{q};
			$m->{t} = $p->{t} / 1e6 if $p->{t};
			$m->{rb} = $p->{rb};
		}
		push @{ $self->{msgs} }, $m;
	}
	return;
}

sub _committed
{
	my ($self) = @_;
	my $out = $self->{node}->safe_psql($self->{db},
		'SELECT k, q, id, topic, extract(epoch FROM t) FROM fs_log ORDER BY k, q');
	my %c;
	foreach my $line (split /\n/, $out)
	{
		my ($k, $q, $id, $topic, $t) = split /\|/, $line;
		$c{"$k/$q"} = { k => $k, q => $q, id => $id, topic => $topic, t => $t };
	}
	return \%c;
}

# dead letters of the stream's events: "k/q" => row id
sub _dead_letters
{
	my ($self) = @_;
	my $out = $self->{node}->safe_psql($self->{db},
		q(SELECT id, p ->> 'k', p ->> 'q'
		    FROM (SELECT id, convert_from(payload, 'UTF8')::jsonb AS p
		            FROM outbox.dead_letters
		           WHERE payload_kind = 'j'
		             AND left(convert_from(payload, 'UTF8'), 1) = '{') d));
	my %d;
	foreach my $line (split /\n/, $out)
	{
		my ($id, $k, $q) = split /\|/, $line;
		next unless defined $q;
		$d{"$k/$q"} = $id;
	}
	return \%d;
}

=pod

=item $fs->verify(%options)

Wait until every committed event has reached the consumer (or, with
dead_letters => 1, sits in outbox.dead_letters) and run the checks above.
Options: max_duplicates (default 0), timeout (seconds to wait for delivery,
default 60), dead_letters (1: dead-lettered events count as accounted for;
their keys may then have gaps), requeued (1: events published again under
a new outbox-id by requeue_dead_letters are expected and leave the order
check), status (0 skips the outbox.status check), superseded_ok (1: a copy
the mock cluster wrote out of order and the relay produced again in order
leaves the order check; see OutboxKafkaTest::check_delivery).  Returns a
hash of figures.

=cut

sub verify
{
	my ($self, %o) = @_;
	my $node = $self->{node};
	my $max_dups = $o{max_duplicates} // 0;
	my $timeout = $o{timeout} // 60;
	my $name = $o{name} // 'stream';
	croak "stop the stream before verify" if $self->{running};

	my $c = $self->_committed;
	my $dl = {};
	my %first;
	my $all_in = sub {
		%first = ();
		foreach my $m (@{ $self->{msgs} })
		{
			next unless defined $m->{k} && defined $m->{q};
			$first{"$m->{k}/$m->{q}"} //= $m;
		}
		$dl = $self->_dead_letters if $o{dead_letters};
		foreach my $kq (keys %$c)
		{
			return 0 unless $first{$kq} || $dl->{$kq};
		}
		return 1;
	};
	my $t0 = time();
	my $complete = $self->wait_for($all_in, $timeout);
	my $waited = time() - $t0;
	# settle: nothing more in flight
	$self->wait_for(sub { 0 }, 0.5);
	$all_in->();

	my %fig = (
		committed => scalar(keys %$c),
		rolled_back_tx => $node->safe_psql($self->{db},
			'SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM fs_rolled_back'),
		session_restarts => $self->{restarts},
		wait_after_stop => sprintf('%.1f', $waited),
	);

	# 1. every committed event delivered with its payload, key and topic
	my %ids = map { $c->{$_}{id} => $_ } keys %$c;
	my @missing = grep { !$first{$_} && !$dl->{$_} } sort keys %$c;
	ok($complete && !@missing,
		"$name: every committed event delivered"
		  . ($o{dead_letters} ? ' or dead-lettered' : '')
		  . " ($fig{committed} committed)")
	  or diag "missing: " . scalar(@missing) . " e.g. @missing[0 .. ($#missing < 9 ? $#missing : 9)]";

	my ($mismatch, $unknown, $rolled, $requeued) = (0, 0, 0, 0);
	my %requeued_kq;
	foreach my $m (@{ $self->{msgs} })
	{
		if ($m->{rb})
		{
			$rolled++;
			next;
		}
		my $kq = defined $m->{k} ? "$m->{k}/$m->{q}" : '';
		my $ev = $c->{$kq};
		if (!$ev)
		{
			$unknown++;
			next;
		}
		if ($m->{id} ne $ev->{id})
		{
			# published again under a new id (requeued dead letter)
			if ($o{requeued})
			{
				$requeued++;
				$m->{requeued} = 1;
				$requeued_kq{$kq} = 1;
			}
			else
			{
				$mismatch++;
			}
			next;
		}
		$mismatch++ unless $m->{key} eq $ev->{k} && $m->{topic} eq $ev->{topic};
	}
	is($rolled, 0, "$name: no rolled-back event delivered ($fig{rolled_back_tx} transactions rolled back)");
	is($unknown, 0, "$name: no message for an event that was not committed");
	is($mismatch, 0, "$name: each message carries the outbox-id, key and topic of its event");

	# 2. order per key in the partition log, 3. duplicates: the shared checker
	my $d = OutboxKafkaTest::check_delivery(
		$self->{msgs},
		id => sub { $_[0]{id} },
		order_key => sub {
			my ($m) = @_;
			return undef if $m->{rb} || !defined $m->{k} || $m->{requeued};
			return $m->{k};
		},
		seq => sub { $_[0]{q} },
		gapless => 1,
		# a gap is allowed only for dead-lettered (or requeued) events
		gap_ok => sub { $dl->{"$_[0]/$_[1]"} || $requeued_kq{"$_[0]/$_[1]"} },
		superseded_ok => $o{superseded_ok});
	is($d->{order_violations}, 0,
		"$name: per key, first deliveries follow commit order without gaps")
	  or diag join("\n", @{ $d->{order_diag} });

	$fig{messages} = $d->{messages};
	$fig{delivered} = $d->{delivered};
	$fig{duplicates} = $d->{duplicates};
	$fig{superseded} = $d->{superseded} if $o{superseded_ok};
	$fig{dead_lettered} = scalar grep { !$first{$_} } keys %$dl if $o{dead_letters};
	$fig{requeued} = $requeued if $o{requeued};
	cmp_ok($fig{duplicates}, '<=', $max_dups,
		"$name: $fig{duplicates} duplicate deliveries (bound $max_dups)");

	# 4. no crash in the server log
	$self->check_log($name);

	# 5. outbox.status accounts for everything
	unless (defined $o{status} && !$o{status})
	{
		my $st = OutboxKafkaTest::outbox_status($node, $self->{db});
		my @bad;
		push @bad, "pending_events $st->{pending_events}" if $st->{pending_events};
		push @bad, "held_events $st->{held_events}"
		  if exists $st->{held_events} && $st->{held_events};
		my $ndl = $node->safe_psql($self->{db}, 'SELECT count(*) FROM outbox.dead_letters');
		push @bad, "$ndl dead letters" if !$o{dead_letters} && $ndl > 0;
		ok(!@bad, "$name: outbox.status shows nothing pending, held or dead-lettered"
			  . ($o{dead_letters} ? ' beyond the dead letters' : ''))
		  or diag join(', ', @bad), "\n", explain $st;
		$fig{state} = $st->{state};
	}

	# 6. figures: time to recover, latency
	if (my $fo = $self->{fault_over_at})
	{
		my $last = $fo;
		foreach my $kq (keys %$c)
		{
			next unless $c->{$kq}{t} < $fo && $first{$kq};
			$last = $first{$kq}{recv} if $first{$kq}{recv} > $last;
		}
		$fig{recovery_s} = sprintf('%.2f', $last - $fo);
	}
	my @lat = $self->latencies;
	$fig{topics_seen_held} = join(',', sort keys %{ $self->held_seen }) || 'none';
	$fig{latency_p50_ms} = sprintf('%.1f', 1000 * percentile(0.50, @lat));
	$fig{latency_p99_ms} = sprintf('%.1f', 1000 * percentile(0.99, @lat));
	$fig{latency_max_ms} = sprintf('%.1f', 1000 * percentile(1, @lat));
	return \%fig;
}

=pod

=item $fs->check_log($name)

Assert that the server log since start() shows no crash.

=cut

sub check_log
{
	my ($self, $name) = @_;
	my $log = PostgreSQL::Test::Utils::slurp_file($self->{node}->logfile);
	$log = substr($log, $self->{log_start} // 0);
	my %killed = map { $_ => 1 } @{ $self->{killed_pids} };
	my @crash;
	foreach my $line (split /\n/, $log)
	{
		if ($line =~ /\(PID (\d+)\) was terminated by signal/)
		{
			push @crash, $line unless $killed{$1};
		}
		elsif ($line =~
			/terminated by signal|\bPANIC:|\bTRAP: |server process .* was terminated|[Ss]egmentation fault/)
		{
			push @crash, $line;
		}
	}
	is(scalar(@crash), 0, "$name: no crash in the server log")
	  or diag join("\n", @crash[0 .. ($#crash < 4 ? $#crash : 4)]);
	return;
}

=pod

=item $fs->latencies(topic => $t, from => $epoch, to => $epoch)

Commit-to-consumer latencies (seconds) of the first delivery of each event
enqueued in [from, to) (default: all), optionally of one topic.

=cut

sub latencies
{
	my ($self, %o) = @_;
	$self->_read_consumer;
	my (%seen, @lat);
	foreach my $m (@{ $self->{msgs} })
	{
		next if $m->{rb} || !$m->{t} || $seen{ $m->{id} }++;
		next if defined $o{topic} && $m->{topic} ne $o{topic};
		next if defined $o{from} && $m->{t} < $o{from};
		next if defined $o{to} && $m->{t} >= $o{to};
		push @lat, $m->{recv} - $m->{t};
	}
	return @lat;
}

=pod

=item $fs->commit_latencies(topic => $t, from => $epoch, to => $epoch)

Like latencies(), but over every event committed in [from, to) (fs_log),
delivered or not: an event not delivered yet counts with the time it has
waited so far, so a stream that stopped flowing cannot look fast.

=cut

sub commit_latencies
{
	my ($self, %o) = @_;
	$self->_read_consumer;
	my $now = time();
	my %first;
	foreach my $m (@{ $self->{msgs} })
	{
		next if $m->{rb} || !defined $m->{k};
		$first{"$m->{k}/$m->{q}"} //= $m->{recv};
	}
	my $c = $self->_committed;
	my @lat;
	foreach my $kq (keys %$c)
	{
		my $ev = $c->{$kq};
		next if defined $o{topic} && $ev->{topic} ne $o{topic};
		next if defined $o{from} && $ev->{t} < $o{from};
		next if defined $o{to} && $ev->{t} >= $o{to};
		push @lat, ($first{$kq} // $now) - $ev->{t};
	}
	return @lat;
}

=pod

=item percentile($p, @values)

The $p quantile (0..1, nearest rank) of @values; 0 for none.

=item figures($hashref)

The figures as one "name=value ..." line for note().

=back

=cut

sub percentile
{
	my ($p, @v) = @_;
	return 0 unless @v;
	@v = sort { $a <=> $b } @v;
	my $i = int($p * @v + 0.999999) - 1;
	$i = 0 if $i < 0;
	$i = $#v if $i > $#v;
	return $v[$i];
}

sub figures
{
	my ($f) = @_;
	return join(' ', map { "$_=$f->{$_}" } sort keys %$f);
}

=pod

=head2 $fs->shutdown

Stop the consumer and any session left (also done on destruction).

=cut

sub shutdown
{
	my ($self) = @_;
	$self->{running} = 0;
	foreach my $pid (values %{ $self->{pids} })
	{
		kill 'TERM', $pid;
		waitpid($pid, 0);
	}
	$self->{pids} = {};
	if (my $pid = delete $self->{consumer_pid})
	{
		close $self->{consumer_stdin} if $self->{consumer_stdin};
		kill 'TERM', $pid;
		waitpid($pid, 0);
	}
	return;
}

sub DESTROY
{
	my ($self) = @_;
	local ($@, $?, $!);
	$self->shutdown;
}

1;
