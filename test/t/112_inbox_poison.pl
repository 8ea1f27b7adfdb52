
# Copyright (c) 2026, outbox_kafka developers

# A poison message (its handler always fails) is retried with back-off and
# moved to outbox.inbox_dead_letter after max_attempts, while the other
# partitions flow and the rest of its own partition follows it; with
# on_poison = 'hold' its partition waits at it (the other partitions do
# not) until the handler is fixed, keeping the key's order.  A transient
# database error (serialization_failure) is retried without counting an
# attempt, so it never dead-letters a good message.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'p.orders';
my $mock = start_mock(topics => ["$topic:4"]);
my $node = new_node('inbox_poison', bootstrap => $mock->bootstrap);

$node->safe_psql('postgres', q{
CREATE TABLE effect (n bigserial PRIMARY KEY, subscription text, "partition" int,
                     "offset" bigint, key text, seq int);
CREATE SEQUENCE flaky_calls;
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := convert_from(m.value, 'UTF8')::jsonb;
BEGIN
    IF v ? 'poison' THEN
        RAISE EXCEPTION 'cannot bill order %', v ->> 'seq';
    END IF;
    IF v ? 'flaky' AND m.subscription = 'dl' AND nextval('flaky_calls') <= 6 THEN
        RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure';
    END IF;
    INSERT INTO effect (subscription, "partition", "offset", key, seq)
    VALUES (m.subscription, m."partition", m."offset", convert_from(m.key, 'UTF8'), (v ->> 'seq')::int);
END
$$;
SELECT outbox.grant_topic('postgres', 'p.*');
SELECT outbox.subscribe('dl', 'p.orders', 'apply(outbox.inbox_message)', max_attempts => 3);
SELECT outbox.subscribe('hold', 'p.orders', 'apply(outbox.inbox_message)', max_attempts => 2,
                        on_poison => 'hold');
});

# 80 good messages over 8 keys, one poison and one flaky message of key k0
# in the middle, then more of k0
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('p.orders', jsonb_build_object('seq', i), key => 'k' || (i % 8))
  FROM generate_series(1, 40) i;
SELECT outbox.enqueue('p.orders', jsonb_build_object('seq', 41, 'poison', true), key => 'k0');
SELECT outbox.enqueue('p.orders', jsonb_build_object('seq', 42, 'flaky', true), key => 'k1');
SELECT outbox.enqueue('p.orders', jsonb_build_object('seq', i), key => 'k' || (i % 8))
  FROM generate_series(43, 82) i;
});

ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_dead_letter}) eq '1';
	}), 'the poison message reaches the dead-letter table');
is($node->safe_psql('postgres', q{
	SELECT subscription, convert_from(key, 'UTF8'), attempts, sqlstate, error
	  FROM outbox.inbox_dead_letter}),
	'dl|k0|3|P0001|cannot bill order 41',
	'after max_attempts, with its key, the SQLSTATE and the error');
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE subscription = 'dl'}) eq '81';
	}), 'every other message is applied, the rest of its partition too');
is($node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE subscription = 'dl' AND seq = 42}),
	'1', 'the message that failed with serialization_failure 6 times is applied, not dead-lettered');

# --- on_poison = 'hold' -------------------------------------------------------
my $p = $node->safe_psql('postgres',
	q{SELECT "partition" FROM outbox.inbox_dead_letter});
ok(poll_until(sub {
		$node->safe_psql('postgres', qq{
			SELECT bool_and(CASE WHEN "partition" = $p THEN state = 'held' AND lag > 0
			                     ELSE state = 'caught_up' END)
			  FROM outbox.inbox_status WHERE subscription = 'hold'}) eq 't';
	}), 'with on_poison hold the partition waits at the poison message, the others are caught up');
is($node->safe_psql('postgres', qq{
	SELECT attempts >= 2 AND last_error LIKE '%cannot bill order 41%'
	  FROM outbox.inbox_status WHERE subscription = 'hold' AND "partition" = $p}),
	't', 'inbox_status shows its attempts and error');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM effect WHERE subscription = 'hold' AND key = 'k0' AND seq > 41}),
	'0', 'no later message of its key is applied');

$node->safe_psql('postgres', q{
CREATE OR REPLACE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO effect (subscription, "partition", "offset", key, seq)
    VALUES (m.subscription, m."partition", m."offset", convert_from(m.key, 'UTF8'),
            (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int);
END
$$;
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE subscription = 'hold'}) eq '82';
	}), 'once the handler is fixed, the held message and the rest are applied');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT seq < lag(seq) OVER (PARTITION BY key ORDER BY n) AS back
	    FROM effect WHERE subscription = 'hold') s WHERE back}),
	'0', 'in order per key');
is($node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_dead_letter WHERE subscription = 'hold'}),
	'0', 'and nothing of the held subscription was dead-lettered');

$node->stop;
$mock->stop;
done_testing();
