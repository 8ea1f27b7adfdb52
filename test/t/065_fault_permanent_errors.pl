
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: permanent errors on Produce requests (INVALID_RECORD, as a
# broker refusing a batch for one record) under a steady stream (G1, G6).
# Kafka gives such an error to every record of the batch, so the relay
# believes it only of an event produced alone: the events of a refused
# batch are tried alone first, and only those that fail alone, while the
# broker refuses everything, are dead-lettered; once it stops refusing,
# the rest are delivered.  Only the dead-lettered events are missing, every other event is
# delivered in per-key order (a dead-lettered event leaves a gap in its
# key), and outbox.requeue_dead_letters() publishes the dead letters.
# With enable.gapless.guarantee a refused batch makes the producer fatal:
# it is rebuilt and what was in flight is produced again, so duplicates
# are bounded by the events in flight (one chunk), as G4 allows.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use FaultStream;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my @topics = ('fs.perm.a', 'fs.perm.b');
my $mock = start_mock(topics => [ map { "$_:3" } @topics ]);
# One request in flight per connection: librdkafka's mock cluster does not
# check the sequence numbers of an idempotent producer, so with several in
# flight it writes a later request after refusing an earlier one of the
# same partition, which Apache Kafka never does (it refuses the later one
# as out of order); the relay then sees the later event purged by the
# rebuild and produces it again, and the key's first deliveries look out
# of order.  The relay's own handling is what this test is about.  One
# request in flight makes that rare, not impossible (a refused request's
# successor is sent once the refusal is in, before the relay rebuilds its
# producer): such a copy, written by the mock and produced again in order
# by the relay, leaves the order check (superseded_ok), and the figures
# count it.
my $node = new_node(
	'permanent',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf =>
	  "outbox_kafka.producer_properties = 'max.in.flight.requests.per.connection=1'\n");

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');
$mock->command_ok('produce_errors 1000000 INVALID_RECORD');
ok( $fs->wait_for(
		sub {
			$node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters') > 0;
		},
		30),
	'events refused even when produced alone are dead-lettered');
$mock->command_ok('clear_produce_errors');
ok($fs->grow(300, 30), 'the stream keeps flowing');
$fs->stop;
my $r = $fs->verify(dead_letters => 1, max_duplicates => 5000, superseded_ok => 1,
	name => 'permanent errors');
note 'figures: ' . FaultStream::figures($r);
my $dl = $node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters');
ok($dl > 0 && $dl == $r->{dead_lettered},
	"only the events not delivered are dead-lettered ($dl dead letters, $r->{dead_lettered} events undelivered)");
like($node->safe_psql('postgres', 'SELECT string_agg(DISTINCT error, \'; \') FROM outbox.dead_letters'),
	qr/INVALID_RECORD|invalid record|corrupt/i, 'dead letters carry the broker error');

my $n = $node->safe_psql('postgres', 'SELECT outbox.requeue_dead_letters()');
is($n, $dl, "requeue_dead_letters() re-enqueued $n events");
my $r2 = $fs->verify(requeued => 1, max_duplicates => 5000, superseded_ok => 1,
	name => 'after requeue');
is($r2->{requeued}, $dl, 'every requeued event delivered under a new outbox-id');
note 'figures after requeue: ' . FaultStream::figures($r2);

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
