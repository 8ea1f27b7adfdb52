# Copyright (c) 2026, outbox_kafka developers

# on_poison = 'hold_key': a message that failed max_attempts times is set
# aside with its key in outbox.inbox_held and its partition moves on: the
# other keys of the same partition are applied, the later messages of the
# held key are set aside behind it, in offset order.  The worker retries
# the key's first message with back-off; once the handler is fixed it and
# the messages behind it are applied, in order, once, and the key flows
# again.  A poison message without a key holds its partition (there is no
# key to set aside).  inbox_status and outbox.inbox_held_keys show the held
# keys; a key is released by hand by dead-lettering its messages.  A
# SIGKILL of the worker while it applies a held key leaves nothing applied
# twice: the effects and the removals from inbox_held commit together.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'hk.orders';
my $mock = start_mock(topics => ["$topic:2"]);
my $node = new_node('inbox_hold_key', bootstrap => $mock->bootstrap,
	extra_conf => "restart_after_crash = on\n");

$node->safe_psql('postgres', q{
CREATE TABLE effect (n bigserial PRIMARY KEY, "partition" int, "offset" bigint,
                     key text, seq int);
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := convert_from(m.value, 'UTF8')::jsonb;
BEGIN
    IF v ? 'poison' THEN
        RAISE EXCEPTION 'cannot bill order %', v ->> 'seq' USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO effect ("partition", "offset", key, seq)
    VALUES (m."partition", m."offset", convert_from(m.key, 'UTF8'), (v ->> 'seq')::int);
END
$$;
SELECT outbox.grant_topic('postgres', 'hk.*');
SELECT outbox.subscribe('hk', 'hk.orders', 'apply(outbox.inbox_message)',
                        max_attempts => 2, on_poison => 'hold_key');
});

# 8 keys; key k0 gets a poison message (seq 41) in the middle, then 10
# more messages; the other keys go on
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('hk.orders', jsonb_build_object('seq', i), key => 'k' || (i % 8))
  FROM generate_series(1, 40) i;
SELECT outbox.enqueue('hk.orders', jsonb_build_object('seq', 41, 'poison', true), key => 'k0');
SELECT outbox.enqueue('hk.orders', jsonb_build_object('seq', i), key => 'k' || (i % 8))
  FROM generate_series(42, 121) i;
});
my $later_k0 = scalar(grep { $_ % 8 == 0 } 42 .. 121);
my $others = scalar(grep { $_ % 8 != 0 } (1 .. 40, 42 .. 121));

ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_held_keys}) eq '1';
	}), 'the poison message is set aside with its key');
my $p = $node->safe_psql('postgres', q{SELECT "partition" FROM outbox.inbox_held_keys});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE key <> 'k0'}) eq $others;
	}), "every message of the other keys is applied ($others), those of its partition too");
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT messages FROM outbox.inbox_held_keys})
		  eq 1 + $later_k0;
	}), "the $later_k0 later messages of the held key wait behind it");
is($node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE key = 'k0' AND seq > 41}),
	'0', 'none of them is applied');
is($node->safe_psql('postgres', q{
	SELECT convert_from(key, 'UTF8'), first_offset = (SELECT min("offset") FROM outbox.inbox_held),
	       last_error
	  FROM outbox.inbox_held_keys}),
	'k0|t|cannot bill order 41', 'inbox_held_keys names the key, its first message and the error');
is($node->safe_psql('postgres', q{
	SELECT bool_and(o < n) FROM (
	  SELECT "offset" AS o, lead("offset") OVER (ORDER BY "offset") AS n FROM outbox.inbox_held) s
	 WHERE n IS NOT NULL}),
	't', 'the held messages keep their offsets, in order');
ok(poll_until(sub {
		$node->safe_psql('postgres', qq{
			SELECT state = 'keys_held' AND held_keys = 1 AND held_messages = 1 + $later_k0
			       AND lag = 0
			  FROM outbox.inbox_status WHERE "partition" = $p}) eq 't';
	}), 'inbox_status: the partition is caught up, with one key held');
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT attempts >= 4 FROM outbox.inbox_held_keys}) eq 't';
	}), 'the held message is retried with back-off');
is($node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_dead_letter}),
	'0', 'nothing is dead-lettered');

