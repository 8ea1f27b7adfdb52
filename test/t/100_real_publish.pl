
# Copyright (c) 2026, outbox_kafka developers

# Against a real Apache Kafka broker (KRaft, auto-create off): 10 000 events
# from four concurrent sessions over three topics, with rollbacks, reach
# Kafka exactly once (the broker validates the idempotent producer's
# sequences), per-key order equals commit order, and every key is on the
# partition Kafka's own Java producer puts it on (measured: the same keys
# produced with the Java console producer, partitions read back).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use Encode qw(encode_utf8);
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RealKafka;
use Test::More;
use Time::HiRes qw(time);

my %partitions = ('r.alpha' => 3, 'r.beta' => 4, 'r.gamma' => 1);
my @topics = sort keys %partitions;

my $kafka = RealKafka->start(
	topics => [ (map { "$_:$partitions{$_}" } @topics), 'java.3:3', 'java.4:4' ]);
note sprintf("broker ready %.1f s after the test asked for it", $kafka->startup_seconds);

my $node = new_node('real_publish', bootstrap => $kafka->bootstrap);

# keys: ASCII and UTF-8 (the partitioner hashes the bytes)
my %keys;
foreach my $t (@topics)
{
	$keys{$t} = [ map { $_ % 7 == 0 ? "clé-\x{1F511}-$t-$_" : "key-$t-$_" } 1 .. 40 ];
}

# --- the Java client's choice for every key, measured on this broker ----------
my %java;    # partitions => { key bytes => partition }
{
	my @all = map { encode_utf8($_) } map { @{ $keys{$_} } } @topics;
	$java{3} = $kafka->java_produce_keys('java.3', @all);
	$java{4} = $kafka->java_produce_keys('java.4', @all);
	is(scalar(keys %{ $java{4} }), scalar(@all),
		'the Java console producer wrote every sample key');
	my $agree = grep { partition_for($_, 3) == $java{3}{$_} && partition_for($_, 4) == $java{4}{$_} } @all;
	is($agree, scalar(@all),
		'murmur2 of OutboxKafkaTest agrees with the Java producer for every sample key');
}

$node->safe_psql(
	'postgres', q{
CREATE TABLE key_counter (topic text, key text, n int NOT NULL DEFAULT 0, PRIMARY KEY (topic, key));
CREATE TABLE committed (id bigint PRIMARY KEY, session int NOT NULL, key_seq int);
});
$node->safe_psql('postgres',
	encode_utf8("INSERT INTO key_counter (topic, key) VALUES "
		  . join(',', map { my $t = $_; map { "('$t', '$_')" } @{ $keys{$t} } } @topics)));

# --- four sessions, 2 500 committed events each, 10 % of transactions rolled back
srand(20260402);
my @files;
my $to_commit = 0;
foreach my $session (1 .. 4)
{
	my ($sql, $committed) = ('', 0);
	while ($committed < 2500)
	{
		my $rollback = rand() < 0.10;
		my @ev;
		for (1 .. 1 + int(rand(5)))
		{
			my $t = $topics[ int(rand(@topics)) ];
			push @ev, { topic => $t, key => rand() < 0.05 ? undef : $keys{$t}[ int(rand(40)) ] };
		}
		# per-key row locks in one global order: no deadlocks
		@ev = sort { $a->{topic} cmp $b->{topic} || ($a->{key} // '') cmp($b->{key} // '') } @ev;
		$sql .= "BEGIN;\n";
		foreach my $e (@ev)
		{
			my $enq = "outbox.enqueue('$e->{topic}', jsonb_build_object('s', $session, 'r', random())"
			  . (defined $e->{key} ? ", key => '$e->{key}')" : ")");
			$sql .=
			  defined $e->{key}
			  ? "WITH c AS (UPDATE key_counter SET n = n + 1 WHERE topic = '$e->{topic}' AND key = '$e->{key}' RETURNING n)"
			  . " INSERT INTO committed SELECT $enq, $session, c.n FROM c;\n"
			  : "INSERT INTO committed VALUES ($enq, $session, NULL);\n";
		}
		$sql .= $rollback ? "ROLLBACK;\n" : "COMMIT;\n";
		$committed += @ev unless $rollback;
	}
	$to_commit += $committed;
	my $file = "${PostgreSQL::Test::Utils::tmp_check}/real_publish_$session.sql";
	open my $fh, '>:raw', $file or die $!;
	print $fh encode_utf8($sql);
	close $fh;
	push @files, $file;
}

my $t0 = time();
run_sql_files_concurrently($node, 'postgres', @files);
my $t_enq = time();
my %key_seq = map { my ($id, $ks) = split /\|/; ($id => $ks) } split /\n/,
  $node->safe_psql('postgres', 'SELECT id, coalesce(key_seq, 0) FROM committed');
is(scalar(keys %key_seq), $to_commit, "$to_commit events committed by 4 sessions");

ok(wait_until_published($node, 'postgres', $to_commit), 'outbox.status: all published');
note sprintf("enqueued in %.1f s, all acknowledged %.1f s after the last commit",
	$t_enq - $t0, time() - $t_enq);
my $st = outbox_status($node, 'postgres');
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered');
is($st->{last_error}, undef, 'no error reported');

# --- read back --------------------------------------------------------------
my @msgs = map { $kafka->consume($_) } @topics;
# per topic and key, the key_seq of the events must run 1, 2, 3, ...
my $d = check_delivery(
	\@msgs,
	expected => [ keys %key_seq ],
	order_key => sub { defined $_[0]{key} ? "$_[0]{topic}\0$_[0]{key}" : undef },
	seq => sub { $key_seq{ header_value($_[0], 'outbox-id') } },
	gapless => 1);
is($d->{missing}, 0, 'every committed event is in Kafka');
is($d->{unknown}, 0, 'no message for a rolled-back event');
is($d->{duplicates}, 0, 'no duplicates: exactly once in normal operation');
is(scalar(@msgs), $to_commit, "exactly $to_commit messages in the three topics");

my ($bad_part, $keyed) = (0, 0);
foreach my $m (@msgs)
{
	next unless defined $m->{key};
	$keyed++;
	my $p = $partitions{ $m->{topic} };
	my $want = $p == 1 ? 0 : $java{$p}{ $m->{key} };
	if (!defined $want || $m->{partition} != $want)
	{
		diag "key $m->{key} of $m->{topic} on partition $m->{partition}, Java producer: "
		  . ($want // 'none')
		  if $bad_part++ < 5;
	}
}
ok($keyed > 9000, "$keyed keyed messages checked");
is($bad_part, 0, 'every key is on the partition the Java producer chose for it on this broker');

ok($d->{order_keys} >= 100, "$d->{order_keys} keys checked for order");
is($d->{order_violations}, 0, 'per topic and key, Kafka order equals commit order')
  or diag join("\n", @{ $d->{order_diag} });

$node->stop;
$kafka->stop;
done_testing();
