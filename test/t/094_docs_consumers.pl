# Copyright (c) 2026, outbox_kafka developers
#
# docs/consumers.md stays true:
#
# - the message format it describes: key, value, headers in their order
#   (outbox-id, outbox-event-id, outbox-created-at in UTC, content-type for JSON only, the
#   caller's headers, a null-valued header), tombstones, re-queued dead
#   letters with outbox-requeued-from, capture envelopes (a key change
#   publishes a delete under the old key first);
# - its kafkajs consumer, taken from the page as it is (broker address and
#   group id substituted), charges every order once, skips the tombstone,
#   and a replay from the beginning in a new consumer group charges nobody
#   twice (the processed_events table of the page's SQL example).
#   Skipped when the NestJS example's node_modules (kafkajs, pg) are absent.
use strict;
use warnings;

use Cwd qw(abs_path);
use FindBin;
use lib $FindBin::Bin;

use IPC::Run;
use JSON::PP;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = abs_path("$FindBin::Bin/../..");


my $mock = start_mock(
	brokers => 1,
	topics => [ 'order.created:1', 'customers.changes:1', 'misc:1' ]);
my $node = new_node('consumers', bootstrap => $mock->bootstrap,
	poll_interval => '100ms');

# --- the message format ------------------------------------------------------

$node->safe_psql('postgres', q{
	SELECT outbox.enqueue('misc', '{"b": 2, "a": 1}'::jsonb, key => 'k1',
	                      headers => '{"trace-id": "t1", "source": "orders-db", "empty": null}');
	SELECT outbox.enqueue('misc', 'plain text', key => 'k1');
	SELECT outbox.enqueue('misc', '\x00ff'::bytea);
	SELECT outbox.enqueue('misc', NULL::jsonb, key => 'k1');
	-- a dead letter, re-queued
	INSERT INTO outbox.dead_letters (id, topic, key, payload, payload_kind, headers,
	                                 created_at, attempts, error)
	VALUES (1000, 'misc', 'k2', convert_to('{"late": true}', 'UTF8'), 'j',
	        '{"trace-id": "t2"}', now(), 1, 'MSG_SIZE_TOO_LARGE');
	SELECT outbox.requeue_dead_letters();
	CREATE TABLE customers (id bigint PRIMARY KEY, name text, tier text);
	CREATE TRIGGER customers_outbox AFTER INSERT OR UPDATE OR DELETE ON customers
	    FOR EACH ROW EXECUTE FUNCTION outbox.capture('customers.changes', 'id');
	INSERT INTO customers VALUES (7, 'Ada', 'silver');
	UPDATE customers SET tier = 'gold' WHERE id = 7;
	UPDATE customers SET id = 8 WHERE id = 7;
	DELETE FROM customers WHERE id = 8;
});
ok(wait_until_published($node, 'postgres', 9), 'published');

my @misc = consume_all($mock->bootstrap, 'misc');
is(scalar(@misc), 5, 'five messages on misc');
my $iso_utc = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?\+00:00$/;
my @names = map { [ map { $_->[0] } @{ $_->{headers} } ] } @misc;

is($misc[0]->{key}, 'k1', 'key as given');
is($misc[0]->{payload}, '{"a": 1, "b": 2}', 'jsonb value as jsonb prints it');
is_deeply($names[0],
	[ 'outbox-id', 'outbox-event-id', 'outbox-created-at', 'content-type', 'empty', 'source', 'trace-id' ],
	'headers: outbox-id, outbox-event-id, outbox-created-at, content-type, then the caller\'s in jsonb order');
is(header_value($misc[0], 'outbox-id'), '1', 'outbox-id is the event id in decimal');
like(header_value($misc[0], 'outbox-event-id'),
	qr/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
	'outbox-event-id is a UUIDv7 in its 36-character form');
is(scalar(keys %{ { map { (header_value($_, 'outbox-event-id') => 1) } @misc } }), 5,
	'one outbox-event-id per event');
like(header_value($misc[0], 'outbox-created-at'), $iso_utc,
	'outbox-created-at is ISO 8601 in UTC');
