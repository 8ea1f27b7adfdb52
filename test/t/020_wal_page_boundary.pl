
# Copyright (c) 2026, outbox_kafka developers

# With outbox_kafka.wait_for_standbys = on the relay must have WAL flushed
# up to the end of what was inserted before it publishes a chunk (G9).
# Right after a WAL switch the insert position is past the new segment's
# page header, where no record ends yet: flushing to it fails ("xlog flush
# request ... is not satisfied"), and no standby could ever confirm it.
# The relay then lost its producer and its batch, backed off and published
# again what it had published (duplicates without a crash).
#
# Each round lets one event go out, then commits a second one and switches
# WAL while the relay gathers commits (linger.ms), so that its next fetch
# meets the segment boundary.  Every event must go out once, with no error.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.walswitch';
my $rounds = 15;
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'walswitch',
	bootstrap => $mock->bootstrap,
	poll_interval => '1h',
	extra_conf => qq{
outbox_kafka.wait_for_standbys = on
outbox_kafka.producer_properties = 'linger.ms=300'
});

my $mon = $node->background_psql('postgres');
my $app = $node->background_psql('postgres');

# published_more_than($n): wait (polling every 5 ms, up to the default
# timeout) until the relay has published more than $n events
sub published_more_than
{
	my ($n) = @_;
	return poll_until(
		sub {
			$mon->query_safe('SELECT events_published FROM outbox.status') > $n;
		});
}

my $log_offset = -s $node->logfile;
my $published = 0;
for my $round (1 .. $rounds)
{
	$app->query_safe(
		"SELECT outbox.enqueue('$topic', jsonb_build_object('round', $round, 'n', 1))");
	ok(published_more_than($published), "round $round: first event published")
	  or last;
	$published++;

	# the relay now gathers for linger.ms before its next fetch
	$app->query_safe(
		"SELECT outbox.enqueue('$topic', jsonb_build_object('round', $round, 'n', 2))");
	$app->query_safe('SELECT pg_switch_wal()');
	ok(published_more_than($published),
		"round $round: the event committed before the WAL switch is published");
	$published++;
}

my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/xlog flush request|flush past end of generated WAL/,
	'the relay never asks to flush WAL past what was inserted');
unlike($log, qr/outbox_kafka worker for database "postgres" is backing_off/,
	'the relay never backs off after an error');

my $by_id = by_outbox_id(consume_all($mock->bootstrap, $topic));
is(scalar(keys %$by_id), 2 * $rounds, 'every event reached Kafka');
is(scalar(grep { @{ $by_id->{$_} } > 1 } keys %$by_id),
	0, 'none of them twice');

$mon->quit;
$app->quit;
$node->stop;
$mock->stop;
done_testing();
