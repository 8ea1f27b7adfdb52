
# Copyright (c) 2026, outbox_kafka developers

# A batch handler, one taking outbox.inbox_message[], is called once per
# batch with the batch's messages that are not duplicates, in offset order
# per partition, and applies them all (PL/pgSQL and SQL handlers alike).
# Duplicates, in one batch or across batches, are not passed to it.  A
# poison message inside a batch makes the call fail: its effects are rolled
# back, the messages are applied again one at a time, the poison message
# is retried and dead-lettered after max_attempts, and every other message
# is applied exactly once.  A transient error of the call (serialization
# failure) retries the batch later without counting an attempt.  Functions
# of other signatures are refused.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use IPC::Run qw(run);
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'b.orders';
my $mock = start_mock(topics => ["$topic:4"]);
my $node = new_node('inbox_batch', bootstrap => $mock->bootstrap,
	extra_conf => "outbox_kafka.inbox_batch_size = 50\n");

$node->safe_psql('postgres', q{
CREATE TABLE effect (n bigserial PRIMARY KEY, subscription text, "partition" int,
                     "offset" bigint, key text, seq int, call bigint);
CREATE TABLE calls (subscription text, size int);
CREATE SEQUENCE call_no;
CREATE FUNCTION apply_batch(ms outbox.inbox_message[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c bigint := nextval('call_no');
BEGIN
    IF EXISTS (SELECT FROM unnest(ms) m
                WHERE convert_from(m.value, 'UTF8')::jsonb ? 'poison') THEN
        RAISE EXCEPTION 'cannot bill a poisoned order';
    END IF;
    INSERT INTO calls VALUES (ms[1].subscription, cardinality(ms));
    INSERT INTO effect (subscription, "partition", "offset", key, seq, call)
    SELECT m.subscription, m."partition", m."offset", convert_from(m.key, 'UTF8'),
           (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int, c
      FROM unnest(ms) WITH ORDINALITY AS m
     ORDER BY ordinality;
END
$$;
CREATE FUNCTION apply_batch_sql(ms outbox.inbox_message[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO calls VALUES (ms[1].subscription, cardinality(ms));
    INSERT INTO effect (subscription, "partition", "offset", key, seq)
    SELECT m.subscription, m."partition", m."offset", convert_from(m.key, 'UTF8'),
           (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int
      FROM unnest(ms) WITH ORDINALITY AS m
     ORDER BY ordinality;
$$;
SELECT outbox.grant_topic('postgres', 'b.*');
});

# --- signatures ----------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE FUNCTION wrong_type(n int) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION two_args(ms outbox.inbox_message[], n int) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION set_batch(ms outbox.inbox_message[]) RETURNS SETOF int
LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION text_array(ms text[]) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE PROCEDURE proc_batch(ms outbox.inbox_message[]) LANGUAGE sql AS 'SELECT';
});
foreach my $case (
	[ 'wrong_type(int)', '42883' ],
	[ 'two_args(outbox.inbox_message[],int)', '42883' ],
	[ 'set_batch(outbox.inbox_message[])', '42883' ],
	[ 'text_array(text[])', '42883' ],
	[ 'proc_batch(outbox.inbox_message[])', '42809' ])
{
	my ($fn, $state) = @$case;
	my ($ret, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT outbox.subscribe('bad', 'b.orders', '$fn')");
	like($err, qr/ERROR:\s+$state/, "a handler $fn is refused with SQLSTATE $state");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.inbox_subscription'), '0',
	'and nothing was subscribed');

$node->safe_psql('postgres', q{
SELECT outbox.subscribe('batch', 'b.orders', 'apply_batch(outbox.inbox_message[])', max_attempts => 2);
SELECT outbox.subscribe('batch_sql', 'b.orders', 'apply_batch_sql(outbox.inbox_message[])');
});

# --- all applied, in order, set-wise ------------------------------------------
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('b.orders', jsonb_build_object('seq', i), key => 'k' || (i % 10))
  FROM generate_series(1, 200) i;
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{
			SELECT sum(applied) = 400 AND sum(lag) = 0 AND bool_and(state = 'caught_up')
			  FROM outbox.inbox_status WHERE subscription IN ('batch', 'batch_sql')}) eq 't';
	}), 'both batch handlers apply all 200 messages');
is($node->safe_psql('postgres', q{
	SELECT subscription, count(*), count(DISTINCT seq) FROM effect GROUP BY 1 ORDER BY 1}),
	"batch|200|200\nbatch_sql|200|200", 'each message once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT "offset" < lag("offset") OVER (PARTITION BY subscription, "partition" ORDER BY n) AS back,
	         seq < lag(seq) OVER (PARTITION BY subscription, key ORDER BY n) AS key_back
	    FROM effect) s WHERE back OR key_back}),
	'0', 'in offset order per partition, so in order per key');
is($node->safe_psql('postgres', q{
	SELECT bool_and(n < 200) AND max(size) > 1 FROM (
	  SELECT subscription, count(*) n, max(size) size FROM calls GROUP BY 1) s}),
	't', 'called once per batch, with many messages, not once per message');

