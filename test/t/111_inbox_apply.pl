
# Copyright (c) 2026, outbox_kafka developers

# The inbox applies each message once, in offset order per partition (so in
# order per key), with a PL/pgSQL handler doing an INSERT, run as the
# subscription's owner with the documented search_path.  The messages are
# published by the relay of the same database (outbox.enqueue), so they
# carry outbox-event-id: a copy of one published again (as a relay does
# around a crash) is recognised and skipped without calling the handler.
# A message without outbox headers is de-duplicated by its position.
# outbox.inbox_status shows offsets, high watermarks, lag and counts;
# outbox.inbox_rewind moves a partition back and the records decide what
# is applied again (nothing, within the window).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use IPC::Run qw(run);
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'in.orders';
my $mock = start_mock(topics => ["$topic:4"]);
my $node = new_node('inbox_apply', bootstrap => $mock->bootstrap,
	extra_conf => "outbox_kafka.inbox_batch_size = 50\n");

$node->safe_psql('postgres', q{
CREATE ROLE billing;
CREATE SCHEMA billing AUTHORIZATION billing;
CREATE TABLE billing.effect (
    n          bigserial PRIMARY KEY,
    "partition" int, "offset" bigint, key text, seq int,
    applied_by text, path text);
GRANT ALL ON SCHEMA billing TO billing;
ALTER TABLE billing.effect OWNER TO billing;
-- unqualified: resolved through "$user", public as the owner
CREATE FUNCTION billing.apply_order(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO effect ("partition", "offset", key, seq, applied_by, path)
    VALUES (m."partition", m."offset", convert_from(m.key, 'UTF8'),
            (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int,
            current_user, current_setting('search_path'));
END
$$;
ALTER FUNCTION billing.apply_order(outbox.inbox_message) OWNER TO billing;
GRANT EXECUTE ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text) TO billing;
SELECT outbox.grant_topic('postgres', 'in.*');
});
$node->safe_psql('postgres', q{SET ROLE billing;
SELECT outbox.subscribe('billing', 'in.orders', 'billing.apply_order(outbox.inbox_message)')});

# 400 events, 20 keys, seq increasing per key
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('in.orders', jsonb_build_object('seq', i), key => 'k' || (i % 20))
  FROM generate_series(1, 400) i;
});
ok(poll_until(sub { $node->safe_psql('postgres', 'SELECT count(*) FROM billing.effect') eq '400' }),
	'400 messages applied');
is($node->safe_psql('postgres', q{SELECT count(DISTINCT ("partition", "offset")) FROM billing.effect}),
	'400', 'each once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT "offset" < lag("offset") OVER (PARTITION BY "partition" ORDER BY n) AS back
	    FROM billing.effect) s WHERE back}),
	'0', 'in offset order within each partition');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT seq < lag(seq) OVER (PARTITION BY key ORDER BY n) AS back
	    FROM billing.effect) s WHERE back}),
	'0', 'so in order per key');
is($node->safe_psql('postgres', q{SELECT DISTINCT applied_by || ' ' || path FROM billing.effect}),
	'billing "$user", public', 'run as the subscription owner, search_path "$user", public');

ok(poll_until(sub {
		$node->safe_psql('postgres', q{
			SELECT sum(applied) = 400 AND sum(lag) = 0 AND bool_and(state = 'caught_up')
			   AND sum(high_watermark) = 400 AND sum(stored_offset) = 400
			  FROM outbox.inbox_status WHERE subscription = 'billing'}) eq 't';
	}), 'inbox_status: 400 applied, stored offsets at the high watermarks, no lag');

# --- a copy of a published message, as a relay publishes around a crash -------
my @msgs = consume_all($mock->bootstrap, $topic, 2);
my $copy = $msgs[5];
my @headers = map { ('-H', "$_->[0]=$_->[1]") } @{ $copy->{headers} };
my $in = $copy->{payload};
ok(run([ $OutboxKafkaTest::KCAT, '-P', '-b', $mock->bootstrap, '-t', $topic, '-p', '2',
		'-k', $copy->{key}, @headers ], \$in), 'the same event published again (kcat)');
ok(poll_until(sub {
		$node->safe_psql('postgres',
			q{SELECT duplicates FROM outbox.inbox_status WHERE subscription = 'billing' AND "partition" = 2}) eq '1';
	}), 'is recognised by its outbox-event-id');
is($node->safe_psql('postgres', 'SELECT count(*) FROM billing.effect'), '400',
	'and not applied again');

# --- a message without outbox headers -----------------------------------------
$in = '{"seq": 1000}';
run([ $OutboxKafkaTest::KCAT, '-P', '-b', $mock->bootstrap, '-t', $topic, '-p', '1', '-k', 'plain' ], \$in);
ok(poll_until(sub { $node->safe_psql('postgres', 'SELECT count(*) FROM billing.effect') eq '401' }),
	'a plain message is applied');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM outbox.inbox_dedupe_0 WHERE dedupe_key LIKE 'offset:in.orders:1:%'}),
	'1', 'recorded by topic, partition and offset');

# --- two copies in one batch ---------------------------------------------------
$in = qq{{"seq": 2000}\n{"seq": 2000}\n};
run([ $OutboxKafkaTest::KCAT, '-P', '-b', $mock->bootstrap, '-t', $topic, '-p', '3', '-k', 'twin',
		'-H', 'outbox-event-id=01939f5c-0000-7000-8000-000000000001' ], \$in);
ok(poll_until(sub {
		$node->safe_psql('postgres', q{
			SELECT duplicates = 1 AND stored_offset = high_watermark
			  FROM outbox.inbox_status WHERE subscription = 'billing' AND "partition" = 3}) eq 't';
	}), 'two copies of one event published together: one is a duplicate');
is($node->safe_psql('postgres', q{SELECT count(*) FROM billing.effect WHERE key = 'twin'}), '1',
	'and it is applied once');

# --- rewind: the records decide ----------------------------------------------
$node->safe_psql('postgres', q{SELECT outbox.inbox_rewind('billing', 0, 0)});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{
			SELECT duplicates > 0 AND stored_offset = high_watermark
			  FROM outbox.inbox_status WHERE subscription = 'billing' AND "partition" = 0}) eq 't';
	}), 'after a rewind the partition is read again');
is($node->safe_psql('postgres', 'SELECT count(*) FROM billing.effect'), '402',
	'and nothing is applied twice');

# --- reload, and the worker's name --------------------------------------------
is($node->safe_psql('postgres',
		q{SELECT application_name FROM pg_stat_activity WHERE backend_type = 'outbox_kafka inbox'}),
	'outbox_kafka inbox', 'the inbox worker in pg_stat_activity');
$node->reload;
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('in.orders', jsonb_build_object('seq', 1000 + i), key => 'k' || (i % 20))
  FROM generate_series(1, 10) i;
});
ok(poll_until(sub { $node->safe_psql('postgres', 'SELECT count(*) FROM billing.effect') eq '412' }),
	'after a reload the inbox goes on');

$node->stop;
$mock->stop;
done_testing();
