
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: per-key order when the first produce request of a new
# producer to a partition fails while later requests to the same partition
# succeed (issue 16, "per-key order under partial failure").  Kafka accepts
# any first sequence number from a producer id it has no state for on a
# partition, so idempotence does not order a new producer's first requests
# there: the relay must not have a second request of a partition in flight
# before the first one of its producer there was acknowledged.
#
# batch.num.messages=1 makes every event a request of its own, and the mock
# refuses the first Produce request of the relay's producer (topic not
# authorised, then, in a second round on a new producer, not enough
# replicas).  Each round enqueues five events of one key in one
# transaction; the consumer must see each key's first deliveries in commit
# order, and nothing may be lost.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use MockKafka;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'fs.first.request';
my $mock = start_mock(topics => [ "$topic:2", 'fs.first.warmup:1' ]);
my $node = new_node(
	'first_request',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => q{
outbox_kafka.producer_properties = 'batch.num.messages=1'
outbox_kafka.stall_timeout = '2s'
});

my @expected;

# one round: the next Produce request fails with $error, then five events
# of key $key go out in one chunk
sub round
{
	my ($key, $error) = @_;
	$mock->command_ok("produce_errors 1 $error");
	my $ids = $node->safe_psql('postgres', qq{
		SELECT string_agg(outbox.enqueue('$topic', jsonb_build_object('n', i), key => '$key')::text, ' ')
		  FROM generate_series(1, 5) i});
	push @expected, split / /, $ids;
	ok(wait_until_published($node, "postgres", scalar @expected), "round $key: everything is published or held and released");
}

round('a', 'TOPIC_AUTHORIZATION_FAILED');

# a new producer (a settings change rebuilds it): its first request fails
# with a retriable error
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'batch.num.messages=1,linger.ms=2'");
$node->reload;
ok( $node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'outbox_kafka worker'"),
	'the relay runs');
round('b', 'NOT_ENOUGH_REPLICAS');

# the consumer reads until every event is there (or the time is up)
my ($r, @msgs) = consume_until_delivered($mock->bootstrap, $topic, \@expected);
is($r->{missing}, 0, "every event is delivered")
  or diag "published: " . join(" ", map { header_value($_, "outbox-id") . "/" . $_->{key} } @msgs) . "; expected " . join(" ", @expected);
is($r->{order_violations}, 0, 'per key, first deliveries come in commit order')
  or diag join("\n", @{ $r->{order_diag} });
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'nothing is dead-lettered');

$node->stop;
$mock->stop;
done_testing();
