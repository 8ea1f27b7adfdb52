
# Copyright (c) 2026, outbox_kafka developers

# The inbox when rights change under it (docs/inbox.md, Failures and
# Security):
#
# - the subscription's owner loses a privilege its handler needs (INSERT on
#   the table it writes), then EXECUTE on the handler itself: SQLSTATE
#   42501, retried without counting attempts (max_attempts is 2), never
#   dead-lettered, applied once the grant is back;
# - the handler function is dropped, then the subscription's owner role:
#   a WARNING, the subscription is not consumed, nothing is lost, and after
#   subscribing again under the same name everything is applied, nothing
#   twice (the de-duplication records outlive the subscription);
# - outbox.inbox_rewind and outbox.unsubscribe need a grant (42501), and
#   even granted, only the subscription's owner may rewind it.
#
# A control subscription (owned by the superuser, max_attempts 2) fails
# with a handler error on the same messages and dead-letters them: once it
# has, the subscription that lost a right has been retried at least as
# often as a counted failure would have needed to be dead-lettered.
# (Offsets committed to Kafka after PostgreSQL's commit, under the group
# outbox_kafka.<database>.<subscription>: test/t/115, on Apache Kafka.)

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 's.orders';
my $mock = start_mock(topics => ["$topic:2"]);
my $node = new_node('inbox_security', bootstrap => $mock->bootstrap);

