
# Copyright (c) 2026, outbox_kafka developers

# A commit made while a chunk is in flight is not lost to the relay when
# the open batch is read on in more chunks.  The relay does not listen for
# commits while a chunk is in flight; it counts them when it goes to sleep
# and looks for new events once the batch is done.  Reading the next chunk
# of the same batch used to reset that count, so an event committed while
# the first chunk was in flight waited for outbox_kafka.poll_interval (1 h
# here).
#
# The first chunk (three large events, cut by max_batch_bytes) goes to
# three partitions led by brokers that answer after 0, 300 and 600 ms: the
# relay wakes for each acknowledgement, and counts the commit made meanwhile
# before it reads the second chunk.  With linger.ms=0 it never sleeps
# between chunks, and the second chunk (to the slowest broker) completes
# the batch long after the last progress save, which is then saved at once:
# no timer is left to make it look again.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.midbatch';
my $mock = start_mock(brokers => 3, topics => ["$topic:3"]);
my $node = new_node(
	'midbatch',
	bootstrap => $mock->bootstrap,
	poll_interval => '1h',
	extra_conf => qq{
outbox_kafka.max_batch_bytes = '64kB'
outbox_kafka.producer_properties = 'linger.ms=0'
});

# a key for each partition
my %key_of;
for (my $i = 0; keys %key_of < 3; $i++)
{
	my $p = partition_for("k$i", 3);
	$key_of{$p} //= "k$i";
}
$mock->command_ok("leader $topic $_ " . ($_ + 1)) for 0 .. 2;

$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"warmup\": true}'::jsonb, key => '$key_of{$_}')")
  for 0 .. 2;
ok(wait_until_published($node, 'postgres', 3), 'warm-up events published');

my $mon = $node->background_psql('postgres');
my $app = $node->background_psql('postgres');
ok( poll_until(
		sub { $mon->query_safe('SELECT state FROM outbox.status') eq 'idle' }),
	'relay idle');

$mock->command_ok('rtt 2 300');
$mock->command_ok('rtt 3 600');
# 22 kB each: the first three make one chunk (64 kB), the fourth another
$app->query_safe(
	"SELECT outbox.enqueue('$topic', repeat('x', 22000), key => k)
	   FROM unnest(ARRAY['$key_of{0}', '$key_of{1}', '$key_of{2}', '$key_of{2}']) WITH ORDINALITY AS u(k, n)
	  ORDER BY n");
ok( poll_until(
		sub { $mon->query_safe('SELECT state FROM outbox.status') eq 'publishing' }),
	'the relay publishes the first chunk of the batch');
$app->query_safe(
	"SELECT outbox.enqueue('$topic', '{\"late\": true}'::jsonb, key => 'late')");

ok( poll_until(
		sub {
			$mon->query_safe(
				'SELECT events_published = 8 AND pending_events = 0 FROM outbox.status'
			) eq 't';
		},
		30),
	'the event committed while a chunk was in flight is published after the batch, not after poll_interval'
) or diag explain outbox_status($node, 'postgres');

my $by_id = by_outbox_id(consume_all($mock->bootstrap, $topic));
is(scalar(keys %$by_id), 8, 'all eight events are in Kafka');

$mon->quit;
$app->quit;
$node->stop;
$mock->stop;
done_testing();
