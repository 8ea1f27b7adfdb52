
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: an event to be produced alone keeps its key's later events
# behind it (G3), also in a pass where it cannot go yet.  When Kafka
# refuses a batch for one record, each event of it is produced again alone,
# one such event per pass.  An alone event that waited for the next pass
# (another partition's went in this one) must still hold back the later
# events of its partition: if one of its key went ahead and was
# acknowledged, the earlier event would be delivered after it.
#
# The scene, on librdkafka's mock cluster, topic of two partitions, keys x
# (partition p) and y (partition q):
# 1. a refused request makes the producer fatal; the relay builds a new one,
#    which confirms p (its first message there acknowledged) but has not
#    sent to q yet;
# 2. x1, y1, y2 in one transaction: x1 and y1 go out together, y2 waits
#    for q's first acknowledgement (a new producer's first message to a
#    partition goes alone), and both requests are refused: a new producer
#    again, x1 and y1 to be produced alone;
# 3. x1 goes alone; y1 waits for the next pass, and y2 must wait behind it.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use MockKafka;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'fs.alone.order';
my $mock = start_mock(topics => ["$topic:2"]);
my $node = new_node(
	'alone_order',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => "outbox_kafka.stall_timeout = '2s'\n");

# keys on either partition (the relay places keys as the Java client does)
my %on;
foreach my $i (0 .. 63)
{
	$on{ partition_for("k$i", 2) } //= "k$i";
}
my ($x, $y) = @on{ 0, 1 };
ok(defined $x && defined $y, "keys on both partitions: $x on 0, $y on 1");

my @expected;

# enqueue events of the keys given, in one transaction
sub enqueue
{
	my @keys = @_;
	my $values = join(', ', map { "('$keys[$_]', $_)" } 0 .. $#keys);
	my $ids = $node->safe_psql('postgres', qq{
		SELECT string_agg(outbox.enqueue('$topic', jsonb_build_object('n', n),
										  key => k)::text, ' ' ORDER BY n)
		  FROM (VALUES $values) AS v(k, n)});
	push @expected, split / /, $ids;
}

foreach my $round (1 .. 3)
{
	# 1. a producer that has confirmed p but not q
	$mock->command_ok('produce_errors 1 INVALID_RECORD');
	enqueue($x);
	ok(wait_until_published($node, 'postgres', scalar @expected),
		"round $round: a refused request, a new producer, the event delivered");
	# 2. and 3. (the mock answers each partition's request by itself)
	$mock->command_ok('produce_errors 2 INVALID_RECORD');
	enqueue($x, $y, $y);
	ok(wait_until_published($node, 'postgres', scalar @expected),
		"round $round: the refused request's events delivered");
}

my ($r, @msgs) = consume_until_delivered($mock->bootstrap, $topic, \@expected);
is($r->{missing}, 0, 'every event is delivered');
is($r->{order_violations}, 0,
	'per key, first deliveries come in commit order: an event waiting to go alone holds back the later ones of its key')
  or diag join("\n", @{ $r->{order_diag} });
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'nothing is dead-lettered (every event went through alone)');

$node->stop;
$mock->stop;
done_testing();
