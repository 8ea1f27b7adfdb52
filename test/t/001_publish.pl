
# Copyright (c) 2026, outbox_kafka developers

# End to end: 10 000 events enqueued by four concurrent sessions, with
# rollbacks and out-of-order commits, all reach Kafka exactly as enqueued:
# nothing lost, nothing rolled back published, no duplicates without faults,
# per-key order equal to commit order, keys on the Java client's partition,
# headers and payloads byte for byte.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use Encode qw(encode_utf8);
use JSON::PP;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

# --- murmur2 self-check against Kafka's own test vectors --------------------
my %vectors = (
	'21' => -973932308,
	'foobar' => -790332482,
	'a-little-bit-long-string' => -985981536,
	'a-little-bit-longer-string' => -1486304829,
	'lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8' => -58897971,
	'abc' => 479470107,);
foreach my $s (sort keys %vectors)
{
	is(murmur2($s), $vectors{$s}, "murmur2('$s') matches Kafka's test vector");
}

# --- set-up -----------------------------------------------------------------
my %partitions = ('t.alpha' => 3, 't.beta' => 4, 't.gamma' => 1);
my @topics = sort keys %partitions;

my $mock = start_mock(
	brokers => 3,
	topics => [ map { "$_:$partitions{$_}" } @topics ]);
my $node = new_node(
	'publish',
	bootstrap => $mock->bootstrap,
	poll_interval => '1s');

# Per-key keys: ASCII and UTF-8 ones (murmur2 works on the bytes).
my %keys;
foreach my $t (@topics)
{
	$keys{$t} = [
		map {
			$_ % 7 == 0
			  ? "clé-\x{1F511}-$t-$_"    # non-ASCII key
			  : "key-$t-$_"
		} 1 .. 50
	];
}

$node->safe_psql(
	'postgres', q{
CREATE TABLE key_counter (topic text, key text, n int NOT NULL DEFAULT 0,
                          PRIMARY KEY (topic, key));
CREATE TABLE committed (id bigint PRIMARY KEY, session int NOT NULL,
                        seq int NOT NULL, key_seq int,
                        UNIQUE (session, seq));
});
{
	my @rows;
	foreach my $t (@topics)
	{
		push @rows, map { "(" . sql_lit($t) . ", " . sql_lit($_) . ")" }
		  @{ $keys{$t} };
	}
	$node->safe_psql('postgres',
		encode_utf8("INSERT INTO key_counter (topic, key) VALUES " . join(',', @rows)));
}

# --- generate the four sessions' scripts ------------------------------------
srand(20260401);
my $events_per_session = 2500;
my $json = JSON::PP->new->canonical;
my %expected;    # "session:seq" => { topic, key, kind, payload(data), headers }
my @files;
my ($tx_total, $tx_rolled_back, $ev_rolled_back) = (0, 0, 0);

