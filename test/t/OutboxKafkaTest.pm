
# Copyright (c) 2026, outbox_kafka developers

=pod

=head1 NAME

OutboxKafkaTest - shared helpers of the outbox_kafka TAP tests

=head1 SYNOPSIS

  use FindBin;
  use lib $FindBin::Bin;
  use OutboxKafkaTest;

  my $mock = start_mock(brokers => 1, topics => ['t.alpha:3']);
  my $node = new_node('main', bootstrap => $mock->bootstrap);
  $node->safe_psql('postgres', "SELECT outbox.enqueue('t.alpha', '{}'::jsonb)");
  ok(wait_until_published($node, 'postgres', 1), 'published');
  my @msgs = consume_all($mock->bootstrap, 't.alpha');

=head1 DESCRIPTION

Starts PostgreSQL nodes with outbox_kafka preloaded, reads topics back with
kcat, checks deliveries for completeness, order and duplicates, and computes Kafka's murmur2 partitioning so tests can check that a key
lands on the partition a Java client would choose.

start_mock (the mock broker, test/t/MockKafka.pm) is re-exported, so a test
needs only this module.

Every wait is bounded by $PostgreSQL::Test::Utils::timeout_default.

=cut

package OutboxKafkaTest;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use File::Basename;
use File::Spec;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MockKafka qw(start_mock);
use Time::HiRes qw(usleep time);

our @EXPORT = qw(
  start_mock new_node consume_all consume_topics wait_until_published
  outbox_status murmur2 partition_for run_sql_files_concurrently
  by_outbox_id header_value poll_until check_delivery consume_until_delivered
  query_or_empty inbox_worker_pid $INBOX_EFFECT_HANDLER
);

our $KCAT = $ENV{KCAT} // 'kcat';

=pod

=head1 FUNCTIONS

=over

=item new_node($name, bootstrap => ..., databases => 'postgres', poll_interval => '1s', extra_conf => '...', create_extension_in => [...], init => {...}, start => 1)

A PostgreSQL::Test::Cluster with outbox_kafka preloaded and configured
(init => is passed to $node->init, e.g. { allows_streaming => 1 }).
Databases in create_extension_in (default: those in databases) are created
when missing and get CREATE EXTENSION outbox_kafka.  log_statement is off so
that the server log shows the relay's own messages (and no settings values
from ALTER SYSTEM statements); extra_conf can turn it back on.

=cut