$node->safe_psql('postgres', q{
CREATE ROLE payer;
CREATE ROLE gone;
CREATE ROLE other;
CREATE TABLE effect (n bigserial PRIMARY KEY, sub text, key text, seq int);
CREATE SEQUENCE calls;
GRANT INSERT ON effect TO payer, gone;
GRANT USAGE ON SEQUENCE effect_n_seq, calls TO payer, gone;
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('public.calls');
    INSERT INTO public.effect (sub, key, seq)
    VALUES (m.subscription, convert_from(m.key, 'UTF8'),
            (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int);
END
$$;
CREATE FUNCTION h2(m outbox.inbox_message) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO public.effect (sub, key, seq)
    VALUES (m.subscription, convert_from(m.key, 'UTF8'),
            (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int) $$;
CREATE FUNCTION failing(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    seq int := (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int;
BEGIN
    IF seq >= 1000 THEN
        RAISE EXCEPTION 'control: message % fails', seq;
    END IF;
    INSERT INTO public.effect (sub, key, seq) VALUES (m.subscription, convert_from(m.key, 'UTF8'), seq);
END
$$;
REVOKE EXECUTE ON FUNCTION apply(outbox.inbox_message) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apply(outbox.inbox_message) TO payer, gone;
GRANT EXECUTE ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text),
                          outbox.unsubscribe(text), outbox.inbox_rewind(text, integer, bigint)
   TO payer, gone;
SELECT outbox.grant_topic('postgres', 's.*');
SELECT outbox.subscribe('ctl', 's.orders', 'failing(outbox.inbox_message)', max_attempts => 2);
SELECT outbox.subscribe('dropfn', 's.orders', 'h2(outbox.inbox_message)');
SET ROLE payer;
SELECT outbox.subscribe('priv', 's.orders', 'apply(outbox.inbox_message)', max_attempts => 2);
SET ROLE gone;
SELECT outbox.subscribe('gone_sub', 's.orders', 'apply(outbox.inbox_message)');
});

sub query { return $node->safe_psql('postgres', $_[0]); }

# sqlstate of a statement run as $user
sub sqlstate_as
{
	my ($user, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE $user;\n\\set VERBOSITY verbose\n$sql");
	return $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : "ok($ret) $err";
}

# messages from $from to $from + $n - 1 over 4 keys
sub enqueue
{
	my ($from, $n) = @_;
	query(qq{SELECT outbox.enqueue('$topic', jsonb_build_object('seq', i), key => 'k' || (i % 4))
	           FROM generate_series($from, $from + $n - 1) i});
}

# effects of a subscription: "count|distinct seqs"
sub effects
{
	return query(qq{SELECT count(*) || '|' || count(DISTINCT seq) FROM effect WHERE sub = '$_[0]'});
}

sub wait_effects
{
	my ($sub, $n, $what) = @_;
	ok(poll_until(sub { effects($sub) eq "$n|$n" }), "$sub: $n effects, each once ($what)");
}

sub wait_control_dead_letters
{
	my $n = shift;
	ok(poll_until(sub {
			query(q{SELECT count(*) FROM outbox.inbox_dead_letter WHERE subscription = 'ctl'}) eq $n;
		}), "the control subscription dead-lettered $n messages after 2 attempts each");
}

enqueue(1, 20);
wait_effects($_, 20, 'to begin with') foreach qw(priv ctl dropfn gone_sub);

# --- 1. the owner loses a privilege its handler needs --------------------------
query('REVOKE INSERT ON effect FROM payer');
my $calls = query('SELECT last_value FROM calls');
enqueue(1000, 10);
wait_control_dead_letters(10);
ok(poll_until(sub { query('SELECT last_value FROM calls') >= $calls + 10 + 6 }),
	'priv: its handler was called again and again');
is(query(q{SELECT bool_and(attempts = 0)
             AND bool_or(last_error LIKE '%permission denied for table effect%')
             FROM outbox.inbox_status WHERE subscription = 'priv'}),
	't', 'priv: "permission denied for table effect", no attempt counted');
is(query(q{SELECT string_agg(DISTINCT state, ',') FROM outbox.inbox_status
            WHERE subscription = 'priv' AND lag > 0}),
	'retrying', 'priv: its partitions show state retrying (docs/inbox.md, Failures)');
is(query(q{SELECT count(*) FROM outbox.inbox_dead_letter WHERE subscription = 'priv'}), '0',
	'priv: nothing dead-lettered');
is(effects('priv'), '20|20', 'priv: nothing applied meanwhile');
query('GRANT INSERT ON effect TO payer');
wait_effects('priv', 30, 'once INSERT is granted again');

# --- 2. the owner loses EXECUTE on the handler ---------------------------------
query('REVOKE EXECUTE ON FUNCTION apply(outbox.inbox_message) FROM payer');
enqueue(2000, 10);
wait_control_dead_letters(20);
ok(poll_until(sub {
		query(q{SELECT bool_or(last_error LIKE '%permission denied for function apply%')
		          FROM outbox.inbox_status WHERE subscription = 'priv'}) eq 't';
	}), 'priv: retrying on "permission denied for function apply"');
is(query(q{SELECT bool_and(attempts = 0) FROM outbox.inbox_status WHERE subscription = 'priv'}),
	't', 'priv: no attempt counted');
is(query(q{SELECT count(*) FROM outbox.inbox_dead_letter WHERE subscription = 'priv'}), '0',
	'priv: nothing dead-lettered');
query('GRANT EXECUTE ON FUNCTION apply(outbox.inbox_message) TO payer');
wait_effects('priv', 40, 'once EXECUTE is granted again');
wait_effects('gone_sub', 40, 'meanwhile');

# --- 3. the handler is dropped ------------------------------------------------
wait_effects('dropfn', 40, 'before its handler is dropped');
my $log = -s $node->logfile;
query('DROP FUNCTION h2(outbox.inbox_message)');
enqueue(3000, 10);
ok($node->wait_for_log(
		qr/WARNING:  inbox subscription "dropfn" is not consumed: its handler function \d+ does not exist/, $log),
	'a WARNING: dropfn is not consumed');
wait_control_dead_letters(30);
wait_effects('gone_sub', 50, 'the other subscriptions go on');
is(query(q{SELECT sum(next_offset) FROM outbox.inbox_offset WHERE subscription = 'dropfn'}), '40',
	'dropfn: its offsets did not move');
query(q{
CREATE FUNCTION h2(m outbox.inbox_message) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO public.effect (sub, key, seq)
    VALUES (m.subscription, convert_from(m.key, 'UTF8'),
            (convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int) $$;
SELECT outbox.unsubscribe('dropfn');
SELECT outbox.subscribe('dropfn', 's.orders', 'h2(outbox.inbox_message)');
});
wait_effects('dropfn', 50, 'subscribed again: what came meanwhile is applied, the rest is not again');
ok(poll_until(sub {
		query(q{SELECT sum(duplicates) FROM outbox.inbox_status WHERE subscription = 'dropfn'}) eq '40';
	}), 'dropfn: the 40 applied before were recognised by their records');

# --- 4. the subscription's owner role is dropped -------------------------------
$log = -s $node->logfile;
query('DROP OWNED BY gone; DROP ROLE gone');
enqueue(4000, 10);
ok($node->wait_for_log(
		qr/WARNING:  inbox subscription "gone_sub" is not consumed: its owner, role \d+, does not exist/, $log),
	'a WARNING: gone_sub is not consumed');
wait_control_dead_letters(40);
wait_effects('priv', 60, 'the other subscriptions go on');
is(effects('gone_sub'), '50|50', 'gone_sub: nothing applied without its owner');
query(q{SELECT outbox.unsubscribe('gone_sub');
SELECT outbox.subscribe('gone_sub', 's.orders', 'apply(outbox.inbox_message)');});
wait_effects('gone_sub', 60, 'subscribed again by another role: nothing lost, nothing twice');

# --- 5. who may rewind and unsubscribe ----------------------------------------
is(sqlstate_as('other', q{SELECT outbox.inbox_rewind('priv', 0, 0)}), '42501',
	'a role without a grant may not rewind');
is(sqlstate_as('other', q{SELECT outbox.unsubscribe('priv')}), '42501',
	'nor unsubscribe');
is(sqlstate_as('payer', q{SELECT outbox.inbox_rewind('ctl', 0, 0)}), '42501',
	'a granted role may not rewind a subscription it does not own');
is(sqlstate_as('payer', q{SELECT outbox.unsubscribe('ctl')}), '42501',
	'nor unsubscribe it');
is(sqlstate_as('payer', q{SELECT outbox.inbox_rewind('priv', 0, 0)}), 'ok(0) ',
	'its owner may rewind it');
ok(poll_until(sub {
		query(q{SELECT duplicates > 0 AND stored_offset = high_watermark
		          FROM outbox.inbox_status WHERE subscription = 'priv' AND "partition" = 0}) eq 't';
	}), 'priv: partition 0 read again');
is(effects('priv'), '60|60', 'and nothing applied twice');

$node->stop;
$mock->stop;
done_testing();
