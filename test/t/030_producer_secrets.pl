
# Copyright (c) 2026, outbox_kafka developers

# G10: Kafka credentials are seen by superusers only.  A pg_monitor member
# (the role the docs recommend for outbox.status) must not see a secret
# through SHOW, current_setting(), pg_settings, pg_file_settings,
# pg_stat_activity, pg_stat_statements or outbox.status; the server log
# (log_statement = all, log_min_messages = debug5) must never contain one,
# also not for an upper-case or quoted ALTER SYSTEM, a failing SET, a
# refused value or a statement with a syntax error.  Credentials kept in
# outbox_kafka.producer_properties_file reach the producer (also values
# with ';'), and a file others can read is refused with a clear message.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.secrets';
my %secret = map { $_ => "Sec${_}-" . int(rand(1e9)) . "x" }
  qw(setting file upper quoted failset refused syntax);

my $dir = PostgreSQL::Test::Utils::tempdir;
my $file = "$dir/kafka.properties";

# write_file: the properties file with mode $mode
sub write_file
{
	my ($path, $mode, $content) = @_;
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh $content;
	close($fh);
	chmod($mode, $path) or die "chmod $path: $!";
	return;
}

# A value with ';' and '#' (only the file's own syntax allows both
# unescaped); debug=conf makes librdkafka print its configuration, which
# shows that the value arrived whole and that sensitive values are not
# printed.
write_file(
	$file, 0600, qq{# credentials of the relay
sasl.username = relay
sasl.password=$secret{file}

client.id=outbox;semi#colon
}
);

my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'secrets',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => qq{
shared_preload_libraries = 'pg_stat_statements,outbox_kafka'
outbox_kafka.producer_properties = 'sasl.username=app;sasl.password=$secret{setting};linger.ms=2;debug=conf'
outbox_kafka.producer_properties_file = '$file'
log_statement = all
log_min_messages = debug5
log_min_error_statement = debug5
log_parameter_max_length = -1
log_parameter_max_length_on_error = -1
});
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');
$node->safe_psql('postgres',
	'CREATE ROLE mon LOGIN IN ROLE pg_monitor; CREATE ROLE app LOGIN');

# --- the file is read: events flow, the ';' value is applied ------------------
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"n\": 1}'::jsonb)");
ok(wait_until_published($node, 'postgres', 1),
	'events flow with properties from the setting and from the file');
