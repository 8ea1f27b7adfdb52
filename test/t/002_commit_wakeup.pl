
# Copyright (c) 2026, outbox_kafka developers

# A commit wakes the relay: with outbox_kafka.poll_interval = 1h an event
# is published well under a second after COMMIT.  An event of a transaction
# that is still open is not published, and goes out promptly once it
# commits.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $topic = 't.wake';
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'wakeup',
	bootstrap => $mock->bootstrap,
	poll_interval => '1h');

# Warm up: the first event also creates the producer and connects it.
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"warmup\": true}'::jsonb)");
ok(wait_until_published($node, 'postgres', 1), 'warm-up event published');

my $mon = $node->background_psql('postgres');
my $app = $node->background_psql('postgres');

# Poll outbox.status through the monitoring session until $cond holds or
# $limit seconds pass; returns the seconds elapsed since $t0 when it held,
# or undef.
sub time_until
{
	my ($cond, $t0, $limit) = @_;
	while (1)
	{
		my $r = $mon->query_safe("SELECT $cond FROM outbox.status");
		return time() - $t0 if $r eq 't';
		return undef if time() - $t0 > $limit;
		usleep(5_000);
	}
}

sub published
{
	return $mon->query_safe('SELECT events_published FROM outbox.status');
}

my @ids;
for my $i (1 .. 5)
{
	ok(defined time_until("state = 'idle'", time(), 10), "round $i: worker idle")
	  or diag explain outbox_status($node, 'postgres');
	my $before = published();
	my $t0 = time();
	push @ids,
	  $app->query_safe(
		"SELECT outbox.enqueue('$topic', jsonb_build_object('round', $i), key => 'k')");
	my $dt = time_until("pending_events = 0 AND events_published > $before",
		$t0, 10);
	ok(defined $dt && $dt < 1.0,
		sprintf("round %d: published %.0f ms after commit (poll_interval is 1h)",
			$i, 1000 * ($dt // 99)));
}

my @msgs = consume_all($mock->bootstrap, $topic);
my $by_id = by_outbox_id(@msgs);
is(scalar(grep { $by_id->{$_} && @{ $by_id->{$_} } == 1 } @ids),
	5, 'the five events are in Kafka, once each');

# An event of an open transaction is not published ...
$app->query_safe('BEGIN');
my $open_id = $app->query_safe(
	"SELECT outbox.enqueue('$topic', '{\"open\": true}'::jsonb, key => 'k')");
# ... even when the relay publishes an event committed after it was enqueued
my $before = published();
my $later_id = $node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"later\": true}'::jsonb, key => 'other')");
ok(defined time_until("pending_events = 0 AND events_published > $before",
		time(), 10),
	'an event committed meanwhile is published');

@msgs = consume_all($mock->bootstrap, $topic);
$by_id = by_outbox_id(@msgs);
ok($by_id->{$later_id}, 'the later committed event is in Kafka');
ok(!$by_id->{$open_id}, 'the event of the open transaction is not in Kafka');
ok(defined time_until("state = 'idle' AND pending_events = 0", time(), 10),
	'the worker goes idle while the transaction stays open');
ok(!by_outbox_id(consume_all($mock->bootstrap, $topic))->{$open_id},
	'the event of the open transaction is still not in Kafka');

# ... and goes out promptly at COMMIT (it is older than the tick that
# published the later event: it must not be skipped).
$before = published();
my $t0 = time();
$app->query_safe('COMMIT');
my $dt = time_until("pending_events = 0 AND events_published > $before",
	$t0, 10);
ok(defined $dt && $dt < 1.0,
	sprintf("event of the long transaction published %.0f ms after its COMMIT",
		1000 * ($dt // 99)));

@msgs = consume_all($mock->bootstrap, $topic);
$by_id = by_outbox_id(@msgs);
is(scalar(@{ $by_id->{$open_id} // [] }), 1,
	'the event of the long transaction is in Kafka once');

# A rolled-back event is never published, and its rollback does not hold
# anything back.
$app->query_safe('BEGIN');
my $rolled_back = $app->query_safe(
	"SELECT outbox.enqueue('$topic', '{\"rolled_back\": true}'::jsonb)");
$app->query_safe('ROLLBACK');
$before = published();
my $after_id = $node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"after\": true}'::jsonb)");
ok(defined time_until("pending_events = 0 AND events_published > $before",
		time(), 10),
	'event after a rollback published');
@msgs = consume_all($mock->bootstrap, $topic);
$by_id = by_outbox_id(@msgs);
ok(!$by_id->{$rolled_back}, 'rolled-back event not in Kafka');
ok($by_id->{$after_id}, 'event committed after it is in Kafka');
is(scalar(@msgs), 9, 'nine messages in all (warm-up, 5 rounds, 3 more)');

$app->quit;
$mon->quit;
$node->stop;
$mock->stop;
done_testing();
