
# Copyright (c) 2026, outbox_kafka developers

# Poison events do not block the stream (G6): a message Kafka refuses as
# too large goes to outbox.dead_letters with the reason, later events keep
# flowing, and outbox.requeue_dead_letters() publishes it once the limit
# allows.  Two ways: the broker refuses it (injected MSG_SIZE_TOO_LARGE),
# and the producer refuses it (message.max.bytes below the event's size).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.dl';
my $mock = start_mock(topics => ["$topic:2"]);
my $node = new_node(
	'deadletter',
	bootstrap => $mock->bootstrap,
	poll_interval => '100ms');

sub enqueue
{
	my ($payload_sql, $key) = @_;
	$key = defined $key ? "'$key'" : 'NULL';
	return $node->safe_psql('postgres',
		"SELECT outbox.enqueue('$topic', $payload_sql, key => $key)");
}

sub status { return outbox_status($node, 'postgres'); }

# warm-up: producer connected, one event published
my $warm = enqueue(q{'{"warmup": 1}'::jsonb});
ok(wait_until_published($node, 'postgres', 1), 'warm-up event published');

# --- (a) the broker refuses the message ---------------------------------------
$mock->command_ok('produce_errors 1 MSG_SIZE_TOO_LARGE');
my $poison = enqueue(q{'{"poison": "broker"}'::jsonb}, 'pk');

ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM outbox.dead_letters WHERE id = $poison"),
	'event refused by the broker as too large is in outbox.dead_letters');
my $dl = $node->safe_psql('postgres',
	"SELECT topic, key, convert_from(payload, 'UTF8'), error FROM outbox.dead_letters WHERE id = $poison"
);
my ($dl_topic, $dl_key, $dl_payload, $dl_error) = split /\|/, $dl, 4;
is($dl_topic, $topic, 'dead letter keeps the topic');
is($dl_key, 'pk', 'dead letter keeps the key');
like($dl_payload, qr/"poison": "broker"/, 'dead letter keeps the payload');
like($dl_error, qr/too large|MSG_SIZE_TOO_LARGE/i,
	"dead letter says why: $dl_error");

my $next = enqueue(q{'{"after": "broker poison"}'::jsonb}, 'pk');
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 AND events_dead_lettered = 1 AND dead_letters = 1 FROM outbox.status"),
	'outbox.status: nothing pending, events_dead_lettered = 1, dead_letters = 1')
  or diag explain status();
like(status()->{last_error} // '', qr/too large/i,
	'outbox.status last_error tells about the refused event');

my @msgs = consume_all($mock->bootstrap, $topic);
my $by_id = by_outbox_id(@msgs);
ok($by_id->{$next}, 'the event enqueued after the poison one is delivered');
ok(!$by_id->{$poison}, 'the refused event is not in Kafka');
is(scalar(@{ $by_id->{$warm} // [] }), 1, 'the warm-up event was not published again');

# --- (b) the producer refuses the message (message.max.bytes) -----------------
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'message.max.bytes=20000'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
# the producer is rebuilt with the new setting once idle; an event shows when
my $probe = enqueue(q{'{"probe": 1}'::jsonb});
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 FROM outbox.status"),
	'small event published with message.max.bytes = 20000');
$node->wait_for_log(qr/recreates its Kafka producer: settings changed/,
	$log_offset);

my $big = enqueue(q{repeat('x', 50000)::text}, 'big');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM outbox.dead_letters WHERE id = $big"),
	'a 50 000-byte event above message.max.bytes is dead-lettered');
$dl_error = $node->safe_psql('postgres',
	"SELECT error FROM outbox.dead_letters WHERE id = $big");
like($dl_error, qr/too large/i, "dead letter says why: $dl_error");
is($node->safe_psql('postgres',
		"SELECT length(payload) FROM outbox.dead_letters WHERE id = $big"),
	'50000', 'the dead letter keeps the whole payload');

my $small = enqueue(q{'{"after": "too large"}'::jsonb}, 'big');
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 AND events_dead_lettered = 2 AND dead_letters = 2 FROM outbox.status"),
	'outbox.status: nothing pending, 2 events dead-lettered, 2 dead letters')
  or diag explain status();
@msgs = consume_all($mock->bootstrap, $topic);
$by_id = by_outbox_id(@msgs);
ok($by_id->{$small}, 'the small event enqueued afterwards is delivered');
ok(!$by_id->{$big}, 'the big event is not in Kafka');

# --- requeue after lifting the limit --------------------------------------------
$log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET outbox_kafka.producer_properties');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$probe = enqueue(q{'{"probe": 2}'::jsonb});
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 FROM outbox.status"),
	'event published after resetting producer_properties');
$node->wait_for_log(qr/recreates its Kafka producer: settings changed/,
	$log_offset);

is($node->safe_psql('postgres', 'SELECT outbox.requeue_dead_letters()'),
	'2', 'requeue_dead_letters() re-enqueues both dead letters');
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'outbox.dead_letters is empty after the requeue');
ok($node->poll_query_until('postgres',
		"SELECT pending_events = 0 AND dead_letters = 0 FROM outbox.status"),
	'requeued events published');

@msgs = consume_all($mock->bootstrap, $topic);
my @big = grep { defined $_->{payload} && $_->{payload} eq ('x' x 50000) } @msgs;
is(scalar(@big), 1, 'the 50 000-byte event is in Kafka once after the requeue');
is($big[0]{key}, 'big', 'with its key') if @big;
my @poison = grep {
	defined $_->{payload} && $_->{payload} =~ /"poison": "broker"/
} @msgs;
is(scalar(@poison), 1, 'the event the broker refused is in Kafka once after the requeue');
is($poison[0]{key}, 'pk', 'with its key') if @poison;
is(header_value($poison[0], 'content-type'), 'application/json',
	'a requeued JSON event is still published as application/json') if @poison;

my $st = status();
is($st->{events_dead_lettered}, 2, 'events_dead_lettered stays 2');
is($st->{state}, 'idle', 'worker idle');

$node->stop;
$mock->stop;
done_testing();