sub new_node
{
	my ($name, %opts) = @_;
	my $dbs = $opts{databases} // 'postgres';
	my $bootstrap = $opts{bootstrap} // '';
	my $poll = $opts{poll_interval} // '1s';
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init(%{ $opts{init} // {} });
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'outbox_kafka'
outbox_kafka.databases = '$dbs'
outbox_kafka.bootstrap_servers = '$bootstrap'
outbox_kafka.poll_interval = '$poll'
max_worker_processes = 16
log_min_messages = info
log_statement = none
} . ($opts{extra_conf} // ''));

	return $node if defined $opts{start} && !$opts{start};
	$node->start;

	my @ext = @{ $opts{create_extension_in} // [ split /\s*,\s*/, $dbs ] };
	foreach my $db (@ext)
	{
		my $exists = $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_database WHERE datname = '$db'");
		$node->safe_psql('postgres', qq{CREATE DATABASE "$db"})
		  unless $exists;
		$node->safe_psql($db, 'CREATE EXTENSION outbox_kafka');
	}
	return $node;
}

=pod

=item consume_all($bootstrap, $topic [, $partition])

Read a whole topic (or only one partition of it) with kcat and return its
messages, each a hash
{topic, partition, offset, key, payload, headers => [[name, value], ...]}.
Keys, payloads and header values are byte strings (undef for null).
Within a partition the list is in offset order.

=cut

sub consume_all
{
	my ($bootstrap, $topic, $partition) = @_;
	my ($out, $err) = ('', '');
	my @cmd = (
		$KCAT, '-C', '-b', $bootstrap, '-t', $topic, '-o', 'beginning',
		'-e', '-q', '-J',
		'-X', 'fetch.wait.max.ms=5',
		'-X', 'topic.metadata.refresh.interval.ms=1000');
	push @cmd, '-p', $partition if defined $partition;

	my $ok = IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	croak "kcat failed reading $topic: $err" unless $ok;

	# kcat writes the raw bytes of keys, payloads and header values inside
	# JSON strings; decoding without ->utf8 keeps them as byte strings.
	my $json = JSON::PP->new->allow_nonref;
	my @msgs;
	foreach my $line (split /\n/, $out)
	{
		next if $line eq '';
		my $m = $json->decode($line);
		my @h = @{ $m->{headers} // [] };
		my @pairs;
		push @pairs, [ splice(@h, 0, 2) ] while @h;
		push @msgs,
		  {
			topic => $m->{topic},
			partition => $m->{partition},
			offset => $m->{offset},
			key => $m->{key},
			payload => $m->{payload},
			headers => \@pairs,
		  };
	}
	@msgs = sort {
		$a->{partition} <=> $b->{partition} or $a->{offset} <=> $b->{offset}
	} @msgs;
	return @msgs;
}

=pod

=item consume_topics($bootstrap, @topics)

consume_all for several topics, concatenated.

=cut

sub consume_topics
{
	my ($bootstrap, @topics) = @_;
	return map { consume_all($bootstrap, $_) } @topics;
}

=pod

=item header_value($msg, $name)

The value of the first header called $name, or undef.

=cut

sub header_value
{
	my ($msg, $name) = @_;
	foreach my $h (@{ $msg->{headers} })
	{
		return $h->[1] if $h->[0] eq $name;
	}
	return undef;
}

=pod

=item by_outbox_id(@msgs)

Hash: outbox-id header value => list of the messages carrying it.

=cut

sub by_outbox_id
{
	my %by;
	foreach my $m (@_)
	{
		my $id = header_value($m, 'outbox-id');
		push @{ $by{ $id // 'none' } }, $m;
	}
	return \%by;
}

=pod

=item check_delivery(\@msgs, %options)

What a consumer of the outbox checks, counted by the outbox-id of each
message: was every event delivered, how many duplicates, and per key did the
first delivery of each event come in commit order.  The one checker of the
mock and the real-broker tests and of FaultStream.  It asserts nothing and
returns a hash of figures:

  messages          messages in @msgs
  delivered         distinct outbox-ids
  duplicates        messages beyond the first of each outbox-id (only of the
                    expected ids when expected is given)
  missing           expected ids without a message
  unknown           outbox-ids that are not expected (messages of events
                    that did not commit, or of other phases)
  order_keys        keys whose order was checked
  order_violations  first deliveries that came after a later event of their
                    key (or, with gapless, skipped one)
  order_diag        up to 5 descriptions of violations

Messages are taken in log order: by topic, partition, then offset when
they have offsets (consume_all's shape).  A re-delivery of an outbox-id
already seen is not an order violation (at-least-once after a fault).

Options:

  expected => [ids]   the outbox-ids that must be there
  id => sub           a message's outbox-id (default: the outbox-id header)
  order_key => sub    a message's key for the order check, undef to leave
                      it out (default: topic, partition and Kafka key; keyless
                      messages are left out)
  seq => sub          the commit-order position of a message within its key
                      (default: its outbox-id)
  gapless => 1        seq numbers of a key must run 1, 2, 3, ... without a gap
  gap_ok => sub       ($key, $seq) -> true if that missing seq is accounted
                      for (dead-lettered, say); only with gapless
  superseded_ok => 1  leave out of the order check a copy of an event that
                      the same partition holds again later, with an earlier
                      event of its key between the two copies: a write the
                      producer was never told of, produced again in order.
                      Only librdkafka's mock cluster makes such a copy (it
                      does not check an idempotent producer's sequence
                      numbers, so it writes a request that Apache Kafka
                      refuses as out of order); counted in "superseded".

=cut

sub check_delivery
{
	my ($msgs, %o) = @_;
	my $id_of = $o{id} // sub { header_value($_[0], 'outbox-id') // 'none' };
	my $key_of = $o{order_key} // sub {
		my ($m) = @_;
		return undef unless defined $m->{key};
		return "$m->{topic}/$m->{partition}/$m->{key}";
	};
	my $seq_of = $o{seq} // $id_of;
	my @log = @$msgs;
	@log = sort {
		     ($a->{topic} // '') cmp ($b->{topic} // '')
		  or $a->{partition} <=> $b->{partition}
		  or $a->{offset} <=> $b->{offset}
	} @log unless grep { !defined $_->{offset} } @log;

	my %n;
	$n{ $id_of->($_) }++ foreach @log;
	my %f = (messages => scalar(@log), delivered => scalar(keys %n));
	if ($o{expected})
	{
		my %want = map { $_ => 1 } @{ $o{expected} };
		$f{missing} = scalar grep { !$n{$_} } keys %want;
		$f{unknown} = scalar grep { !$want{$_} } keys %n;
		$f{duplicates} = 0;
		$f{duplicates} += $n{$_} - 1 foreach grep { $n{$_} } keys %want;
	}
	else
	{
		$f{duplicates} = $f{messages} - $f{delivered};
	}

	# with superseded_ok: the log positions of copies superseded in order
	my %superseded;
	if ($o{superseded_ok})
	{
		my %at;
		push @{ $at{ $id_of->( $log[$_] ) } }, $_ foreach 0 .. $#log;
		foreach my $copies (grep { @$_ > 1 } values %at)
		{
			my ($i, $j) = @$copies[ 0, -1 ];
			my $k = $key_of->( $log[$i] );
			next unless defined $k;
			my $q = $seq_of->( $log[$i] );
			$superseded{$i} = 1
			  if grep {
				my $km = $key_of->( $log[$_] );
				defined $km && $km eq $k && $seq_of->( $log[$_] ) < $q
			  } $i + 1 .. $j - 1;
		}
	}
	$f{superseded} = scalar keys %superseded;

	my (%seen, %last);
	my @diag;
	$f{order_violations} = 0;
	foreach my $i (0 .. $#log)
	{
		my $m = $log[$i];
		my $k = $key_of->($m);
		next unless defined $k;
		next if $superseded{$i};
		next if $seen{ $id_of->($m) }++;
		my $q = $seq_of->($m);
		my $prev = $last{$k} // ($o{gapless} ? 0 : undef);
		my $ok = !defined $prev || $q > $prev;
		if ($ok && $o{gapless})
		{
			foreach my $gap ($prev + 1 .. $q - 1)
			{
				$ok = 0 unless $o{gap_ok} && $o{gap_ok}->($k, $gap);
			}
		}
		unless ($ok)
		{
			$f{order_violations}++;
			push @diag,
			  "key $k: $q at "
			  . join('/', map { $_ // '?' } @$m{qw(topic partition)}) . '@'
			  . ($m->{offset} // '?') . ' after ' . ($prev // 'nothing')
			  if @diag < 5;
		}
		$last{$k} = $q if !defined $prev || $q > $prev;
	}
	$f{order_keys} = scalar keys %last;
	$f{order_diag} = \@diag;
	return \%f;
}

=pod

=item outbox_status($node, $dbname)

The row of outbox.status as a hash (NULL columns are undef).

=cut

sub outbox_status
{
	my ($node, $dbname) = @_;
	my $row = $node->safe_psql($dbname,
		'SELECT row_to_json(s) FROM outbox.status s');
	return JSON::PP->new->decode($row);
}

=pod

=item wait_until_published($node, $dbname, $n)

Wait until outbox.status shows nothing pending and at least $n events
published by the current worker.  Returns true on success.

=cut

sub wait_until_published
{
	my ($node, $dbname, $n) = @_;
	$n //= 1;
	return $node->poll_query_until($dbname,
		"SELECT pending_events = 0 AND events_published >= $n FROM outbox.status"
	);
}

=pod

=item poll_until($code, $timeout)

Call $code every 50 ms until it returns true or $timeout seconds (default
timeout_default) pass.  Returns the last value.

=cut

sub poll_until
{
	my ($code, $timeout) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time() + $timeout;
	while (1)
	{
		my $r = $code->();
		return $r if $r;
		return $r if time() > $deadline;
		usleep(5_000);
	}
}

=pod

=item consume_until_delivered($bootstrap, $topic, \@expected [, $timeout])

Read $topic from the beginning (consume_all) until every outbox-id of
@expected is there, or $timeout seconds (default 30) pass.  Returns the
check_delivery figures of the last read and its messages.

=cut

sub consume_until_delivered
{
	my ($bootstrap, $topic, $expected, $timeout) = @_;
	my ($r, @msgs);
	poll_until(
		sub {
			@msgs = consume_all($bootstrap, $topic);
			$r = check_delivery(\@msgs, expected => $expected);
			return $r->{missing} == 0;
		},
		$timeout // 30);
	return ($r, @msgs);
}

=pod

=item $INBOX_EFFECT_HANDLER

SQL creating a table effect (n, key, seq) and an inbox handler
apply(outbox.inbox_message) that inserts the message's key and the "seq"
of its JSON value there, taking a millisecond per message (so that faults
meet a stream in progress).

=cut

our $INBOX_EFFECT_HANDLER = q{
CREATE TABLE effect (n bigserial PRIMARY KEY, key text, seq int);
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO effect (key, seq)
    VALUES (convert_from(m.key, 'UTF8'), (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int);
    PERFORM pg_sleep(0.001);
END
$$;
};

=pod

=item query_or_empty($node, $dbname, $sql)

The output of $sql, or '' when it fails (the server is restarting after a
crash, say): for polls that must survive a restart.

=cut

sub query_or_empty
{
	my ($node, $db, $sql) = @_;
	my ($ret, $out) = $node->psql($db, $sql);
	return $ret == 0 ? $out : '';
}

=pod

=item inbox_worker_pid($node, $dbname)

The pid of the inbox worker of $dbname, '' if none runs (or the server
does not answer).

=cut

sub inbox_worker_pid
{
	my ($node, $db) = @_;
	return query_or_empty($node, $db,
		qq{SELECT pid FROM pg_stat_activity WHERE backend_type = 'outbox_kafka inbox' AND datname = '$db'});
}

=pod

=item run_sql_files_concurrently($node, $dbname, @files)

Run each SQL file in its own psql (ON_ERROR_STOP), all at the same time,
and wait for all of them.  Dies if one fails.  Returns the stdout of each.

=cut

sub run_sql_files_concurrently
{
	my ($node, $dbname, @files) = @_;
	my @runs;
	my $timer = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);

	foreach my $f (@files)
	{
		my $r = { out => '', err => '', file => $f };
		$r->{h} = IPC::Run::start(
			[
				$node->installed_command('psql'),
				'-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
				'-d', $node->connstr($dbname), '-f', $f
			],
			'<', \undef, '>', \$r->{out}, '2>', \$r->{err}, $timer);
		push @runs, $r;
	}
	my @failed;
	foreach my $r (@runs)
	{
		my $ok = eval { $r->{h}->finish };
		push @failed, "$r->{file}: " . ($@ || $r->{err}) unless $ok;
	}
	croak "psql failed:\n" . join("\n", @failed) if @failed;
	return map { $_->{out} } @runs;
}

=pod

=item murmur2($bytes)

Kafka's (Java client's) murmur2 hash of a byte string, as a signed 32-bit
integer: seed 0x9747b28c, m 0x5bd1e995, r 24.

=item partition_for($key, $partitions)

The partition the Java client's default partitioner (and librdkafka's
murmur2 / murmur2_random partitioners) choose for a non-null key.

=back

=cut

sub murmur2
{
	my ($data) = @_;

	# Perl integers are 64-bit: a product of two 32-bit values stays exact,
	# and every step is masked back to 32 bits like Java's int arithmetic.

	my $M32 = 0xffffffff;
	my $m = 0x5bd1e995;
	my $len = length($data);
	my @b = unpack('C*', $data);
	my $h = (0x9747b28c ^ $len) & $M32;
	my $len4 = int($len / 4);

	for my $i (0 .. $len4 - 1)
	{
		my $j = $i * 4;
		my $k =
		  ($b[$j] | ($b[ $j + 1 ] << 8) | ($b[ $j + 2 ] << 16) | ($b[ $j + 3 ] << 24))
		  & $M32;
		$k = ($k * $m) & $M32;
		$k ^= ($k >> 24);
		$k = ($k * $m) & $M32;
		$h = ($h * $m) & $M32;
		$h ^= $k;
	}

	my $rem = $len % 4;
	my $base = $len & ~3;
	if ($rem >= 3) { $h ^= ($b[ $base + 2 ] << 16); }
	if ($rem >= 2) { $h ^= ($b[ $base + 1 ] << 8); }
	if ($rem >= 1)
	{
		$h ^= $b[$base];
		$h = ($h * $m) & $M32;
	}

	$h ^= ($h >> 13);
	$h = ($h * $m) & $M32;
	$h ^= ($h >> 15);
	$h &= $M32;

	return $h >= 2147483648 ? $h - 4294967296 : $h;
}

sub partition_for
{
	my ($key, $n) = @_;
	return (murmur2($key) & 0x7fffffff) % $n;
}


1;
