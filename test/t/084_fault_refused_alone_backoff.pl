
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: a broker that refuses every record for what it is
# (INVALID_RECORD) makes the relay try each event of the refused batch
# alone, and each refusal is a gap that makes the producer fatal
# (enable.gapless.guarantee): a producer rebuild (or two, when the fatal
# error purges the refusal's report) per event.  Each event dead-lettered
# is progress, and progress ends the back-offs (relay_note_progress):
# the next rebuild and retry wait the least again.  Both back-offs used to
# double at each round (100 ms, 200 ms, ... 30 s and 10 s), since they
# ended only when a producer delivered or a chunk was done:
# dead-lettering a chunk of n such events took about 100 ms * 2^n (test
# 065 timed out under load).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'fs.refused.alone';
my $n = 8;
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node('refused_alone', bootstrap => $mock->bootstrap,
	poll_interval => '200ms');

ok(wait_until_published($node, 'postgres', 0), 'the relay runs');
my $log_from = -s $node->logfile;
$mock->command_ok('produce_errors 1000000 INVALID_RECORD');
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', jsonb_build_object('n', i), key => 'k' || i) FROM generate_series(1, $n) i"
);
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = $n FROM outbox.dead_letters"),
	"the $n events, refused alone, are dead-lettered");

my $log = substr(slurp_file($node->logfile), $log_from);
my @waits = $log =~ /recreates its Kafka producer in (\d+) ms/g;
cmp_ok(scalar(@waits), '>=', $n, "a producer rebuild per event refused alone (" . scalar(@waits) . ")");
# after each dead letter the back-off starts from 100 ms again; the
# attempt whose report the fatal error purged waits one step more (200)
is(join(',', grep { $_ > 200 } @waits), '',
	'the rebuilds\' back-off does not grow with the events dead-lettered (at most 200 ms)');

# the broker takes records again: a new event is published
$mock->command_ok('clear_produce_errors');
$node->safe_psql('postgres', "SELECT outbox.enqueue('$topic', '{\"n\": 0}'::jsonb, key => 'k0')");
ok(wait_until_published($node, 'postgres', 1), 'a later event is published');
my @msgs = consume_all($mock->bootstrap, $topic);
is(join(',', map { $_->{key} } @msgs), 'k0', 'only it is in Kafka');

$node->stop;
$mock->stop;
done_testing();
