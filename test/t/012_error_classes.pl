# Every librdkafka error code is classified explicitly (src/error_class.c),
# and docs/reliability.md shows exactly that classification: a code added
# by a newer librdkafka, or a changed class, fails here until documented.
# The table is checked against the librdkafka in use (RDKAFKA_PREFIX, as
# test/run.sh builds with, else the system's): every code it knows has an
# explicit class, and the codes the relay knows by number only (newer than
# librdkafka 2.0.2) have the names that librdkafka gives them.
use strict;
use warnings;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Utils;
use Test::More;

my $top = "$ENV{TESTDIR}";
$top = '.' unless defined $ENV{TESTDIR} && -d "$top/src";
my $dir = tempdir(CLEANUP => 1);
my $prog = "$dir/print_classes";

my $prefix = $ENV{RDKAFKA_PREFIX} // '';
my @rdkafka = $prefix
  ? ('-isystem', "$prefix/include", "-L$prefix/lib", "-Wl,-rpath,$prefix/lib")
  : ();
my ($out, $err) = run_command(
	[
		'cc', '-Wall', '-Wextra', '-Werror', "-I$top/src", @rdkafka, '-o', $prog,
		"$top/test/error_classes/print_classes.c", "$top/src/error_class.c",
		'-lrdkafka'
	]);
ok(-x $prog, 'the classification printer builds') or diag $err;

($out, $err) = run_command([ $prog, '--newer' ]);
is($err, '', 'the codes known by number have the names librdkafka gives them');
my @newer_rows = grep { /^\|/ } split /\n/, $out;
($out, $err) = run_command([$prog]);
is($err, '', 'every librdkafka error code is classified explicitly');
my @code_rows = grep { /^\|/ } split /\n/, $out;
cmp_ok(scalar(@code_rows), '>=', 150, scalar(@code_rows) . ' codes classified');
my ($version) = run_command([ "$top/test/kafka/kafka_admin", 'version' ]);
chomp $version;
note "librdkafka $version";

# the documented table: every code of every supported librdkafka, that is
# the codes of the one in use plus those known by number only
my $doc = slurp_file("$top/docs/reliability.md");
my ($table) = $doc =~ /<!-- error classes: begin -->\n(.*?)<!-- error classes: end -->/s;
ok(defined $table, 'docs/reliability.md has the error class table');
my @doc_rows = grep { /^\| -?\d+ \|/ } split /\n/, ($table // '');
my $code_of = sub { ($_[0] =~ /^\| (-?\d+) \|/)[0] };
my %printed = map { $code_of->($_) => 1 } @code_rows;
my @expected = sort { $code_of->($a) <=> $code_of->($b) }
  (@code_rows, grep { !$printed{ $code_of->($_) } } @newer_rows);
is_deeply([ sort { $code_of->($a) <=> $code_of->($b) } @doc_rows ], \@expected,
	'the table in docs/reliability.md matches src/error_class.c');
my %class_of = map { my @f = split /\s*\|\s*/; ($f[2] => $f[3]) } @doc_rows;
is($class_of{_INVALID_DIFFERENT_RECORD}, 'transient',
	'KIP-467: the innocent records of a refused batch are produced again');

# the classes the issue named: broker errors never retried for ever, and
# cluster-wide faults never dead-letter
my %class = map { my @f = split /\s*\|\s*/; ($f[2] => $f[3]) } @code_rows;
is($class{POLICY_VIOLATION}, 'permanent', 'POLICY_VIOLATION is dead-lettered');
is($class{UNSUPPORTED_COMPRESSION_TYPE}, 'permanent',
	'UNSUPPORTED_COMPRESSION_TYPE is dead-lettered');
is($class{CLUSTER_AUTHORIZATION_FAILED}, 'cluster',
	'CLUSTER_AUTHORIZATION_FAILED waits for the operator');
is($class{SASL_AUTHENTICATION_FAILED}, 'cluster', 'bad credentials wait for the operator');
is($class{_AUTHENTICATION}, 'cluster', 'local authentication failure waits');
is($class{TOPIC_AUTHORIZATION_FAILED}, 'topic refused', 'a topic without ACL is held');
is($class{UNKNOWN_TOPIC_OR_PART}, 'topic refused', 'an unknown topic is held');
is($class{NOT_ENOUGH_REPLICAS}, 'topic unavailable', 'too few replicas: held, waits');
is($class{_FATAL}, 'fatal', 'a fatal error rebuilds the producer');
is($class{_MSG_TIMED_OUT}, 'transient', 'a timeout is produced again');

done_testing();
