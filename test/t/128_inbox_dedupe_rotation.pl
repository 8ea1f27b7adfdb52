# Copyright (c) 2026, outbox_kafka developers

# The inbox worker keeps in memory which de-duplication table is current
# (it does not read outbox.inbox_dedupe_rotation per batch), yet the
# records of a batch always go to the table the rotation row names: after
# the worker's own rotation (once the current table is older than the
# window), and after a rotation made by another session (which the worker
# notices by the emptied table's new relfilenode).  A copy of a message
# recorded before a rotation is still recognised after it.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'rot.orders';
my $mock = start_mock(topics => ["$topic:2"]);
my $node = new_node('inbox_dedupe_rotation', bootstrap => $mock->bootstrap);

$node->safe_psql('postgres', q{
CREATE TABLE effect (n bigserial PRIMARY KEY, "partition" int, "offset" bigint, seq int);
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO effect ("partition", "offset", seq)
    VALUES (m."partition", m."offset", (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int);
END
$$;
SELECT outbox.grant_topic('postgres', 'rot.*');
SELECT outbox.subscribe('rot', 'rot.orders', 'apply(outbox.inbox_message)');
});

# enqueue seq $from .. $to and wait until $total effects are there
sub send_and_wait
{
	my ($from, $to, $total, $what) = @_;
	$node->safe_psql('postgres', qq{
SELECT outbox.enqueue('rot.orders', jsonb_build_object('seq', i), key => 'k' || (i % 5))
  FROM generate_series($from, $to) i;
});
	ok(poll_until(sub {
			$node->safe_psql('postgres', q{SELECT count(*) FROM effect}) eq $total;
		}), $what);
}

sub records
{
	return $node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM outbox.inbox_dedupe_0) || '|' ||
       (SELECT count(*) FROM outbox.inbox_dedupe_1) || '|' ||
       (SELECT current_table FROM outbox.inbox_dedupe_rotation)});
}

send_and_wait(1, 10, 10, 'ten messages applied');
is(records(), '10|0|0', 'their records are in table 0, the current one');

# the worker's own rotation: the current table is older than the window
$node->safe_psql('postgres', q{
UPDATE outbox.inbox_dedupe_rotation SET rotated_at = now() - interval '30 days'});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT current_table FROM outbox.inbox_dedupe_rotation}) eq '1';
	}), 'the worker rotates: table 1 is current');
send_and_wait(11, 20, 20, 'ten more applied');
is(records(), '10|10|1', 'their records are in table 1, the earlier ones still in table 0');

# a rotation by another session: table 0 emptied and made current
$node->safe_psql('postgres', q{
BEGIN;
TRUNCATE outbox.inbox_dedupe_0;
UPDATE outbox.inbox_dedupe_rotation SET current_table = 0, rotated_at = now();
COMMIT;
});
send_and_wait(21, 30, 30, 'ten more applied after a rotation by another session');
is(records(), '10|10|0', 'their records are in table 0, emptied and current again');

# copies of messages recorded before the last two rotations (seq 11 to 30,
# in tables 1 and 0): rewind a partition to its first message of seq 11
my ($p, $from) = split /\|/, $node->safe_psql('postgres', q{
SELECT "partition", min("offset") FROM effect WHERE seq >= 11
 GROUP BY "partition" ORDER BY "partition" LIMIT 1});
my $dups0 = $node->safe_psql('postgres', qq{
SELECT duplicates FROM outbox.inbox_offset WHERE subscription = 'rot' AND "partition" = $p});
my $next = $node->safe_psql('postgres', qq{
SELECT next_offset FROM outbox.inbox_offset WHERE subscription = 'rot' AND "partition" = $p});
$node->safe_psql('postgres', qq{SELECT outbox.inbox_rewind('rot', $p, $from)});
ok(poll_until(sub {
		$node->safe_psql('postgres', qq{
			SELECT duplicates - $dups0 = $next - $from FROM outbox.inbox_offset
			 WHERE subscription = 'rot' AND "partition" = $p}) eq 't';
	}), 'rewound: those messages of the partition come again, each a duplicate');
is($node->safe_psql('postgres', q{SELECT count(*) FROM effect}), '30', 'none is applied again');
is(records(), '10|10|0', 'and nothing is recorded twice');

$node->stop;
$mock->stop;
done_testing();
