
# Copyright (c) 2026, outbox_kafka developers

# Per-key order with two chunks in flight (issue 19): a produce request of
# the older chunk fails while the newer chunk, which has a later event of
# the same key, is in flight.  The mock broker answers after 2 s (its round
# trip setting), so the newer chunk is produced while the older one waits
# for its answer, and it refuses the older chunk's request
# (TOPIC_AUTHORIZATION_FAILED: the topic is held aside and its events are
# produced again by the held lane).  The mock does not check an idempotent
# producer's sequence numbers, so a later request of the partition in
# flight with the refused one would be written before it: the relay must
# not hand over the newer chunk's event of that partition before the older
# chunk's events there are acknowledged.  The consumer must see every key's
# events in commit order, and nothing may be lost.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use MockKafka;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'pipe.order';
my $mock = start_mock(topics => [ "$topic:2" ]);
my $node = new_node(
	'pipeline_order',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => q{
outbox_kafka.stall_timeout = '30s'
});

# a key for each partition
my %key_of;
for my $i (1 .. 100)
{
	$key_of{ partition_for("k$i", 2) } //= "k$i";
	last if keys %key_of == 2;
}
my ($ka, $kb) = ($key_of{0}, $key_of{1});

# enqueue n events of each key given, in one transaction; returns the ids
sub enqueue
{
	my ($n, @keys) = @_;
	my $ids = $node->safe_psql('postgres', qq{
		SELECT string_agg(outbox.enqueue('$topic', jsonb_build_object('i', i), key => k)::text, ' ' ORDER BY i, k)
		  FROM generate_series(1, $n) i, unnest(ARRAY['${\ join("','", @keys)}']) k});
	return split / /, $ids;
}

my @expected = enqueue(1, $ka, $kb);
ok(wait_until_published($node, 'postgres', 2), 'both partitions answer');
ok($node->poll_query_until('postgres', "SELECT state = 'idle' FROM outbox.status"),
	'the relay is idle');

for my $round (1 .. 2)
{
	$mock->command_ok('rtt 1 2000');
	$mock->command_ok('produce_errors 1 TOPIC_AUTHORIZATION_FAILED');
	# the older chunk: an event of key a (partition 0), its request refused
	# (one event: librdkafka cannot split it over two requests, which the
	# mock would take out of order whatever the relay does)
	push @expected, enqueue(1, $ka);
	ok($node->poll_query_until('postgres', "SELECT state <> 'idle' FROM outbox.status"),
		"round $round: the older chunk is fetched (and produced)");
	# the newer chunk, fetched while the older one waits for its answer:
	# later events of key a, and events of key b (partition 1)
	push @expected, enqueue(3, $ka, $kb);
	ok(wait_until_published($node, 'postgres', scalar @expected),
		"round $round: everything is published");
	$mock->command_ok('rtt 1 0');
	ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM outbox.held_topics'),
		"round $round: the topic is released");
	ok($node->poll_query_until('postgres', "SELECT state = 'idle' FROM outbox.status"),
		"round $round: the relay is idle");
}

my ($r, @msgs) = consume_until_delivered($mock->bootstrap, $topic, \@expected);
is($r->{missing}, 0, 'every event is delivered')
  or diag "published: " . join(" ", map { header_value($_, "outbox-id") . "/" . $_->{key} } @msgs) . "; expected " . join(" ", @expected);
is($r->{order_violations}, 0, 'per key, first deliveries come in commit order')
  or diag "published: " . join(" ", map { header_value($_, "outbox-id") . "/" . $_->{key} } @msgs) . "\n" . join("\n", @{ $r->{order_diag} });
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'nothing is dead-lettered');

$node->stop;
$mock->stop;
done_testing();
