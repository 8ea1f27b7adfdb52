
# Copyright (c) 2026, outbox_kafka developers

# outbox_kafka.databases on reload: one worker per listed database, started
# and stopped by the launcher without a restart; a database that does not
# exist is reported once and does not make anything crash-loop; a listed
# database without the extension waits, and publishes once CREATE EXTENSION
# runs there.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.dbs';
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'databases',
	bootstrap => $mock->bootstrap,
	databases => 'postgres',
	poll_interval => '200ms');
$node->safe_psql('postgres', 'CREATE DATABASE second_db');
$node->safe_psql('second_db', 'CREATE EXTENSION outbox_kafka');
$node->safe_psql('postgres', 'CREATE DATABASE third_db');

sub workers
{
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '')"
		  . " FROM pg_stat_activity WHERE backend_type = 'outbox_kafka worker'");
}

sub launcher_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'outbox_kafka launcher'");
}

sub set_databases
{
	my ($list) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET outbox_kafka.databases = '$list'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
}

sub enqueue
{
	my ($db, $what) = @_;
	return $node->safe_psql($db,
		"SELECT outbox.enqueue('$topic', jsonb_build_object('db', current_database(), 'what', '$what'))"
	);
}

# How often event $id of database $db is in Kafka.  Ids are per database, so
# the payload says which database a message comes from.
sub in_kafka
{
	my ($db, $id) = @_;
	my @msgs = grep { $_->{payload} =~ /"db": "\Q$db\E"/ }
	  consume_all($mock->bootstrap, $topic);
	my $by_id = by_outbox_id(@msgs);
	return scalar(@{ $by_id->{$id} // [] });
}

# --- one database listed -------------------------------------------------------
ok($node->poll_query_until('postgres', 'SELECT state IS NOT NULL FROM outbox.status'),
	'worker for postgres reports a state');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'outbox_kafka launcher'"),
	'1', 'exactly one launcher');
is(workers(), 'postgres', 'exactly one worker, connected to postgres');
my $launcher = launcher_pid();

my $st = outbox_status($node, 'second_db');
is($st->{state}, undef, 'second_db: no worker state while not listed');
like($st->{problem} // '', qr/not listed in "outbox_kafka.databases"/,
	'second_db: status says it is not listed');

my $waiting = enqueue('second_db', 'before listing');
is(outbox_status($node, 'second_db')->{pending_events},
	1, 'second_db: the event waits (pending_events = 1)');

# --- add second_db -----------------------------------------------------------------
set_databases('postgres,second_db');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'outbox_kafka worker' AND datname = 'second_db'"
	),
	'a worker for second_db starts after the reload');
is(workers(), 'postgres,second_db', 'one worker per listed database');
ok($node->poll_query_until('second_db',
		'SELECT pending_events = 0 AND events_published >= 1 FROM outbox.status'),
	'second_db: the waiting event is published');
is(in_kafka('second_db', $waiting), 1, 'second_db: the waiting event is in Kafka');
my $id2 = enqueue('second_db', 'listed');
ok(wait_until_published($node, 'second_db', 2), 'second_db: a new event is published');
is(in_kafka('second_db', $id2), 1, 'second_db: the new event is in Kafka');

$st = outbox_status($node, 'second_db');
is($st->{state}, 'idle', 'second_db: status shows state idle');
is($st->{worker_pid},
	$node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'outbox_kafka worker' AND datname = 'second_db'"
	),
	'second_db: status shows the worker pid');
is($st->{problem}, undef, 'second_db: no problem reported');
is(launcher_pid(), $launcher, 'the launcher did not restart');

# --- remove it again -----------------------------------------------------------------
set_databases('postgres');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'outbox_kafka worker' AND datname = 'second_db'"
	),
	'the worker of second_db stops after it is removed from the list');
is(workers(), 'postgres', 'the worker of postgres keeps running');
ok($node->poll_query_until('second_db', 'SELECT state IS NULL FROM outbox.status'),
	'second_db: status shows no worker state');
$st = outbox_status($node, 'second_db');
like($st->{problem} // '', qr/not listed/, 'second_db: status says not listed');
enqueue('second_db', 'after removal 1');
enqueue('second_db', 'after removal 2');
is(outbox_status($node, 'second_db')->{pending_events},
	2, 'second_db: events enqueued now wait (pending_events = 2)');
my $pg_id = enqueue('postgres', 'still flowing');
ok(wait_until_published($node, 'postgres', 1), 'postgres keeps publishing');
is(in_kafka('postgres', $pg_id), 1, 'postgres: event in Kafka');

# --- a database that does not exist ------------------------------------------------------
my $offset = -s $node->logfile;
set_databases('postgres,no_such_db');
$offset = $node->wait_for_log(
	qr/WARNING:  database "no_such_db" listed in "outbox_kafka.databases" does not exist/,
	$offset);
ok(1, 'a WARNING names the missing database');
# Reload again, adding second_db: once its worker is up the launcher has
# reconsidered the list at least once more.
set_databases('postgres,no_such_db,second_db');
ok($node->poll_query_until('second_db',
		"SELECT state = 'idle' AND pending_events = 0 FROM outbox.status"),
	'second_db listed again: its waiting events are published');
my $log = slurp_file($node->logfile, $offset);
unlike($log, qr/"no_such_db" listed .* does not exist/,
	'the missing database is not reported again on every check');
is(launcher_pid(), $launcher, 'the launcher did not restart (no crash loop)');
unlike(slurp_file($node->logfile),
	qr/outbox_kafka (launcher|worker).*exited with exit code|terminated by signal/,
	'no outbox_kafka process exited abnormally');

# --- a listed database without the extension ------------------------------------------------
$offset = -s $node->logfile;
set_databases('postgres,second_db,third_db');
$node->wait_for_log(
	qr/outbox_kafka worker for database "third_db" is waiting_for_extension: [^\n]*not installed/,
	$offset);
ok(1, 'the worker of third_db says the extension is not installed');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'outbox_kafka worker' AND datname = 'third_db'"
	),
	'1',
	'and keeps waiting instead of exiting');
$node->safe_psql('third_db', 'CREATE EXTENSION outbox_kafka');
my $id3 = enqueue('third_db', 'after create extension');
ok(wait_until_published($node, 'third_db', 1),
	'third_db: published after CREATE EXTENSION');
is(in_kafka('third_db', $id3), 1, 'third_db: event in Kafka');
is(workers(), 'postgres,second_db,third_db', 'three workers');
is(launcher_pid(), $launcher, 'still the same launcher');

# --- the missing database appears: as the hint says, creating it is enough ----------
set_databases('postgres,second_db,third_db,late_db');
$node->safe_psql('postgres', 'CREATE DATABASE late_db');
$node->safe_psql('late_db', 'CREATE EXTENSION outbox_kafka');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'outbox_kafka worker' AND datname = 'late_db'"
	),
	'a worker starts for a listed database created after the reload');
my $id4 = enqueue('late_db', 'late');
ok(wait_until_published($node, 'late_db', 1), 'late_db: published');
is(in_kafka('late_db', $id4), 1, 'late_db: event in Kafka');

$node->stop;
$mock->stop;
done_testing();
