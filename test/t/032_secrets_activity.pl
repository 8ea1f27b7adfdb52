
# Copyright (c) 2026, outbox_kafka developers

# G10 where statement text and configuration files meet: a credential that
# a superuser types into SQL, or mistypes into postgresql.conf, must not
# reach a pg_monitor member or the server log.
#
# - A multi-statement query whose first statement waits (here on an
#   advisory lock another session holds, the deterministic form of
#   "SELECT pg_sleep(3); SET ...") shows its whole text in
#   pg_stat_activity while it waits: the value must already be hidden.
# - pg_stat_statements must keep no value also when it is listed after
#   outbox_kafka in shared_preload_libraries (its hooks then run first).
# - A quoting mistake in postgresql.conf or postgresql.auto.conf makes the
#   configuration parser report the token it stopped at, a piece of the
#   password: on reload (postmaster), in every backend (DEBUG2) and in
#   ALTER SYSTEM.
# - A syntax error in the properties file names the line, never a value.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my %secret = map { $_ => "Sec${_}-" . int(rand(1e9)) . "x" }
  qw(waiting single conf auto file);

my $node = new_node(
	'secact',
	poll_interval => '1s',
	extra_conf => q{
shared_preload_libraries = 'outbox_kafka,pg_stat_statements'
pg_stat_statements.track_utility = on
log_min_messages = debug2
});
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');
$node->safe_psql('postgres', 'CREATE ROLE mon LOGIN IN ROLE pg_monitor');

# as_mon: run $sql as the pg_monitor member, return its output
sub as_mon
{
	my ($sql) = @_;
	my ($ret, $out, $err) =
	  $node->psql('postgres', $sql, extra_params => [ '-U', 'mon' ]);
	return "$out\n$err";
}

# no_secret: $text contains none of the secrets
sub no_secret
{
	my ($text, $name) = @_;
	my @found = grep { index($text, $secret{$_}) >= 0 } sort keys %secret;
	is("@found", '', $name) or diag $text;
	return;
}

# --- a multi-statement query waiting before its SET ---------------------------
my $holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(32)');

my $victim = $node->background_psql('postgres', on_error_stop => 0);
$victim->query_until(
	qr/started/, qq{\\echo started
SELECT pg_advisory_lock(32) \\; SET outbox_kafka.producer_properties = 'sasl.username=app;sasl.password=$secret{waiting}';
});
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'advisory'"),
	'the multi-statement query waits on the advisory lock');

my $shown = as_mon(
	"SELECT query FROM pg_stat_activity WHERE wait_event = 'advisory'");
like($shown, qr/SELECT pg_advisory_lock\(32\)/,
	'pg_monitor member sees the waiting multi-statement query');
like($shown, qr/producer_properties \[value hidden\]/,
	'... cut after the setting\'s name');
no_secret($shown, '... without the value, while the first statement waits');

$holder->query_safe('SELECT pg_advisory_unlock(32)');
$holder->quit;
$victim->quit;

# --- pg_stat_statements listed after outbox_kafka --------------------------------
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'sasl.password=$secret{single}'"
);
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET outbox_kafka.producer_properties');
$shown = as_mon('SELECT query FROM pg_stat_statements');
like($shown, qr/ALTER SYSTEM SET outbox_kafka\.producer_properties/,
	'pg_stat_statements keeps the ALTER SYSTEM');
no_secret($shown,
	'... without a value, although its hooks run before outbox_kafka\'s');
no_secret(as_mon('SELECT query FROM pg_stat_activity'),
	'pg_stat_activity shows no value after the statements');

# --- a quoting mistake in postgresql.conf ----------------------------------------
# The value ends at the stray quote after "ab"; the parser stops at the next
# token, the rest of the password.
my $conf = $node->data_dir . '/postgresql.conf';
my $conf_before = slurp_file($conf);
$node->append_conf('postgresql.conf',
	"outbox_kafka.producer_properties = 'sasl.username=app;sasl.password=ab'$secret{conf};linger.ms=5'\n"
);
my $offset = -s $node->logfile;
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->wait_for_log(qr/contains errors; no changes were applied/, $offset);
my $log = substr(slurp_file($node->logfile), $offset);
like(
	$log,
	qr/syntax error in file "\Q$conf\E" line \d+/,
	'a reload reports the syntax error with its file and line');
no_secret($log, '... but not the token the parser stopped at');

# backends parse the file too (DEBUG2); wait until one has
$offset = -s $node->logfile;
$node->safe_psql('postgres', 'SELECT 1');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->wait_for_log(qr/contains errors; no changes were applied/, $offset);
$node->safe_psql('postgres', 'SELECT 1');
open(my $fh, '>', $conf) or die "could not write $conf: $!";
print $fh $conf_before;
close($fh);
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');

# --- the same mistake in postgresql.auto.conf, met by ALTER SYSTEM ---------------
my $auto = $node->data_dir . '/postgresql.auto.conf';
my $auto_before = slurp_file($auto);
open($fh, '>>', $auto) or die "could not write $auto: $!";
print $fh
  "outbox_kafka.producer_properties = 'sasl.password=ab'$secret{auto};x=y'\n";
close($fh);
my ($ret, $out, $err) =
  $node->psql('postgres', "ALTER SYSTEM SET work_mem = '8MB'");
isnt($ret, 0, 'ALTER SYSTEM refuses to rewrite a broken postgresql.auto.conf');
like($err, qr/could not parse contents of file/, '... and says so');
no_secret($err, '... without the token');
open($fh, '>', $auto) or die "could not write $auto: $!";
print $fh $auto_before;
close($fh);

# --- a syntax error in the properties file ----------------------------------------
my $file = PostgreSQL::Test::Utils::tempdir . '/kafka.properties';
open($fh, '>', $file) or die "could not write $file: $!";
print $fh "sasl.username=relay\nsasl.password $secret{file}\n";
close($fh);
chmod(0600, $file) or die;
($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nALTER SYSTEM SET outbox_kafka.producer_properties_file = '$file'"
);
isnt($ret, 0, 'ALTER SYSTEM refuses a properties file with a syntax error');
like($err, qr/22023/, '... with SQLSTATE 22023');
like($err, qr/line 2 of producer properties file "\Q$file\E"/,
	'... naming the file and the line');
no_secret($err, '... and no value');

# --- never logged ------------------------------------------------------------------
$log = slurp_file($node->logfile);
my @leaks = grep {
	my $line = $_;
	grep { index($line, $secret{$_}) >= 0 } keys %secret
} split /\n/, $log;
is(scalar(@leaks), 0, 'the server log never contains a secret')
  or diag "log lines with a secret:\n" . join("\n", @leaks[ 0 .. 9 ]);

$node->stop;
done_testing();
