
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: one held topic that stalls for good must not keep the other
# held topics waiting (G6).  The lane works the queues of held topics one
# chunk at a time; with message.timeout.ms=0 a chunk to a partition without
# a leader stays in flight for ever, and the lane used to wait for it, so a
# second held topic whose trouble was over was never tried again.  Now a
# lane chunk unacknowledged for stall_timeout is set aside (its reports are
# settled whenever they come) and the lane goes on with the other topics.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $stalled = 'fs.lane.stalled';
my $healed = 'fs.lane.healed';
my $mock = start_mock(topics => [ "$stalled:1", "$healed:1" ]);
my $node = new_node(
	'lane_stall',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => "outbox_kafka.stall_timeout = '1s'\n");

# enqueue_some($topic, $n): $n events of one key, in one transaction
sub enqueue_some
{
	my ($topic, $n) = @_;
	$node->safe_psql('postgres',
		"SELECT outbox.enqueue('$topic', jsonb_build_object('n', i), key => 'k') FROM generate_series(1, $n) i"
	);
	return;
}

# Both topics are held because Kafka does not know them; the one to stall
# has no leader for its only partition either.
$mock->command_ok("topic_error $healed UNKNOWN_TOPIC_OR_PART");
$mock->command_ok("topic_error $stalled UNKNOWN_TOPIC_OR_PART");
$mock->command_ok("leader $stalled 0 -1");
enqueue_some($healed, 5);
enqueue_some($stalled, 5);
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 2 FROM outbox.held_topics WHERE held_events = 5"),
	'both topics are held');

# Kafka knows the stalled topic again: the lane's next attempt at its queue
# goes to the partition without a leader and stays in flight for ever.
# Once it is unacknowledged for stall_timeout, outbox.held_topics says the
# topic stalls (no longer that Kafka does not know it): the lane has sent
# its queue, and that chunk is in flight.  (Before the fix the lane waited
# for it and said nothing: then this fails, and so does what follows.)
$mock->command_ok("topic_error $stalled NONE");
ok( $node->poll_query_until(
		'postgres',
		"SELECT error_class = 'stalled' FROM outbox.held_topics WHERE topic = '$stalled'"),
	'the lane has sent the stalled topic\'s queue, and it stalls')
  or diag $node->safe_psql('postgres',
	'SELECT * FROM outbox.held_topics ORDER BY topic');

# the first topic's trouble is over: its queue must flow although the
# lane's chunk of the stalled topic is still in flight
$mock->command_ok("topic_error $healed NONE");
ok( $node->poll_query_until(
		'postgres',
		"SELECT NOT EXISTS (SELECT FROM outbox.held_topics WHERE topic = '$healed')"),
	'the healed topic is released while the other still stalls');
my @healed = consume_all($mock->bootstrap, $healed);
is(join(',', map { $_->{payload} =~ /"n": (\d+)/ ? $1 : '?' } @healed),
	'1,2,3,4,5', 'its events are in Kafka, once each, in order');
is($node->safe_psql('postgres',
		"SELECT held_events FROM outbox.held_topics WHERE topic = '$stalled'"),
	'5', 'the stalled topic still holds its events');
# nothing else to do: outbox.status must not say idle
ok( $node->poll_query_until(
		'postgres',
		q{SELECT state = 'holding' AND problem LIKE '%held topics wait%' AND held_events = 5
		    FROM outbox.status}),
	'outbox.status says the relay is holding events, not idle')
  or diag explain outbox_status($node, 'postgres');

# the partition gets a leader again: the stalled events follow, once each
$mock->command_ok("leader $stalled 0 1");
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 0 FROM outbox.held_topics'),
	'once it has a leader again, the stalled topic is released');
my @stalled = consume_all($mock->bootstrap, $stalled);
is(join(',', map { $_->{payload} =~ /"n": (\d+)/ ? $1 : '?' } @stalled),
	'1,2,3,4,5', 'its events are in Kafka, once each, in order');
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'nothing was dead-lettered');

$node->stop;
$mock->stop;
done_testing();
