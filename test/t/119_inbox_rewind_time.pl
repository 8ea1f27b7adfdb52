# Copyright (c) 2026, outbox_kafka developers

# Rewind by timestamp, on Apache Kafka (RealKafka.pm; librdkafka's mock
# cluster answers no ListOffsets by timestamp): outbox.inbox_rewind with a
# timestamptz, for every partition or one, makes the worker ask the
# cluster (rd_kafka_offsets_for_times) for the first message at or after
# that time and store that offset, compare-and-set; the de-duplication
# records decide what is applied again.  A time after the last message
# moves to the end.  Bad arguments and callers are refused with
# SQLSTATEs.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RealKafka;
use Test::More;

my $topic = 'r.rewind';
my $kafka = RealKafka->start(topics => ["$topic:2"]);
my $node = new_node('inbox_rewind_time', bootstrap => $kafka->bootstrap);

$node->safe_psql('postgres', qq{
CREATE TABLE effect (n bigserial PRIMARY KEY, "partition" int, key text, seq int, ts timestamptz);
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO effect ("partition", key, seq, ts)
    VALUES (m."partition", convert_from(m.key, 'UTF8'),
            (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int, m."timestamp");
END
\$\$;
SELECT outbox.grant_topic('postgres', 'r.*');
SELECT outbox.subscribe('rw', '$topic', 'apply(outbox.inbox_message)');
});

sub query { return $node->safe_psql('postgres', $_[0]); }
sub effects { return query('SELECT count(*) FROM effect'); }

# --- arguments and callers ----------------------------------------------------
my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT outbox.inbox_rewind_to_time('nosuch', now())},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/42704: inbox subscription "nosuch" does not exist/, 'unknown subscription: 42704');
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT outbox.inbox_rewind_to_time('rw', -1, now())},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/22023: partition must not be negative/, 'negative partition: 22023');
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT outbox.inbox_rewind_to_time('rw', 'infinity'::timestamptz)},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/22023: the timestamp of a rewind must be finite/, 'infinity: 22023');
($ret, $out, $err) = $node->psql('postgres', q{
	CREATE ROLE stranger;
	GRANT USAGE ON SCHEMA outbox TO stranger;
	GRANT EXECUTE ON FUNCTION outbox.inbox_rewind_to_time(text, timestamptz) TO stranger;
	SET ROLE stranger;
	SELECT outbox.inbox_rewind_to_time('rw', now());
}, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/42501: /, "another role, even granted EXECUTE, may not rewind: 42501");
($ret, $out, $err) = $node->psql('postgres', q{
	SET ROLE stranger;
	SELECT outbox.inbox_rewind_to_time('rw', 0, now());
}, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/42501: permission denied for function inbox_rewind/,
	'the one-partition form is not granted to PUBLIC: 42501');

# --- two batches of messages, a time between them -----------------------------
query(q{
SELECT outbox.enqueue('r.rewind', jsonb_build_object('seq', i), key => 'k' || (i % 4))
  FROM generate_series(1, 20) i;
});
ok(poll_until(sub { effects() eq '20' }, 120), 'the first 20 messages are applied');
my $between = query('SELECT now()');
ok(poll_until(sub { query(qq{SELECT max(ts) < '$between' FROM effect}) eq 't' }),
	'a time after them');
query(q{
SELECT outbox.enqueue('r.rewind', jsonb_build_object('seq', i), key => 'k' || (i % 4))
  FROM generate_series(21, 40) i;
});
ok(poll_until(sub { effects() eq '40' }, 60), 'the next 20 are applied');
is(query(qq{SELECT bool_and(ts >= '$between') FROM effect WHERE seq > 20}), 't',
	'and have later timestamps');
ok(poll_until(sub {
		query(q{SELECT sum(lag) = 0 FROM outbox.inbox_status}) eq 't';
	}), 'caught up');
my $ends = query(q{SELECT string_agg(stored_offset::text, ',' ORDER BY "partition") FROM outbox.inbox_status});

# --- rewind every partition: the records skip what was applied ---------------
my $offset = -s $node->logfile;
query(qq{SELECT outbox.inbox_rewind_to_time('rw', '$between'::timestamptz)});
ok($node->wait_for_log(qr/subscription "rw" rewinds partition \d+ to offset \d+, its first message at or after/, $offset),
	'the worker resolves the rewind');
ok(poll_until(sub {
		query(q{SELECT sum(duplicates) FROM outbox.inbox_status}) eq '20';
	}), 'the 20 later messages are consumed again and skipped as duplicates');
is(effects(), '40', 'nothing applied twice');
is(query(q{SELECT count(*) FROM outbox.inbox_rewind_request}), '0', 'the request is done');
is(query(q{SELECT string_agg(stored_offset::text, ',' ORDER BY "partition") FROM outbox.inbox_status}),
	$ends, 'back at the end');

# --- without the records, the later messages are applied again ----------------
query(q{
DELETE FROM outbox.inbox_dedupe_0;
DELETE FROM outbox.inbox_dedupe_1;
});
query(qq{SELECT outbox.inbox_rewind_to_time('rw', '$between'::timestamptz)});
ok(poll_until(sub { effects() eq '60' }, 60), 'records deleted: the 20 later messages are applied again');
is(query(q{SELECT count(*) FROM effect WHERE seq <= 20}), '20',
	'the earlier ones are not: the rewind went to the time, not the beginning');
is(query(q{SELECT count(*) FROM (SELECT seq FROM effect WHERE seq > 20 GROUP BY seq HAVING count(*) = 2) s}),
	'20', 'each later message once more');

# --- one partition --------------------------------------------------------------
query(q{
DELETE FROM outbox.inbox_dedupe_0;
DELETE FROM outbox.inbox_dedupe_1;
});
my $p0_later = query(q{SELECT count(DISTINCT seq) FROM effect WHERE "partition" = 0 AND seq > 20});
my $before = effects();
query(qq{SELECT outbox.inbox_rewind_to_time('rw', 0, '$between'::timestamptz)});
ok(poll_until(sub { effects() == $before + $p0_later }, 60),
	"one partition: its $p0_later later messages are applied again");
is(query(q{SELECT count(*) FROM effect WHERE "partition" = 1 AND seq > 20 GROUP BY seq HAVING count(*) <> 2}),
	'', 'the other partition is not rewound');

# --- a time after every message: the end ---------------------------------------
query(q{
DELETE FROM outbox.inbox_dedupe_0;
DELETE FROM outbox.inbox_dedupe_1;
});
$before = effects();
$offset = -s $node->logfile;
query(q{SELECT outbox.inbox_rewind_to_time('rw', now() + interval '1 hour')});
ok($node->wait_for_log(qr/subscription "rw" rewinds partition \d+ to offset/, $offset),
	'a time after the last message is resolved');
ok(poll_until(sub { query(q{SELECT count(*) FROM outbox.inbox_rewind_request}) eq '0' }),
	'to the end');
is(query(q{SELECT string_agg(stored_offset::text, ',' ORDER BY "partition") FROM outbox.inbox_status}),
	$ends, 'every partition at its end');
is(effects(), $before, 'nothing applied again');

$node->stop;
$kafka->stop;
done_testing();
