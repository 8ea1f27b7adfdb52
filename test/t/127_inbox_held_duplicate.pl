# Copyright (c) 2026, outbox_kafka developers

# on_poison = 'hold_key': two held messages of one key that carry the same
# de-duplication key (a message the producer sent twice, both set aside
# behind a poison message of their key) are applied once when the key is
# retried: the second is a duplicate of the first, recorded earlier in the
# same transaction, and is removed without calling the handler.  Also: a
# held message whose key was recorded by an earlier batch is removed
# without calling the handler.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'hd.orders';
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node('inbox_held_duplicate', bootstrap => $mock->bootstrap);

$node->safe_psql('postgres', q{
CREATE TABLE effect (n bigserial PRIMARY KEY, "offset" bigint, seq int);
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO effect ("offset", seq)
    VALUES (m."offset", (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int);
END
$$;
SELECT outbox.grant_topic('postgres', 'hd.*');
SELECT outbox.subscribe('hd', 'hd.orders', 'apply(outbox.inbox_message)',
                        max_attempts => 2, on_poison => 'hold_key');
});

# one message through the inbox: its de-duplication key is recorded
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('hd.orders', jsonb_build_object('seq', 1), key => 'k1');
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM effect}) eq '1';
	}), 'a first message is applied');
my $recorded = $node->safe_psql('postgres', q{
	SELECT dedupe_key FROM outbox.inbox_dedupe_0 UNION ALL
	SELECT dedupe_key FROM outbox.inbox_dedupe_1});
isnt($recorded, '', 'and its de-duplication key recorded');

# held messages of key d, due now: offsets 1000 and 1001 carry the same
# de-duplication key, 1002 another one, 1003 the key applied above
$node->safe_psql('postgres', qq{
INSERT INTO outbox.inbox_held (subscription, topic, "partition", "offset", key,
                               value, dedupe_key, attempts, retry_at)
VALUES ('hd', 'hd.orders', 0, 1000, 'd', convert_to('{"seq": 10}', 'UTF8'), 'test:a', 2, now()),
       ('hd', 'hd.orders', 0, 1001, 'd', convert_to('{"seq": 11}', 'UTF8'), 'test:a', 0, now()),
       ('hd', 'hd.orders', 0, 1002, 'd', convert_to('{"seq": 12}', 'UTF8'), 'test:b', 0, now()),
       ('hd', 'hd.orders', 0, 1003, 'd', convert_to('{"seq": 13}', 'UTF8'), '$recorded', 0, now());
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_held}) eq '0';
	}), 'the held key is retried and released');
is($node->safe_psql('postgres', q{SELECT string_agg(seq::text, ',' ORDER BY n) FROM effect WHERE seq >= 10}),
	'10,12', 'the copy of a message held behind it and a message applied before are not applied again');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT dedupe_key FROM outbox.inbox_dedupe_0 UNION ALL
	                      SELECT dedupe_key FROM outbox.inbox_dedupe_1) r
	 WHERE dedupe_key IN ('test:a', 'test:b')}),
	'2', 'the applied held messages are recorded once each');
is($node->safe_psql('postgres', q{SELECT applied, duplicates FROM outbox.inbox_offset WHERE "partition" = 0}),
	'3|2', 'counted: two more applied, two duplicates');

$node->stop;
$mock->stop;
done_testing();