# --- duplicates, in one batch and across batches ------------------------------
my @msgs = consume_all($mock->bootstrap, $topic, 1);
my $copy = $msgs[3];
my @headers = map { ('-H', "$_->[0]=$_->[1]") } @{ $copy->{headers} };
my $in = $copy->{payload};
ok(run([ $OutboxKafkaTest::KCAT, '-P', '-b', $mock->bootstrap, '-t', $topic, '-p', '1',
		'-k', $copy->{key}, @headers ], \$in), 'an event published again');
$in = qq{{"seq": 3000}\n{"seq": 3000}\n{"seq": 3001}\n};
ok(run([ $OutboxKafkaTest::KCAT, '-P', '-b', $mock->bootstrap, '-t', $topic, '-p', '1', '-k', 'twin',
		'-H', 'outbox-event-id=01939f5c-0000-7000-8000-0000000000b1' ], \$in),
	'three messages with one event id in one produce request');
ok(poll_until(sub {
		$node->safe_psql('postgres', q{
			SELECT sum(duplicates) = 6 AND sum(lag) = 0
			  FROM outbox.inbox_status WHERE subscription IN ('batch', 'batch_sql')}) eq 't';
	}), 'the copies are counted as duplicates by both subscriptions');
is($node->safe_psql('postgres', q{
	SELECT subscription, count(*), count(*) FILTER (WHERE key = 'twin'), min(seq) FILTER (WHERE key = 'twin')
	  FROM effect GROUP BY 1 ORDER BY 1}),
	"batch|201|1|3000\nbatch_sql|201|1|3000",
	'and not passed to the handler: only the first of the twins is applied');

# --- a poison message inside a batch ------------------------------------------
$node->safe_psql('postgres', q{SELECT outbox.unsubscribe('batch_sql')});
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('b.orders', jsonb_build_object('seq', i), key => 'k' || (i % 10))
  FROM generate_series(201, 240) i;
SELECT outbox.enqueue('b.orders', jsonb_build_object('seq', 241, 'poison', true), key => 'k1');
SELECT outbox.enqueue('b.orders', jsonb_build_object('seq', i), key => 'k' || (i % 10))
  FROM generate_series(242, 280) i;
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_dead_letter}) eq '1';
	}), 'the poison message reaches the dead-letter table');
is($node->safe_psql('postgres', q{
	SELECT subscription, convert_from(key, 'UTF8'), attempts, sqlstate, error
	  FROM outbox.inbox_dead_letter}),
	'batch|k1|2|P0001|cannot bill a poisoned order',
	'after max_attempts, with its error');
ok(poll_until(sub {
		$node->safe_psql('postgres', q{
			SELECT sum(lag) = 0 FROM outbox.inbox_status WHERE subscription = 'batch'}) eq 't';
	}), 'its partition moves past it');
is($node->safe_psql('postgres', q{
	SELECT count(*), count(DISTINCT seq), min(seq), max(seq), count(*) FILTER (WHERE seq = 241)
	  FROM effect WHERE subscription = 'batch' AND seq BETWEEN 201 AND 280}),
	'79|79|201|280|0', 'every other message of those batches is applied exactly once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT seq < lag(seq) OVER (PARTITION BY key ORDER BY n) AS back
	    FROM effect WHERE subscription = 'batch') s WHERE back}),
	'0', 'still in order per key');
is($node->safe_psql('postgres', q{
	SELECT sum(applied) FROM outbox.inbox_status WHERE subscription = 'batch'}),
	'280', 'inbox_status counts them');

# --- a transient error of the batch call --------------------------------------
# max_attempts 1: any failure counted as an attempt would dead-letter
$node->safe_psql('postgres', q{
CREATE SEQUENCE flaky_calls;
CREATE FUNCTION apply_flaky(ms outbox.inbox_message[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('flaky_calls') <= 3 THEN
        RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure';
    END IF;
    INSERT INTO effect (subscription, "partition", "offset", key, seq)
    SELECT m.subscription, m."partition", m."offset", convert_from(m.key, 'UTF8'),
           (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int
      FROM unnest(ms) m;
END
$$;
SELECT outbox.subscribe('flaky', 'b.orders', 'apply_flaky(outbox.inbox_message[])', max_attempts => 1);
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{
			SELECT sum(lag) = 0 AND sum(applied) = 281 FROM outbox.inbox_status WHERE subscription = 'flaky'}) eq 't';
	}), 'a batch call failing with serialization_failure is retried later');
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM outbox.inbox_dead_letter WHERE subscription = 'flaky') || '|' ||
	       (SELECT count(*) || '|' || count(DISTINCT "offset" || ':' || "partition") FROM effect WHERE subscription = 'flaky') || '|' ||
	       ((SELECT last_value FROM flaky_calls) > 3)}),
	'0|281|281|true', 'counting no attempt: nothing dead-lettered, every message applied once');

$node->stop;
$mock->stop;
done_testing();
