
# Copyright (c) 2026, outbox_kafka developers

# outbox_kafka.producer_properties holds credentials (sasl.password=...):
# README and DESIGN promise "superuser-only, hidden, never logged".  A user
# checks that an application role cannot read it, that it is not listed in
# pg_settings, that a bad property is reported by name without its value,
# and that the value never shows up in the server log, also not when it is
# changed with a reload.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.secret';
my $secret1 = 'TopSecret-4f1c9a';
my $secret2 = 'TopSecret-77e0d2';
my $secret3 = 'TopSecret-0b3e55';
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'secret',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf =>
	  "outbox_kafka.producer_properties = 'sasl.username=app;sasl.password=$secret1'\n"
);

$node->safe_psql('postgres', 'CREATE ROLE app LOGIN');

sub enqueue
{
	my ($what) = @_;
	return $node->safe_psql('postgres',
		"SELECT outbox.enqueue('$topic', jsonb_build_object('what', '$what'))");
}

my $id = enqueue('start');
ok(wait_until_published($node, 'postgres', 1),
	'events flow with the properties set at start-up');

# --- hidden from non-superusers --------------------------------------------------------
my ($ret, $out, $err) = $node->psql('postgres',
	'SHOW outbox_kafka.producer_properties',
	extra_params => [ '-U', 'app' ]);
isnt($ret, 0, 'an application role cannot SHOW producer_properties');
like($err, qr/must be superuser|permission denied/, "... $err");
unlike($out, qr/\Q$secret1\E/, '... and does not see the value');
($ret, $out, $err) = $node->psql('postgres',
	"SELECT current_setting('outbox_kafka.producer_properties')",
	extra_params => [ '-U', 'app' ]);
unlike($out, qr/\Q$secret1\E/, 'current_setting() does not reveal it to app');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_settings WHERE name = 'outbox_kafka.producer_properties' AND setting LIKE '%TopSecret%'"
	),
	'0',
	'pg_settings does not list the value');

# --- a bad property is named without its value ------------------------------------------
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'sasl.password=$secret2;no.such.property=$secret2'"
);
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
enqueue('misconfigured');
ok( $node->poll_query_until(
		'postgres', "SELECT state = 'misconfigured' FROM outbox.status"),
	'an unknown producer property makes the worker misconfigured');
my $st = outbox_status($node, 'postgres');
like($st->{last_error} // '', qr/no\.such\.property/,
	'last_error names the bad property');
unlike($st->{last_error} // '', qr/TopSecret/, 'last_error does not show the value');
cmp_ok($st->{pending_events}, '>=', 1, 'events wait while misconfigured');

# --- fixed with another reload: events flow again ------------------------------------------
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'sasl.username=app;sasl.password=$secret3'"
);
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok( $node->poll_query_until(
		'postgres',
		"SELECT state IN ('idle', 'publishing') AND pending_events = 0 FROM outbox.status"
	),
	'after fixing the properties the waiting events are published');

# --- never logged ------------------------------------------------------------------------------
my $log = slurp_file($node->logfile);
my @leaks = grep { /TopSecret/ } split /\n/, $log;
is(scalar(@leaks), 0,
	'the server log never contains the value of producer_properties')
  or diag "log lines with the secret:\n" . join("\n", @leaks);

$node->stop;
$mock->stop;
done_testing();
