
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: a chunk of events to many topics the producer has not seen
# yet, while every broker is down.  The relay asks for a new topic's
# metadata before its first message (so that the first events of a topic
# do not wait for librdkafka's periodic refresh), waiting up to 500 ms.  It
# used to wait that long for every new topic, without serving signals or
# barriers: with 60 new topics a DROP DATABASE elsewhere (which waits for
# every backend to absorb a barrier), a reload or a fast shutdown waited
# about 30 s.  Once one request goes unanswered, no other waits for a
# while.  When the broker is back, every event is published.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $ntopics = 60;
my @topics = map { "fs.new.$_" } 1 .. $ntopics;
my $mock = start_mock(brokers => 1, topics => [ 'fs.new.warm:1', map { "$_:1" } @topics ]);
my $node = new_node('new_topics', bootstrap => $mock->bootstrap, poll_interval => '200ms');
$node->safe_psql('postgres', 'CREATE DATABASE other');

$node->safe_psql('postgres',
	"SELECT outbox.enqueue('fs.new.warm', '{\"warm\": 1}'::jsonb)");
ok(wait_until_published($node, 'postgres', 1), 'warm-up event published');

$mock->command_ok('broker_down 1');
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('fs.new.' || i, jsonb_build_object('i', i)) FROM generate_series(1, $ntopics) i"
);
# the relay is at work on the chunk (not asleep on its latch)
poll_until(
	sub {
		$node->safe_psql('postgres',
			q{SELECT wait_event IS NULL FROM pg_stat_activity WHERE backend_type = 'outbox_kafka worker'}
		) eq 't';
	},
	5);

my $t0 = time();
$node->safe_psql('postgres', 'DROP DATABASE other');
my $took = time() - $t0;
cmp_ok($took, '<', 5,
	sprintf('DROP DATABASE elsewhere is not held up by the relay (%.1f s)', $took));

$mock->command_ok('broker_up 1');
ok(wait_until_published($node, 'postgres', 1 + $ntopics),
	'once the broker is back every event is published');
my %got = map { $_ => scalar(consume_all($mock->bootstrap, $_)) } @topics;
is(scalar(grep { $got{$_} == 1 } @topics), $ntopics, 'each topic got its event, once');

$node->stop;
$mock->stop;
done_testing();
