
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: one sick partition holds only its own events (issue 16,
# "partition-level isolation"; G6).  Partition 2 of a four-partition topic
# loses its leader: its events wait, in order, in their own queue (the
# partition is held aside), while the topic's other partitions, keyless
# events and another topic keep flowing.  When the leader is back, the
# queue drains, the partition is released, and every key's events arrive
# in commit order with nothing lost or dead-lettered.  The relay used to
# hold the whole topic.  A chunk whose only events wait for the sick
# partition is not an outage or a slow cluster: the relay used to say
# broker_unreachable, then "the cluster is slow".

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use MockKafka;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $sick = 'fs.sick';
my $other = 'fs.sick.other';
my $sick_partition = 2;
my $mock = start_mock(topics => [ "$sick:4", "$other:2" ]);
my $node = new_node(
	'sick_partition',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => q{
outbox_kafka.stall_timeout = '1s'
});

# keys of the sick topic, by the partition they land on
my (@sick_keys, @healthy_keys);
for my $i (1 .. 200)
{
	my $key = "k$i";
	if (partition_for($key, 4) == $sick_partition) { push @sick_keys, $key; }
	else { push @healthy_keys, $key; }
	last if @sick_keys >= 5 && @healthy_keys >= 15;
}

# enqueue one event for each of @keys on $topic (undef key: keyless);
# returns the ids
sub enqueue
{
	my ($topic, $round, @keys) = @_;
	my $values = join(', ',
		map { defined $_ ? "('$_')" : '(NULL)' } @keys);
	my $ids = $node->safe_psql('postgres', qq{
		SELECT string_agg(outbox.enqueue('$topic', jsonb_build_object('round', $round),
		                                 key => k)::text, ' ' ORDER BY n)
		  FROM (SELECT k, row_number() OVER () AS n FROM (VALUES $values) v(k)) s});
	return split / /, $ids;
}

# the outbox-ids the consumer has seen on topic, reading the partitions
# that have a leader (a consumer reading the whole topic would wait for the
# sick one)
sub delivered
{
	my ($topic, $partitions) = @_;
	return { map { (header_value($_, 'outbox-id') => 1) }
		  map { consume_all($mock->bootstrap, $topic, $_) } @$partitions };
}
my @healthy = grep { $_ != $sick_partition } 0 .. 3;

ok(wait_until_published($node, 'postgres', 0), 'the relay runs');
$mock->command_ok("leader $sick $sick_partition -1");

# first, one event alone, for the sick partition
my $log_from = -s $node->logfile;
my @waiting = enqueue($sick, 0, $sick_keys[0]);
ok( $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM outbox.held_topics
		 WHERE topic = '$sick' AND partition = $sick_partition}),
	'a lone event of the sick partition: the partition is held');
my $log = substr(slurp_file($node->logfile), $log_from);
unlike($log, qr/is broker_unreachable/, 'not reported as an outage');
unlike($log, qr/the cluster is slow/, 'nor as a slow cluster');
like($log, qr/partition $sick_partition of topic "$sick" is held aside/,
	'but as a held partition');

push @waiting, enqueue($sick, 1, @sick_keys);
my @flowing = (enqueue($sick, 1, @healthy_keys), enqueue($sick, 1, (undef) x 8));
my @other = enqueue($other, 1, map { "o$_" } 1 .. 10);

ok( $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM outbox.held_topics
		 WHERE topic = '$sick' AND partition = $sick_partition AND held_events = ${\ scalar @waiting}}),
	"partition $sick_partition alone is held, with its events");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM outbox.held_topics WHERE partition IS DISTINCT FROM $sick_partition"),
	'0', 'no whole topic is held');

my $seen = delivered($sick, \@healthy);
is(scalar(grep { !$seen->{$_} } @flowing), 0,
	"the topic's other partitions and its keyless events flowed");
$seen = delivered($other, [ 0, 1 ]);
is(scalar(grep { !$seen->{$_} } @other), 0, 'the other topic flowed');