foreach my $session (1 .. 4)
{
	my $seq = 0;
	my $committed_events = 0;
	my $sql = '';
	while ($committed_events < $events_per_session)
	{
		my $rollback = rand() < 0.10;
		my $n = 1 + int(rand(5));
		my @ev;
		for (1 .. $n)
		{
			my $topic = $topics[ int(rand(@topics)) ];
			my $key =
			  rand() < 0.05
			  ? undef
			  : $keys{$topic}[ int(rand(@{ $keys{$topic} })) ];
			push @ev, { topic => $topic, key => $key };
		}
		# take the per-key row locks in one global order: no deadlocks
		@ev = sort {
			($a->{topic} cmp $b->{topic})
			  || (($a->{key} // '') cmp($b->{key} // ''))
		} @ev;

		$sql .= "BEGIN;\n";
		foreach my $e (@ev)
		{
			$seq++;
			$e->{session} = $session;
			$e->{seq} = $seq;
			make_payload($e);
			$sql .= enqueue_sql($e);
			$expected{"$session:$seq"} = $e unless $rollback;
		}
		$sql .= "SELECT pg_sleep(0.001);\n" if rand() < 0.3;
		$sql .= $rollback ? "ROLLBACK;\n" : "COMMIT;\n";
		$tx_total++;
		if ($rollback)
		{
			$tx_rolled_back++;
			$ev_rolled_back += @ev;
		}
		else
		{
			$committed_events += @ev;
		}
	}
	my $file = "${PostgreSQL::Test::Utils::tmp_check}/publish_session_$session.sql";
	open my $fh, '>:raw', $file or die "could not write $file: $!";
	print $fh encode_utf8($sql);
	close $fh;
	push @files, $file;
}
note "generated $tx_total transactions, $tx_rolled_back rolled back "
  . "($ev_rolled_back events), "
  . scalar(keys %expected)
  . " events to commit";

# --- run them concurrently ----------------------------------------------------
my $t0 = time();
run_sql_files_concurrently($node, 'postgres', @files);
my $t_enqueued = time();
note sprintf("4 sessions enqueued in %.1f s", $t_enqueued - $t0);

my %committed;    # id => "session:seq"
my %key_seq;      # id => per-(topic,key) commit sequence
foreach my $line (split /\n/,
	$node->safe_psql('postgres',
		'SELECT id, session, seq, coalesce(key_seq, 0) FROM committed'))
{
	my ($id, $s, $q, $ks) = split /\|/, $line;
	$committed{$id} = "$s:$q";
	$key_seq{$id} = $ks;
}
is(scalar(keys %committed), scalar(keys %expected),
	'every transaction meant to commit committed (recorded in the same transaction as its events)');

my $n_committed = scalar(keys %committed);
ok(wait_until_published($node, 'postgres', $n_committed),
	"outbox.status: nothing pending, $n_committed events published");
note sprintf("all published %.1f s after the last commit", time() - $t_enqueued);

my $status = outbox_status($node, 'postgres');
is($status->{state}, 'idle', 'worker is idle afterwards')
  or diag explain $status;
is($status->{events_dead_lettered}, 0, 'nothing dead-lettered');
is($status->{dead_letters}, 0, 'outbox.dead_letters is empty');
is($status->{last_error}, undef, 'no error reported');

# --- read everything back -------------------------------------------------------
my @msgs = consume_topics($mock->bootstrap, @topics);
note scalar(@msgs) . " messages consumed";
# per topic and key, the key_seq of the events must run 1, 2, 3, ... (G3)
my $d = check_delivery(
	\@msgs,
	expected => [ keys %committed ],
	order_key => sub {
		my ($m) = @_;
		my $id = header_value($m, 'outbox-id');
		return undef unless defined $m->{key} && defined $id && exists $key_seq{$id};
		return "$m->{topic}/$m->{key}";
	},
	seq => sub { $key_seq{ header_value($_[0], 'outbox-id') } },
	gapless => 1);
is($d->{missing}, 0, 'every committed event was delivered (G1, G2)');
is($d->{unknown}, 0,
	'no message without a committed event: rolled-back events were never published');
is($d->{duplicates}, 0, 'no duplicates without faults');
is(scalar(@msgs), $n_committed, 'exactly one message per committed event');

# --- content of each message ------------------------------------------------------
my ($bad_topic, $bad_key, $bad_payload, $bad_headers, $bad_partition) =
  (0, 0, 0, 0, 0);
my %uuid_seen;
my $iso = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?([+-]\d\d(:\d\d)?|Z)$/;
my $json_dec = JSON::PP->new->utf8;
foreach my $m (@msgs)
{
	my $id = header_value($m, 'outbox-id');
	next unless defined $id && exists $committed{$id};
	my $e = $expected{ $committed{$id} };

	if ($m->{topic} ne $e->{topic})
	{
		diag "id $id: topic $m->{topic}, expected $e->{topic}" if $bad_topic++ < 5;
	}

	my $want_key = defined $e->{key} ? encode_utf8($e->{key}) : undef;
	if ((defined $m->{key}) != (defined $want_key)
		|| (defined $want_key && $m->{key} ne $want_key))
	{
		diag "id $id: key " . ($m->{key} // 'null') . ", expected " . ($want_key // 'null')
		  if $bad_key++ < 5;
	}

	if (defined $want_key
		&& $m->{partition} != partition_for($want_key, $partitions{ $e->{topic} }))
	{
		diag "id $id: key $want_key on partition $m->{partition}, murmur2 says "
		  . partition_for($want_key, $partitions{ $e->{topic} })
		  if $bad_partition++ < 5;
	}

	my $payload_ok;
	if ($e->{kind} eq 'null')
	{
		$payload_ok = !defined $m->{payload};
	}
	elsif ($e->{kind} eq 'json')
	{
		my $got = eval { $json_dec->decode($m->{payload}) };
		$payload_ok = defined $got && $json->encode($got) eq $json->encode($e->{data});
	}
	elsif ($e->{kind} eq 'text')
	{
		$payload_ok = defined $m->{payload} && $m->{payload} eq encode_utf8($e->{data});
	}
	else
	{
		$payload_ok = defined $m->{payload} && $m->{payload} eq $e->{data};
	}
	if (!$payload_ok)
	{
		diag "id $id ($e->{kind}): payload " . ($m->{payload} // 'null') . " is not as enqueued"
		  if $bad_payload++ < 5;
	}

	# headers: outbox-id, outbox-event-id, outbox-created-at, content-type
	# for JSON, then ours
	my @h = @{ $m->{headers} };
	my @want_fixed = ('outbox-id', 'outbox-event-id', 'outbox-created-at');
	push @want_fixed, 'content-type' if $e->{kind} eq 'json';
	my $hdr_ok = @h >= @want_fixed;
	for my $i (0 .. $#want_fixed)
	{
		$hdr_ok &&= $h[$i][0] eq $want_fixed[$i];
	}
	$hdr_ok &&= $h[0][1] eq $id;
	$hdr_ok &&= defined $h[1][1]
	  && $h[1][1] =~ /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
	  && !$uuid_seen{ $h[1][1] }++;
	$hdr_ok &&= defined $h[2][1] && $h[2][1] =~ $iso;
	$hdr_ok &&= $h[3][1] eq 'application/json' if $e->{kind} eq 'json';
	my @got_caller = map { join("\0", $_->[0], $_->[1] // '<null>') }
	  @h[ scalar(@want_fixed) .. $#h ];
	my @want_caller = map {
		join("\0", encode_utf8($_),
			defined $e->{headers}{$_} ? encode_utf8($e->{headers}{$_}) : '<null>')
	} keys %{ $e->{headers} // {} };
	$hdr_ok &&= join("\n", sort @got_caller) eq join("\n", sort @want_caller);
	if (!$hdr_ok)
	{
		diag "id $id: headers " . explain($m->{headers}) . " expected caller headers "
		  . explain($e->{headers})
		  if $bad_headers++ < 5;
	}
}
is($bad_topic, 0, 'every message is on the topic it was enqueued for');
is($bad_key, 0, 'every key arrives byte for byte (null stays null)');
is($bad_payload, 0,
	'every payload arrives as enqueued (JSON equal, text and bytes exact, tombstones null)');
is($bad_headers, 0,
	'headers: outbox-id, a distinct UUIDv7 outbox-event-id, ISO 8601 outbox-created-at, content-type only for JSON, then the caller\'s headers'
);
is($bad_partition, 0,
	'every keyed message is on the partition the Java client picks (murmur2)');

# Commits out of id order are what G2 is about: on the single-partition topic
# a lower id after a higher one shows the relay met them (informational).
{
	my ($inversions, $max) = (0, 0);
	foreach my $m (grep { $_->{topic} eq 't.gamma' } @msgs)
	{
		my $id = header_value($m, 'outbox-id');
		$inversions++ if $id < $max;
		$max = $id if $id > $max;
	}
	note "t.gamma: $inversions messages followed a message with a higher id";
}

# --- order per key = commit order ---------------------------------------------------
ok($d->{order_keys} >= 100, "order checked for $d->{order_keys} keys");
is($d->{order_violations}, 0, 'for every topic and key, Kafka order equals commit order (G3)')
  or diag join("\n", @{ $d->{order_diag} });

$node->stop;
$mock->stop;
done_testing();


# --- helpers -------------------------------------------------------------------

sub sql_lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# Choose a payload kind and content for event $e, and maybe headers.
sub make_payload
{
	my ($e) = @_;
	my $r = rand();
	my @words = ('plain', "quote's \"double\"", "back\\slash", "new\nline",
		"tab\there", "ünïcödé", "\x{4E2D}\x{6587}", "emoji \x{1F600}", '');
	if (defined $e->{key} && $r < 0.03)
	{
		$e->{kind} = 'null';    # tombstone
	}
	elsif ($r < 0.75)
	{
		$e->{kind} = 'json';
		$e->{data} = {
			session => $e->{session},
			seq => $e->{seq},
			note => $words[ int(rand(@words)) ],
			list => [ 1, 2, int(rand(1000)), JSON::PP::true, undef ],
			nested => { a => { b => -42 } },
		};
	}
	elsif ($r < 0.88)
	{
		$e->{kind} = 'text';
		$e->{data} = "session $e->{session} seq $e->{seq}: " . $words[ int(rand(@words)) ];
	}
	else
	{
		$e->{kind} = 'bytes';
		$e->{data} = pack('N', $e->{session}) . pack('N', $e->{seq})
		  . join('', map { chr(int(rand(256))) } 1 .. int(rand(40)))
		  . "\x00\xff\x7f\x80\"\\";
	}

	if (rand() < 0.3)
	{
		my %h;
		$h{'trace-id'} = "trace-$e->{session}-$e->{seq}";
		$h{'x-note'} = $words[ int(rand(@words)) ] if rand() < 0.5;
		$h{'x-empty'} = '' if rand() < 0.2;
		$h{'x-null'} = undef if rand() < 0.2;
		$h{"x-\x{4E2D}"} = "\x{6587}" if rand() < 0.2;
		$e->{headers} = \%h;
	}
	return;
}

# SQL for one event: bump the key's counter (row lock held to commit, so the
# counter order is the commit order for that key), enqueue, and record the id
# in the same transaction.
sub enqueue_sql
{
	my ($e) = @_;
	my $payload;
	if ($e->{kind} eq 'null')
	{
		$payload = 'NULL::jsonb';
	}
	elsif ($e->{kind} eq 'json')
	{
		$payload = sql_lit($json->encode($e->{data})) . '::jsonb';
	}
	elsif ($e->{kind} eq 'text')
	{
		$payload = sql_lit($e->{data}) . '::text';
	}
	else
	{
		$payload = "'\\x" . unpack('H*', $e->{data}) . "'::bytea";
	}
	my $key = defined $e->{key} ? sql_lit($e->{key}) : 'NULL';
	my $headers =
	  defined $e->{headers}
	  ? sql_lit($json->encode($e->{headers})) . '::jsonb'
	  : 'NULL';
	my $topic = sql_lit($e->{topic});
	my $enqueue =
	  "outbox.enqueue($topic, $payload, key => $key, headers => $headers)";

	if (defined $e->{key})
	{
		return
		    "WITH c AS (UPDATE key_counter SET n = n + 1"
		  . " WHERE topic = $topic AND key = $key RETURNING n)"
		  . " INSERT INTO committed (id, session, seq, key_seq)"
		  . " SELECT $enqueue, $e->{session}, $e->{seq}, c.n FROM c;\n";
	}
	return "INSERT INTO committed (id, session, seq)"
	  . " VALUES ($enqueue, $e->{session}, $e->{seq});\n";
}
