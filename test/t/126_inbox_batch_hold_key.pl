
# Copyright (c) 2026, outbox_kafka developers

# A batch handler (outbox.inbox_message[]) with on_poison = 'hold_key': once
# a key is held, its later messages are set aside behind it in every later
# batch, never passed to the handler, while the other keys of the batch
# are applied.  (The batch call takes all the batch's messages at once: a
# subscription with held keys has its batches applied one message at a
# time, so that the held keys' messages can be set aside.)  Once the
# handler is fixed, the held key's messages are applied in offset order,
# once.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock(topics => ['bh.orders:1']);
my $node = new_node('inbox_batch_hold_key', bootstrap => $mock->bootstrap);

$node->safe_psql('postgres', q{
CREATE TABLE effect (n bigserial PRIMARY KEY, "offset" bigint, key text, seq int);
CREATE FUNCTION apply_batch(ms outbox.inbox_message[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM unnest(ms) m
                WHERE convert_from(m.value, 'UTF8')::jsonb ? 'poison') THEN
        RAISE EXCEPTION 'cannot bill a poison order' USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO effect ("offset", key, seq)
    SELECT m."offset", convert_from(m.key, 'UTF8'),
           (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int
      FROM unnest(ms) m;
END
$$;
SELECT outbox.subscribe('bh', 'bh.orders', 'apply_batch(outbox.inbox_message[])',
                        max_attempts => 1, on_poison => 'hold_key');
});

# the poison message of key k0, among others
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('bh.orders', jsonb_build_object('seq', i), key => 'k' || (i % 4))
  FROM generate_series(1, 7) i;
SELECT outbox.enqueue('bh.orders', '{"seq": 8, "poison": true}'::jsonb, key => 'k0');
});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM outbox.inbox_held_keys}),
	'the poison message is set aside with its key');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 7 FROM effect}),
	'the other messages of its batch are applied');

# later batches: k0's messages wait behind it, the others are applied
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('bh.orders', jsonb_build_object('seq', i), key => 'k' || (i % 4))
  FROM generate_series(9, 40) i;
});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 7 + 24 FROM effect}),
	'the later messages of the other keys are applied');
ok( $node->poll_query_until('postgres',
		q{SELECT messages = 1 + 8 FROM outbox.inbox_held_keys}),
	'the later messages of the held key are set aside behind it');
is($node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE key = 'k0' AND seq > 8}),
	'0', 'none of them reached the handler');

# fixed: the held key's messages follow, in order, once
$node->safe_psql('postgres', q{
CREATE OR REPLACE FUNCTION apply_batch(ms outbox.inbox_message[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO effect ("offset", key, seq)
    SELECT m."offset", convert_from(m.key, 'UTF8'),
           (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int
      FROM unnest(ms) m $$;
});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM outbox.inbox_held_keys}),
	'the key is released once the handler is fixed');
is( $node->safe_psql('postgres', q{
	SELECT string_agg(seq::text, ',' ORDER BY n) FROM effect WHERE key = 'k0'}),
	'4,8,12,16,20,24,28,32,36,40',
	'key k0 applied in order, each once');
is($node->safe_psql('postgres', q{SELECT count(*) - count(DISTINCT seq) FROM effect}),
	'0', 'nothing applied twice');

$node->stop;
$mock->stop;
done_testing();
