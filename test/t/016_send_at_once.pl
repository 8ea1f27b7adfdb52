
# Copyright (c) 2026, outbox_kafka developers

# The relay hands librdkafka whole chunks, so it has librdkafka send a
# chunk at once instead of letting it wait linger.ms in its queue, and
# applies linger.ms itself, between chunks (docs/architecture.md):
# - with linger.ms = 3000, an event reaches Kafka long before 3 s;
# - events committed right after a chunk was delivered wait for the next
#   fetch, linger.ms after that: never sooner;
# - they then go out together, in commit order, none lost.
#
# The bounds are one-sided and far apart (3 s of linger against a pushed
# chunk's milliseconds; a fetch that must not come before 3 s), so a slow
# machine cannot make them fail.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $topic = 't.at_once';
my $linger_s = 3;
my $mock = start_mock(topics => ["$topic:2"]);
my $node = new_node(
	'at_once',
	bootstrap => $mock->bootstrap,
	extra_conf => "outbox_kafka.producer_properties = 'linger.ms="
	  . ($linger_s * 1000) . "'\n");

# published: events_published as outbox.status shows it
sub published
{
	return $node->safe_psql('postgres',
		'SELECT coalesce(events_published, 0) FROM outbox.status');
}

ok($node->poll_query_until('postgres', "SELECT state = 'idle' FROM outbox.status"),
	'the relay is idle, its producer built');

my $t0 = time();
$node->safe_psql('postgres', "SELECT outbox.enqueue('$topic', 'a', key => 'k')");
poll_until(sub { published() >= 1 }, 30);
my $took = time() - $t0;
cmp_ok($took, '<', $linger_s / 2,
	sprintf('with linger.ms = %d, an event reached Kafka in %.3f s: the chunk was sent at once',
		$linger_s * 1000, $took));

# committed right after that chunk was delivered: they wait for the next fetch
foreach my $p ('b', 'c', 'd')
{
	$node->safe_psql('postgres',
		"SELECT outbox.enqueue('$topic', '$p', key => 'k')");
}
poll_until(sub { published() >= 4 }, 30);
my $gathered = time() - $t0;
is(published(), 4, 'the events committed meanwhile are published');
cmp_ok($gathered, '>=', $linger_s - 0.05,
	sprintf('they were fetched linger.ms after the chunk before them was delivered (%.3f s), not sooner',
		$gathered));

my @msgs = grep { defined $_->{key} && $_->{key} eq 'k' }
  consume_all($mock->bootstrap, $topic);
is(join(',', map { $_->{payload} } @msgs), 'a,b,c,d',
	'in commit order, once each');

$node->stop;
$mock->stop;
done_testing();