# while the partition is held, new events flow at once: those of the sick
# partition join its queue
my @waiting2 = enqueue($sick, 2, @sick_keys);
my @flowing2 = (enqueue($sick, 2, @healthy_keys), enqueue($sick, 2, (undef) x 8));
my $flowed = poll_until(
	sub {
		my $s = delivered($sick, \@healthy);
		return !grep { !$s->{$_} } @flowing2;
	},
	30);
ok($flowed, 'events enqueued later flow while the partition is still held');
ok( $node->poll_query_until('postgres', qq{
		SELECT held_events = ${\ (@waiting + @waiting2)} FROM outbox.held_topics
		 WHERE topic = '$sick' AND partition = $sick_partition}),
	"and the sick partition's new events join its queue");
$seen = delivered($sick, \@healthy);
is(scalar(grep { $seen->{$_} } @waiting, @waiting2), 0,
	"no event of the sick partition's keys went to another partition");

# the leader is back: the queue drains, in order
$mock->command_ok("leader $sick $sick_partition 1");
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM outbox.held_topics'),
	'the partition is released');
ok(wait_until_published($node, 'postgres', 1), 'nothing is pending');

my @msgs = consume_all($mock->bootstrap, $sick);
my $r = check_delivery(\@msgs,
	expected => [ @waiting, @flowing, @waiting2, @flowing2 ]);
is($r->{missing}, 0, 'every event of the sick topic is delivered');
is($r->{order_violations}, 0, 'per key, in commit order')
  or diag join("\n", @{ $r->{order_diag} });
is(scalar(grep { $_->{partition} == $sick_partition && !defined $_->{key} } @msgs), 0,
	'no keyless event went to the sick partition');
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'nothing is dead-lettered');

# A partition that loses its leader while others of its chunk are
# acknowledged is held as soon as the cluster says it has no leader, not
# after stall_timeout (here far longer than the test): the relay asks when
# a chunk's acknowledgements stop short.  Until it did, the events
# committed meanwhile waited behind the chunk for stall_timeout (1 s by
# default; bench/sick_partition.sh measures what that did to p99).
$node->safe_psql('postgres', "ALTER SYSTEM SET outbox_kafka.stall_timeout = '10min'");
$node->reload;
ok( $node->poll_query_until('postgres',
		"SELECT setting = '600000' FROM pg_settings WHERE name = 'outbox_kafka.stall_timeout'"),
	'stall_timeout is 10 minutes');
my $second = 1;
my (@second_keys, @rest_keys);
for my $i (1 .. 200)
{
	my $key = "s$i";
	if (partition_for($key, 4) == $second) { push @second_keys, $key; }
	else { push @rest_keys, $key; }
	last if @second_keys >= 5 && @rest_keys >= 15;
}
$mock->command_ok("leader $sick $second -1");
my @waiting3 = enqueue($sick, 3, @rest_keys[0..4], @second_keys, @rest_keys[5..14]);
ok( $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM outbox.held_topics
		 WHERE topic = '$sick' AND partition = $second AND reason = 'the partition has no leader'}),
	"partition $second is held because it has no leader, long before stall_timeout");
my @others = grep { $_ != $second } 0 .. 3;
ok( poll_until(
		sub {
			my $s = delivered($sick, \@others);
			return scalar(grep { $s->{$_} } @waiting3) == 15;
		},
		30),
	"the chunk's events of the other partitions are delivered");
$mock->command_ok("leader $sick $second 1");
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM outbox.held_topics'),
	"partition $second is released");
ok(wait_until_published($node, 'postgres', 1), 'nothing is pending');
@msgs = consume_all($mock->bootstrap, $sick);
$r = check_delivery(\@msgs,
	expected => [ @waiting, @flowing, @waiting2, @flowing2, @waiting3 ]);
is($r->{missing}, 0, 'every event is delivered');
is($r->{order_violations}, 0, 'per key, in commit order')
  or diag join("\n", @{ $r->{order_diag} });

$node->stop;
$mock->stop;
done_testing();
