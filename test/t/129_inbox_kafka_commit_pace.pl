
# Copyright (c) 2026, outbox_kafka developers

# The offsets the inbox commits to Kafka (only for lag tools) go at most
# once a second, not once per batch: 40 messages applied one batch each
# write a handful of commit records to __consumer_offsets, not 40, on
# Apache Kafka (RealKafka.pm); and once the stream stops, Kafka's offsets
# end equal to the ones PostgreSQL stored.

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

my $topic = 'pace';
my $group = 'outbox_kafka.postgres.pace';
my $n = 40;
my $kafka = RealKafka->start(topics => ["$topic:1"]);
my $node = new_node('pace', bootstrap => $kafka->bootstrap);

$node->safe_psql('postgres', $INBOX_EFFECT_HANDLER);
$node->safe_psql('postgres',
	qq{SELECT outbox.subscribe('pace', '$topic', 'apply(outbox.inbox_message)')});

sub query { return query_or_empty($node, 'postgres', $_[0]); }

sub stored
{
	my $o = query(q{SELECT next_offset FROM outbox.inbox_offset WHERE subscription = 'pace'});
	return $o eq '' ? -1 : $o;
}

# the offset Kafka holds for the group's partition 0, -1 if none
sub kafka_offset
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $RealKafka::ADMIN, '-b', $kafka->admin_bootstrap, 'group-offsets',
			$group, $topic ], '>', \$out, '2>', \$err)
	  or return -1;
	return $out =~ /^0 (-?\d+)$/m ? $1 : -1;
}

sub produce
{
	my $seq = shift;
	IPC::Run::run([ $RealKafka::KCAT, '-P', '-b', $kafka->bootstrap, '-t', $topic,
			'-p', '0', '-k', 'k' ], '<', \qq({"seq": $seq}\n))
	  or die "kcat could not produce";
}

# one message at a time, each applied (one batch each) before the next
my $t0 = time;
foreach my $i (1 .. $n)
{
	produce($i);
	poll_until(sub { stored() >= $i }, 60) or die "message $i not applied";
}
my $seconds = time - $t0;
is(query('SELECT count(*) FROM effect'), $n, "$n messages applied, one batch each");
ok(poll_until(sub { kafka_offset() == $n }, 30),
	"Kafka's committed offset ends equal to the stored one ($n)");

# the commit records of the group in __consumer_offsets (keys hold the
# group's name)
my ($keys, $err) = ('', '');
IPC::Run::run([ $RealKafka::KCAT, '-C', '-b', $kafka->admin_bootstrap, '-t', '__consumer_offsets',
		'-e', '-q', '-f', '%k\n' ], '>', \$keys, '2>', \$err)
  or die "kcat could not read __consumer_offsets: $err";
my $commits = () = $keys =~ /\Q$group\E/g;
my $bound = int($seconds) + 3;
cmp_ok($commits, '<=', $bound,
	sprintf('%d commits to Kafka for %d batches in %.1f s: at most one a second', $commits, $n, $seconds));
cmp_ok($commits, '>=', 1, 'the offsets were committed to Kafka');

$node->stop;
$kafka->stop;
done_testing();
