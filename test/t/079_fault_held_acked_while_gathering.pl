
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: events of a topic held while they were in flight, and
# acknowledged while the relay gathers commits between chunks
# (linger.ms), are published once.  Recording the chunk puts them in the
# topic's queue; their acknowledgements must take them out again.  The
# chunk used to be kept for that only while some of them were still in
# flight when the relay read the next chunk: acknowledged during the pause,
# they stayed queued, and the lane sent them a second time (duplicates
# without any crash).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $sick = 'fs.gather.sick';
my $ok = 'fs.gather.ok';
my $mock = start_mock(topics => [ "$sick:1", "$ok:1" ]);
my $node = new_node(
	'held_gather',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => qq{
outbox_kafka.stall_timeout = '1s'
outbox_kafka.producer_properties = 'linger.ms=3000'
});

$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$ok', '{\"warm\": 1}'::jsonb, key => 'k')");
ok(wait_until_published($node, 'postgres', 1), 'warm-up event published');

# the sick topic's partition has no leader: its events stay in flight while
# the healthy topic's are acknowledged, and the topic is held
$mock->command_ok("leader $sick 0 -1");
$node->safe_psql('postgres', qq{
	SELECT outbox.enqueue('$sick', jsonb_build_object('n', i), key => 'k') FROM generate_series(1, 3) i;
	SELECT outbox.enqueue('$ok', jsonb_build_object('n', i), key => 'k') FROM generate_series(1, 3) i;
});
# the held queue appears when the chunk is recorded, as the 3 s pause begins
ok( $node->poll_query_until(
		'postgres', "SELECT held_events = 3 FROM outbox.held_topics WHERE topic = '$sick'"),
	'the stalled topic is held, its in-flight events queued');
# a leader again: the events in flight are acknowledged during the pause
$mock->command_ok("leader $sick 0 1");

ok( $node->poll_query_until(
		'postgres',
		"SELECT pending_events = 0 AND held_topics = 0 FROM outbox.status"),
	'the topic is released and nothing is pending');
my @n = map { $_->{payload} =~ /"n": (\d+)/ ? $1 : () } consume_all($mock->bootstrap, $sick);
is(join(',', @n), '1,2,3', 'each held event is in Kafka once, in order');
is($node->safe_psql('postgres', 'SELECT events_published FROM outbox.status'),
	'7', 'outbox.status counts each event once');

$node->stop;
$mock->stop;
done_testing();
