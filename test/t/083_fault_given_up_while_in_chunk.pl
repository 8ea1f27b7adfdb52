
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: the lane gives up on a refused topic (max_retry_time) while
# the batch's current chunk still has events of that topic waiting to be
# recorded into its queue (G1, G3).  Recording the chunk used to put them
# into outbox.held_event under a re-created outbox.held_topic row that the
# relay no longer knew about: the lane never looked at that queue, later
# events of the topic went straight to Kafka, and the stranded ones would
# only follow them after a restart.  Now recording an event into a queue
# that is not held holds it again ("held behind earlier events of the
# topic"), so the lane publishes it, and later events follow it.
#
# The chunk is kept open deterministically: it also carries an event of a
# second topic whose only partition has no leader, so it stays in flight
# until the test gives that partition a leader again.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $refused = 'fs.giveup.refused';
my $slow = 'fs.giveup.slow';
my $mock = start_mock(brokers => 2, topics => [ "$refused:1", "$slow:1" ]);
$mock->command_ok("leader $refused 0 1");
$mock->command_ok("leader $slow 0 2");
my $node = new_node(
	'given_up_in_chunk',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => qq{
outbox_kafka.max_retry_time = '1s'
outbox_kafka.stall_timeout = '10min'
});

# enqueue([$topic, $payload], ...): the events, in this order, in one
# transaction (so in one batch, and one chunk)
sub enqueue
{
	my (@events) = @_;
	$node->safe_psql('postgres',
		join("\n",
			'BEGIN;',
			(map { "SELECT outbox.enqueue('$_->[0]', '$_->[1]'::jsonb, key => 'k');" }
			  @events),
			'COMMIT;'));
	return;
}

# Kafka refuses the topic: its first event is held, as refused
$mock->command_ok("topic_error $refused TOPIC_AUTHORIZATION_FAILED");
enqueue([ $refused, '{"n": 1}' ]);
ok( $node->poll_query_until(
		'postgres',
		"SELECT error_class = 'topic refused' FROM outbox.held_topics WHERE topic = '$refused'"),
	'the refused topic is held');

# A chunk with a second event of the held topic (marked held, to be
# recorded into its queue) and one of a topic without a leader (in flight
# until it gets one): the chunk cannot be recorded yet.
$mock->command_ok("leader $slow 0 -1");
enqueue([ $slow, '{"n": 1}' ], [ $refused, '{"n": 2}' ]);

# Refused at every attempt for max_retry_time, the topic is given up: its
# queue (the first event) is dead-lettered, while the second event still
# waits in the open chunk.
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) = 1 FROM outbox.dead_letters'),
	'the lane gives up on the refused topic');
is( $node->safe_psql(
		'postgres', "SELECT convert_from(payload, 'UTF8')::jsonb->>'n' FROM outbox.dead_letters"),
	'1',
	'... dead-lettering the event of its queue');

# Kafka takes the topic again, and the slow topic gets its leader back:
# the chunk is recorded, the second event goes into the topic's queue.
$mock->command_ok("topic_error $refused NONE");
$mock->command_ok("leader $slow 0 2");
ok( $node->poll_query_until(
		'postgres',
		"SELECT events_published >= 1 FROM outbox.status"),
	'the slow topic\'s event is published');

# a later event of the refused topic must come after the second one
enqueue([ $refused, '{"n": 3}' ]);
my @got;
poll_until(
	sub {
		@got = map { $_->{payload} =~ /"n": (\d+)/ ? $1 : '?' }
		  consume_all($mock->bootstrap, $refused);
		return grep { $_ eq '3' } @got;
	});
is(join(',', @got), '2,3',
	'the event recorded after the give-up is published, before the later one');
ok( $node->poll_query_until(
		'postgres',
		"SELECT NOT EXISTS (SELECT FROM outbox.held_topics)
		    AND pending_events = 0 FROM outbox.status"),
	'no queue is left behind, nothing is pending');
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'1', 'only the event of the given-up queue is dead-lettered');

$node->stop;
$mock->stop;
done_testing();