my @msgs = consume_all($mock->bootstrap, $topic);
is(scalar(@msgs), 1, 'the event reached Kafka');
# (the configuration is printed when the producer is built, before the
# event above could be published)
ok( poll_until(
		sub { slurp_file($node->logfile) =~ /client\.id = outbox;semi#colon/ },
		10),
	'a value with ";" and "#" from the file reached librdkafka whole');

# --- what a pg_monitor member sees ----------------------------------------------
sub as_mon
{
	my ($sql) = @_;
	my ($ret, $out, $err) =
	  $node->psql('postgres', $sql, extra_params => [ '-U', 'mon' ]);
	return ($ret, "$out\n$err");
}

sub no_secret
{
	my ($text, $name) = @_;
	my @found = grep { index($text, $secret{$_}) >= 0 } sort keys %secret;
	is("@found", '', $name) or diag $text;
	return;
}

my ($ret, $out) = as_mon('SHOW outbox_kafka.producer_properties');
is($ret, 0, 'pg_monitor member may SHOW producer_properties');
like($out, qr/sasl\.password=\*{8}/, '... and sees the password masked');
like($out, qr/linger\.ms=2/, '... and the other properties as they are');
no_secret($out, '... but no secret');

($ret, $out) =
  as_mon("SELECT current_setting('outbox_kafka.producer_properties')");
no_secret($out, 'current_setting() shows no secret to pg_monitor');

($ret, $out) = as_mon(
	"SELECT name, setting, reset_val, boot_val FROM pg_settings WHERE name LIKE 'outbox_kafka.%'"
);
is($ret, 0, 'pg_monitor member reads pg_settings');
no_secret($out, '... and sees no secret (setting, reset_val, boot_val)');

($ret, $out) = as_mon('SELECT * FROM pg_file_settings');
isnt($ret, 0, 'pg_file_settings is superuser-only');
no_secret($out, '... and shows pg_monitor no secret');

($ret, $out) = as_mon('SELECT row_to_json(s) FROM outbox.status s');
is($ret, 0, 'pg_monitor member reads outbox.status');
no_secret($out, '... with no secret in it');

($ret, $out) = $node->psql('postgres', 'SHOW outbox_kafka.producer_properties',
	extra_params => [ '-U', 'app' ]);
isnt($ret, 0, 'an application role cannot SHOW producer_properties');
no_secret($out, '... and sees no secret');

# superusers see the mask too: the value lives only in memory and files
no_secret(
	$node->safe_psql(
		'postgres', 'SHOW outbox_kafka.producer_properties'),
	'SHOW masks the secret for superusers too');

# --- statements that set the secret ----------------------------------------------
# A session that stays open, so that its last statement stays in
# pg_stat_activity for the pg_monitor member to read.
my ($in, $bg_out, $bg_err) = ('', '', '');
my $timer = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
my $bg = IPC::Run::start(
	[
		$node->installed_command('psql'),
		'-X', '-q', '-A', '-t', '-d', $node->connstr('postgres')
	],
	'<', \$in, '>', \$bg_out, '2>', \$bg_err, $timer);

# run_bg: send one statement to the open session, wait for its marker
my $marker = 0;
sub run_bg
{
	my ($sql) = @_;
	$marker++;
	$in .= "$sql;\n\\echo done-$marker\n";
	$bg->pump
	  until $bg_out =~ /done-$marker/ || $timer->is_expired || !$bg->pumpable;
	die "background psql did not answer: $bg_err" unless $bg_out =~ /done-$marker/;
	diag "run_bg($marker): out=[$bg_out] err=[$bg_err]";
	return $bg_err;
}

run_bg(
	"ALTER SYSTEM SET OUTBOX_KAFKA.PRODUCER_PROPERTIES = 'sasl.username=app;sasl.password=$secret{upper}'"
);
($ret, $out) = as_mon(
	"SELECT query FROM pg_stat_activity WHERE query ILIKE '%producer_properties%' AND pid <> pg_backend_pid()"
);
like($out, qr/PRODUCER_PROPERTIES/,
	'pg_stat_activity shows the upper-case ALTER SYSTEM');
no_secret($out, '... without the value');

run_bg(
	qq{ALTER SYSTEM SET "outbox_kafka"."producer_properties" = 'sasl.password=$secret{quoted}'}
);
my $err = run_bg(
	"SET outbox_kafka.producer_properties = 'sasl.password=$secret{failset}'");
like($err, qr/cannot be changed now/, 'SET of producer_properties fails');
$err = run_bg(
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'sasl.password=$secret{refused};acks=0'"
);
like($err, qr/would break guarantee G1/, 'a refused value is refused');
$err = run_bg(
	"ALTER SYSTEM SET outbox_kafka.producer_properties 'sasl.password=$secret{syntax}'"
);
like($err, qr/syntax error/, 'a syntax error is reported');
no_secret($err, '... without quoting the value back');
($ret, $out) = as_mon(
	"SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid()");
no_secret($out, 'pg_stat_activity hides the value of a failed statement');
$in .= "\\q\n";
$bg->finish;

$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok( $node->poll_query_until(
		'postgres',
		"SELECT current_setting('outbox_kafka.producer_properties') NOT LIKE '%linger%'"
	),
	'the quoted ALTER SYSTEM took effect on reload');

($ret, $out) = as_mon('SELECT query FROM pg_stat_statements');
is($ret, 0, 'pg_monitor member reads pg_stat_statements');
like($out, qr/producer_properties/i,
	'pg_stat_statements lists the ALTER SYSTEM statements');
no_secret($out, '... without their values');

# --- a file that others can read is refused ---------------------------------------
my $open_file = "$dir/open.properties";
write_file($open_file, 0640, "sasl.password=$secret{file}\n");
($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nALTER SYSTEM SET outbox_kafka.producer_properties_file = '$open_file'"
);
isnt($ret, 0, 'ALTER SYSTEM refuses a group-readable properties file');
like(
	$err,
	qr/producer properties file "\Q$open_file\E" has group or world access/,
	'... with a message naming the file');
no_secret($err, '... and no secret');

# the relay reads the file when it builds its producer: a file whose
# permissions are widened later is refused there, visible in outbox.status
chmod(0640, $file) or die;
$node->restart;
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"n\": 2}'::jsonb)");
ok( $node->poll_query_until(
		'postgres', "SELECT state = 'misconfigured' FROM outbox.status"),
	'a relay whose properties file is group-readable is misconfigured');
my $st = outbox_status($node, 'postgres');
like(
	$st->{last_error} // '',
	qr/producer properties file "\Q$file\E" has group or world access/,
	'last_error names the file and the problem');
chmod(0600, $file) or die;
$node->restart;
ok(wait_until_published($node, 'postgres', 1),
	'after chmod 600 and a restart the waiting event is published');

# --- never logged ------------------------------------------------------------------
my $log = slurp_file($node->logfile);
like($log, qr/statement: ALTER SYSTEM SET OUTBOX_KAFKA\.PRODUCER_PROPERTIES/,
	'log_statement = all logged the statements');
my @leaks;
foreach my $line (split /\n/, $log)
{
	push @leaks, $line if grep { index($line, $secret{$_}) >= 0 } keys %secret;
}
is(scalar(@leaks), 0, 'the server log never contains a secret')
  or diag "log lines with a secret:\n" . join("\n", @leaks[ 0 .. 9 ]);

$node->stop;
$mock->stop;
done_testing();
