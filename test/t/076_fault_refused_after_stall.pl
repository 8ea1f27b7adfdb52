
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: a topic that stalled (a partition without a leader) for
# longer than outbox_kafka.max_retry_time and only then is refused (not
# authorised) keeps its queue for max_retry_time from the first refusal.
# Stalled and unavailable topics wait for as long as it takes; only a topic
# Kafka refuses at every attempt for max_retry_time is given up.  The
# refusal used to be counted from when the topic was first held (and, once
# refused, for ever after), so the whole queue was dead-lettered at the
# first refusal.  Here a producer rebuild (a settings change) purges the
# stalled events, and the lane's next attempt meets the refusal.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $topic = 'fs.refused.late';
my $ok = 'fs.refused.ok';
my $retry_s = 3;
my $mock = start_mock(topics => [ "$topic:1", "$ok:1" ]);
my $node = new_node(
	'refused_late',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => qq{
outbox_kafka.max_retry_time = '${retry_s}s'
outbox_kafka.stall_timeout = '1s'
});

$mock->command_ok("leader $topic 0 -1");
$node->safe_psql('postgres', qq{
	SELECT outbox.enqueue('$topic', jsonb_build_object('n', i), key => 'k') FROM generate_series(1, 3) i;
	SELECT outbox.enqueue('$ok', '{"n": 1}'::jsonb, key => 'k');
});
# held as unavailable (the relay asked for the partition's leader, there
# is none) or as stalled; either way not refused
ok( $node->poll_query_until(
		'postgres',
		"SELECT held_events = 3 AND error_class IN ('stalled', 'topic unavailable')
		        AND now() - held_since > interval '${retry_s}s' + interval '1s'
		   FROM outbox.held_topics WHERE topic = '$topic'"),
	"the stalled topic has been held for longer than max_retry_time (${retry_s} s)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'a stalled topic is not given up');

# Kafka now refuses the topic; a new producer purges what was in flight
$mock->command_ok("topic_error $topic TOPIC_AUTHORIZATION_FAILED");
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'linger.ms=2'");
$node->reload;
my $refusal_seen = poll_until(
	sub {
		$node->safe_psql('postgres',
			"SELECT (SELECT count(*) FROM outbox.dead_letters) > 0
			     OR EXISTS (SELECT FROM outbox.held_topics WHERE topic = '$topic' AND error_class = 'topic refused')"
		) eq 't' ? time() : 0;
	});
ok($refusal_seen, 'the relay sees the refusal');
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'a topic refused just now keeps its queue, however long it was held');

my $dead_at = poll_until(
	sub {
		$node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters') eq '3'
		  ? time() : 0;
	});
ok($dead_at, 'refused at every attempt, its queue is dead-lettered');
cmp_ok($dead_at - $refusal_seen, '>=', $retry_s - 1,
	sprintf('... about max_retry_time after the first refusal (%.1f s)', $dead_at - $refusal_seen));

$node->stop;
$mock->stop;
done_testing();