# the handler is fixed (and slow for the held key, 0.2 s a message): the
# worker is killed while it applies the key; after the crash restart the
# held key is applied, in order, once
$node->safe_psql('postgres', q{
CREATE OR REPLACE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF convert_from(m.key, 'UTF8') = 'k0' THEN
        PERFORM pg_sleep(0.2);
    END IF;
    INSERT INTO effect ("partition", "offset", key, seq)
    VALUES (m."partition", m."offset", convert_from(m.key, 'UTF8'),
            (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int);
END
$$;
});
my $pid;
ok(poll_until(sub {
		$pid = query_or_empty($node, 'postgres', q{
			SELECT pid FROM pg_stat_activity
			 WHERE backend_type = 'outbox_kafka inbox' AND query = 'retrying held inbox keys'
			   AND state = 'active'});
		$pid ne '';
	}), 'the worker applies the held key');
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
ok(poll_until(sub {
		query_or_empty($node, 'postgres', q{SELECT count(*) FROM outbox.inbox_held}) eq '0';
	}), 'killed while applying it: after the restart the held key is released');
is($node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE key = 'k0' AND seq >= 41}),
	1 + $later_k0, 'the held message and the messages behind it are applied');
is($node->safe_psql('postgres', q{
	SELECT string_agg(seq::text, ',' ORDER BY n) = string_agg(seq::text, ',' ORDER BY seq)
	  FROM effect WHERE key = 'k0'}),
	't', 'in order within the key');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT seq < lag(seq) OVER (PARTITION BY key ORDER BY n) AS back FROM effect) s
	 WHERE back}),
	'0', 'every key in order');
is($node->safe_psql('postgres', q{SELECT count(*) - count(DISTINCT seq) FROM effect}),
	'0', 'each message applied once');
is($node->safe_psql('postgres', q{SELECT count(*) FROM effect}), 121, 'and none missing');
ok(poll_until(sub {
		$node->safe_psql('postgres', qq{
			SELECT state = 'caught_up' AND held_keys = 0 AND applied = (SELECT count(*) FROM effect WHERE "partition" = $p)
			  FROM outbox.inbox_status WHERE "partition" = $p}) eq 't';
	}), 'inbox_status: caught up, no key held, the held messages counted as applied');

# the key flows again
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('hk.orders', jsonb_build_object('seq', 122), key => 'k0');
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE seq = 122}) eq '1';
	}), 'a new message of the released key is applied at once');

# --- release by hand: dead-letter the key's messages ------------------------
# poison messages fail again
$node->safe_psql('postgres', q{
CREATE OR REPLACE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := convert_from(m.value, 'UTF8')::jsonb;
BEGIN
    IF v ? 'poison' THEN
        RAISE EXCEPTION 'cannot bill order %', v ->> 'seq' USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO effect ("partition", "offset", key, seq)
    VALUES (m."partition", m."offset", convert_from(m.key, 'UTF8'), (v ->> 'seq')::int);
END
$$;
});
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('hk.orders', jsonb_build_object('seq', 200, 'poison', true), key => 'k3');
SELECT outbox.enqueue('hk.orders', jsonb_build_object('seq', 201), key => 'k3');
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT messages FROM outbox.inbox_held_keys}) eq '2';
	}), 'a second poison message holds its key, with the message behind it');
$node->safe_psql('postgres', q{
WITH released AS (
    DELETE FROM outbox.inbox_held
     WHERE subscription = 'hk' AND key = convert_to('k3', 'UTF8')
    RETURNING *)
INSERT INTO outbox.inbox_dead_letter
       (subscription, topic, "partition", "offset", key, value, headers, "timestamp",
        error, sqlstate, attempts)
SELECT subscription, topic, "partition", "offset", key, value, headers, "timestamp",
       coalesce(last_error, 'released by hand'), sqlstate, attempts
  FROM released;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_dead_letter}),
	'2', 'released by hand: both messages are dead letters');
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('hk.orders', jsonb_build_object('seq', 202), key => 'k3');
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE seq = 202}) eq '1';
	}), 'and the key flows again');
is($node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE seq IN (200, 201)}),
	'0', 'what was released by hand is not applied');

# --- a poison message without a key holds its partition ---------------------
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('hk.orders', jsonb_build_object('seq', 300, 'poison', true));
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{
			SELECT count(*) FROM outbox.inbox_status WHERE state = 'held' AND lag > 0}) eq '1';
	}), 'a keyless poison message holds its partition');
is($node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_held}),
	'0', 'it is not set aside');

$node->stop;
$mock->stop;
done_testing();