is(header_value($misc[0], 'content-type'), 'application/json', 'content-type for JSON');
is(header_value($misc[0], 'empty'), undef, 'a JSON null header value is a null header');
is(header_value($misc[0], 'trace-id'), 't1', 'caller\'s header value');

is($misc[1]->{payload}, 'plain text', 'text value');
is_deeply($names[1], [ 'outbox-id', 'outbox-event-id', 'outbox-created-at' ], 'no content-type for text');
is($misc[2]->{payload}, "\x00\xff", 'bytea value as given');
is($misc[2]->{key}, undef, 'no key');
is($misc[3]->{payload}, undef, 'tombstone: null value');
is($misc[3]->{key}, 'k1', 'tombstone: with its key');
is_deeply($names[3], [ 'outbox-id', 'outbox-event-id', 'outbox-created-at' ], 'tombstone: no content-type');

is(header_value($misc[4], 'outbox-requeued-from'), '1000',
	're-queued dead letter: outbox-requeued-from is its old id');
is(header_value($misc[4], 'outbox-id'), '5', 're-queued dead letter: a new outbox-id');
is(header_value($misc[4], 'trace-id'), 't2', 're-queued dead letter: its headers kept');

my @cap = consume_all($mock->bootstrap, 'customers.changes');
my $json = JSON::PP->new;
my @env = map { $json->decode($_->{payload}) } @cap;
is(join(' ', map { ($_->{key} // '-') . ':' . $env[$_->{i}]->{op} }
	  map { { %{ $cap[$_] }, i => $_ } } 0 .. $#cap),
	'7:c 7:u 7:d 8:u 8:d',
	'capture: insert, update, key change as delete of the old key then update, delete');
is_deeply([ sort keys %{ $env[0] } ], [ sort qw(op schema table before after ts) ],
	'capture: the envelope\'s fields');
is_deeply([ $env[1]->{before}{tier}, $env[1]->{after}{tier} ], [ 'silver', 'gold' ],
	'capture: before and after rows');
is($env[4]->{after}, undef, 'capture: after is null for a delete');
is(header_value($cap[0], 'content-type'), 'application/json', 'capture: JSON');

# --- the kafkajs consumer of the page ---------------------------------------

my $example = "$top/examples/nestjs-orders";
# the orders both consumers read: 1..5 and a tombstone for 3, then order 6
my $first_orders = q{
	SELECT outbox.enqueue('order.created',
	                      jsonb_build_object('orderId', n, 'amount', n * 10),
	                      key => n::text)
	  FROM generate_series(1, 5) n;
	SELECT outbox.enqueue('order.created', NULL::jsonb, key => '3');
};
my $order6 = q{
	SELECT outbox.enqueue('order.created', '{"orderId": 6, "amount": 60}'::jsonb, key => '6')};
my $orders_enqueued = 0;
SKIP:
{
	skip 'node or the NestJS example\'s node_modules (kafkajs, pg) are missing', 6
	  unless -d "$example/node_modules/kafkajs" && -d "$example/node_modules/pg"
	  && grep { -x "$_/node" } split /:/, $ENV{PATH};

	my $doc = slurp_file("$top/docs/consumers.md");
	my ($js) = $doc =~ /^```js\n(.*?)^```/ms;
	my ($sql) = $doc =~ /^```sql\n(CREATE TABLE processed_events.*?)^```/ms;
	ok($js && $sql, 'consumers.md has the kafkajs consumer and its tables');

	$node->safe_psql('postgres', 'CREATE DATABASE billing');
	$node->safe_psql('billing', $sql);
	$node->safe_psql('billing', 'TRUNCATE processed_events, charges');

	my $bootstrap = $mock->bootstrap;
	my $tmp = PostgreSQL::Test::Utils::tempdir('consumer');
	local $ENV{NODE_PATH} = "$example/node_modules";
	local $ENV{KAFKAJS_NO_PARTITIONER_WARNING} = '1';
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'billing';
	local $ENV{PGUSER} = $node->safe_psql('postgres', 'SELECT current_user');

	my $run = sub {
		my ($group) = @_;
		(my $code = $js) =~ s/'kafka1:9092'/'$bootstrap'/g;
		$code =~ s/groupId: 'billing'/groupId: '$group'/;
		my $file = "$tmp/$group.js";
		open(my $fh, '>', $file) or die;
		print $fh $code;
		close $fh;
		my $log = "$file.log";
		my $h = IPC::Run::start([ 'node', $file ], '<', \undef, '>&', $log);
		return ($h, $log);
	};

	$node->safe_psql('postgres', $first_orders);
	$orders_enqueued = 5;
	my ($h, $out) = $run->('billing');
	ok( $node->poll_query_until('billing',
			'SELECT count(*) = 6 FROM processed_events'),
		'the kafkajs consumer records every outbox-event-id, the tombstone included')
	  or diag slurp_file($out);
	is($node->safe_psql('billing',
			q{SELECT string_agg(order_id || ':' || amount, ' ' ORDER BY order_id) FROM charges}),
		'1:10 2:20 3:30 4:40 5:50', 'and charges each order once (none for the tombstone)');
	$h->kill_kill(grace => 1);

	# a replay from the beginning in a new group: every message again
	($h, $out) = $run->('billing-replay');
	$node->safe_psql('postgres', $order6);
	$orders_enqueued = 6;
	ok( $node->poll_query_until('billing', 'SELECT count(*) = 6 FROM charges'),
		'replayed: the new order is charged after every older message was seen again')
	  or diag slurp_file($out);
	is($node->safe_psql('billing', 'SELECT count(*) FROM processed_events'),
		'7', 'each outbox-event-id recorded once');
	ok($h->pumpable, 'the consumer took the redeliveries without failing') or diag slurp_file($out);
	$h->kill_kill(grace => 1);
}

# --- the confluent-kafka (librdkafka) consumer of the page ---------------------

my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
SKIP:
{
	skip 'python3-confluent-kafka and python3-psycopg are not installed', 3
	  unless system($python, '-c', 'import confluent_kafka, psycopg') == 0;

	my $doc = slurp_file("$top/docs/consumers.md");
	my ($py) = $doc =~ /^```python\n(.*?)^```/ms;
	my ($sql) = $doc =~ /^```sql\n(CREATE TABLE processed_events.*?)^```/ms;
	ok($py, 'consumers.md has the confluent-kafka consumer');

	$node->safe_psql('postgres', 'CREATE DATABASE billing_py');
	$node->safe_psql('billing_py', $sql);
	$node->safe_psql('billing_py', 'TRUNCATE processed_events, charges');

	# without node the kafkajs part did not put the orders in the topic
	$node->safe_psql('postgres', $first_orders) if $orders_enqueued < 5;
	$node->safe_psql('postgres', $order6) if $orders_enqueued < 6;

	my $bootstrap = $mock->bootstrap;
	(my $code = $py) =~ s/"kafka1:9092"/"$bootstrap"/g;
	# a group of its own: the kafkajs runs above committed "billing"'s offsets
	$code =~ s/"group.id": "billing"/"group.id": "billing-python"/;
	my $file = PostgreSQL::Test::Utils::tempdir('consumer_py') . '/consumer.py';
	open(my $fh, '>', $file) or die;
	print $fh $code;
	close $fh;

	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'billing_py';
	local $ENV{PGUSER} = $node->safe_psql('postgres', 'SELECT current_user');
	my $log = "$file.log";
	my $h = IPC::Run::start([ $python, $file ], '<', \undef, '>&', $log);
	# the topic holds orders 1..6 (twice charged by nobody) and a tombstone
	ok( $node->poll_query_until('billing_py',
			'SELECT count(*) = 7 FROM processed_events'),
		'the confluent-kafka consumer records every outbox-event-id')
	  or diag slurp_file($log);
	is($node->safe_psql('billing_py',
			q{SELECT string_agg(order_id || ':' || amount, ' ' ORDER BY order_id) FROM charges}),
		'1:10 2:20 3:30 4:40 5:50 6:60', 'and charges each order once');
	$h->kill_kill(grace => 1);
}

$node->stop;
$mock->stop;
done_testing();
