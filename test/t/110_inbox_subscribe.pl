
# Copyright (c) 2026, outbox_kafka developers

# The inbox's SQL surface: outbox.subscribe and outbox.unsubscribe, the
# errors and SQLSTATEs a user gets for a wrong handler, name, topic or
# option, who may subscribe (nobody but the extension's owner and
# superusers unless granted), who may change a subscription, and the
# views (outbox.subscriptions, outbox.inbox_status) with the inbox worker
# the launcher starts next to the relay.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock(topics => ['sub.orders:2']);
my $node = new_node('inbox_subscribe', bootstrap => $mock->bootstrap);

$node->safe_psql('postgres', q{
CREATE TABLE seen (m outbox.inbox_message);
CREATE FUNCTION good(m outbox.inbox_message) RETURNS void
LANGUAGE sql AS $$ INSERT INTO seen VALUES (m) $$;
CREATE FUNCTION two_args(m outbox.inbox_message, x int) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION wrong_type(m text) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE PROCEDURE a_procedure(m outbox.inbox_message) LANGUAGE sql AS $$ SELECT $$;
CREATE ROLE app LOGIN;
CREATE ROLE other LOGIN;
});

# sqlstate of a failing statement
sub sqlstate_of
{
	my ($sql, $user) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		($user ? "SET ROLE $user;\n" : '') . "\\set VERBOSITY verbose\n$sql");
	return $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : "ok($ret) $err";
}

is($node->safe_psql('postgres',
		q{SELECT outbox.subscribe('orders', 'sub.orders', 'good(outbox.inbox_message)')}),
	'', 'a subscription with a SQL handler');
is($node->safe_psql('postgres',
		'SELECT subscription, topic, handler, owner, max_attempts, on_poison FROM outbox.subscriptions'),
	'orders|sub.orders|good(outbox.inbox_message)|postgres|5|dead_letter',
	'outbox.subscriptions shows it, owned by the caller, with the defaults');

is(sqlstate_of(q{SELECT outbox.subscribe('x', 'sub.orders', 'two_args(outbox.inbox_message, int)')}),
	'42883', 'a handler with two arguments: 42883');
is(sqlstate_of(q{SELECT outbox.subscribe('x', 'sub.orders', 'wrong_type(text)')}),
	'42883', 'a handler taking text: 42883');
is(sqlstate_of(q{SELECT outbox.subscribe('x', 'sub.orders', 'no_such(outbox.inbox_message)')}),
	'42883', 'a handler that does not exist: 42883');
is(sqlstate_of(q{SELECT outbox.subscribe('x', 'sub.orders', 'a_procedure(outbox.inbox_message)')}),
	'42809', 'a procedure: 42809');
is(sqlstate_of(q{SELECT outbox.subscribe('orders', 'sub.orders', 'good(outbox.inbox_message)')}),
	'42710', 'the same name twice: 42710');
is(sqlstate_of(q{SELECT outbox.subscribe('bad name', 'sub.orders', 'good(outbox.inbox_message)')}),
	'22023', 'a name with a space: 22023');
is(sqlstate_of(q{SELECT outbox.subscribe('x', 'bad topic', 'good(outbox.inbox_message)')}),
	'22023', 'an invalid topic: 22023');
is(sqlstate_of(q{SELECT outbox.subscribe('x', 'sub.orders', 'good(outbox.inbox_message)', max_attempts => 0)}),
	'22023', 'max_attempts 0: 22023');
is(sqlstate_of(q{SELECT outbox.subscribe('x', 'sub.orders', 'good(outbox.inbox_message)', on_poison => 'skip')}),
	'22023', 'an unknown on_poison: 22023');
is(sqlstate_of(q{SELECT outbox.subscribe(NULL, 'sub.orders', 'good(outbox.inbox_message)')}),
	'22004', 'a null name: 22004');

# --- who may subscribe --------------------------------------------------------
is(sqlstate_of(q{SELECT outbox.subscribe('x', 'sub.orders', 'good(outbox.inbox_message)')}, 'app'),
	'42501', 'a role without a grant may not subscribe');
is(sqlstate_of(q{SELECT * FROM outbox.inbox_status}, 'app'),
	'42501', 'nor read the inbox status');
$node->safe_psql('postgres', q{
GRANT EXECUTE ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text),
                          outbox.unsubscribe(text) TO app;
REVOKE EXECUTE ON FUNCTION good(outbox.inbox_message) FROM PUBLIC;
});
is(sqlstate_of(q{SELECT outbox.subscribe('app_orders', 'sub.orders', 'good(outbox.inbox_message)')}, 'app'),
	'42501', 'a granted role needs EXECUTE on the handler too');
$node->safe_psql('postgres', q{GRANT EXECUTE ON FUNCTION good(outbox.inbox_message) TO app;
GRANT EXECUTE ON FUNCTION outbox.unsubscribe(text) TO other;});
$node->safe_psql('postgres', q{SET ROLE app;
SELECT outbox.subscribe('app_orders', 'sub.orders', 'good(outbox.inbox_message)', 3, 'hold')});
is($node->safe_psql('postgres',
		q{SELECT owner, max_attempts, on_poison FROM outbox.subscriptions WHERE subscription = 'app_orders'}),
	'app|3|hold', 'a granted role subscribes; the subscription is its own');
is(sqlstate_of(q{SELECT outbox.unsubscribe('app_orders')}, 'other'),
	'42501', 'another role may not unsubscribe it');
is($node->safe_psql('postgres', q{SET ROLE app; SELECT outbox.unsubscribe('app_orders')}),
	't', 'its owner may');
is($node->safe_psql('postgres', q{SELECT outbox.unsubscribe('app_orders')}),
	'f', 'unsubscribing what is not there returns false');

# --- the worker and the status view --------------------------------------------
ok(poll_until(sub {
		$node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'outbox_kafka inbox'}) eq '1';
	}), 'the launcher started one inbox worker, named in pg_stat_activity');
ok(poll_until(sub {
		$node->safe_psql('postgres',
			q{SELECT count(*) FROM outbox.inbox_status WHERE subscription = 'orders' AND high_watermark = 0 AND state = 'caught_up'}) eq '2';
	}), 'outbox.inbox_status: both partitions, caught up at high watermark 0');
$node->safe_psql('postgres', 'GRANT pg_monitor TO other');
is($node->safe_psql('postgres', q{SET ROLE other; SELECT count(*) FROM outbox.inbox_status}),
	'2', 'pg_monitor reads outbox.inbox_status');
is($node->safe_psql('postgres', q{SELECT outbox.unsubscribe('orders')}), 't', 'unsubscribe');
ok(poll_until(sub {
		$node->safe_psql('postgres',
			q{SELECT state FROM outbox.inbox_worker_status()}) eq 'idle';
	}), 'without subscriptions the inbox worker is idle');

$node->stop;
$mock->stop;
done_testing();
