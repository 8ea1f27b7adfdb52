
# Copyright (c) 2026, outbox_kafka developers

# The relay says which librdkafka it runs, and warns about settings that
# meet a known defect of that version (src/librdkafka_version.c):
#  - the worker's start-up line names the librdkafka the server loaded, and
#    it is the one the tree was built against (RDKAFKA_PREFIX, as
#    test/run.sh passes it, else the system's);
#  - SCRAM below librdkafka 2.6.1 (Kafka 4 refuses its login) and
#    compression below 2.11.1 (may be dropped) are WARNINGs at producer
#    creation; with a version that has the fix, no such warning;
#  - an event is still published with those settings' compression.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RealKafka ();
use Test::More;

my $topic = 'v.events';
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node('lrkversion', bootstrap => $mock->bootstrap);

# the librdkafka the test clients link, built with the same RDKAFKA_PREFIX
my $expected = RealKafka::librdkafka_version();
my $prefix = $ENV{RDKAFKA_PREFIX} // '';
if ($prefix ne '')
{
	my ($pc) = slurp_file("$prefix/lib/pkgconfig/rdkafka.pc") =~ /^Version:\s*(\S+)/m;
	is($expected, $pc, "the test clients run the librdkafka of RDKAFKA_PREFIX ($pc)");
}
ok( $node->wait_for_log(
		qr/outbox_kafka worker started for database "postgres" \(librdkafka \Q$expected\E\)/),
	"the worker's start-up line names librdkafka $expected");
is($node->safe_psql('postgres', 'SELECT outbox.librdkafka_version()'),
	$expected, 'outbox.librdkafka_version() says the same');

$node->safe_psql('postgres', "SELECT outbox.enqueue('$topic', '{\"n\": 1}'::jsonb)");
ok(wait_until_published($node, 'postgres', 1), 'an event is published');
ok($node->wait_for_log(qr/outbox_kafka relay runs librdkafka \Q$expected\E \(built against \d+\.\d+\.\d+\)/),
	'the producer logs the librdkafka it runs and the header it was built with');

# apply_props($props): set outbox_kafka.producer_properties and wait until
# the worker recreates its producer with them; the producer is built
# synchronously right after that line, so by the next such line it is done
my $recreated = qr/recreates its Kafka producer: settings changed/;
sub apply_props
{
	my ($props) = @_;
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET outbox_kafka.producer_properties = '$props'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	ok($node->wait_for_log($recreated, $offset), "producer recreated with: "
		  . ($props =~ s/sasl\.password=[^;]*/sasl.password=.../r));
	return $offset;
}

# settings that meet the defects of older versions (the mock broker takes
# no SASL login: only the warnings at producer creation matter here)
my $from = apply_props('compression.codec=lz4');
$node->safe_psql('postgres', "SELECT outbox.enqueue('$topic', '{\"n\": 2}'::jsonb)");
ok(wait_until_published($node, 'postgres', 2), 'an event is published with lz4');
apply_props('security.protocol=SASL_PLAINTEXT;sasl.mechanism=SCRAM-SHA-512;'
	  . 'sasl.username=relay;sasl.password=not-used-pw');
apply_props('');
$node->safe_psql('postgres', "SELECT outbox.enqueue('$topic', '{\"n\": 3}'::jsonb)");
ok(wait_until_published($node, 'postgres', 3), 'events flow again without those settings');
my $log = slurp_file($node->logfile, $from);

my $n = RealKafka::version_number($expected);
my $warns = $n < RealKafka::version_number('2.11.1');
is($log =~ /WARNING:  librdkafka \Q$expected\E may send messages uncompressed despite compression lz4/ ? 1 : 0,
	$warns ? 1 : 0,
	"librdkafka $expected with compression: " . ($warns ? 'WARNING' : 'no warning'));
$warns = $n < RealKafka::version_number('2.6.1');
is($log =~ /WARNING:  librdkafka \Q$expected\E cannot log in to Apache Kafka 4 with SCRAM-SHA-512/ ? 1 : 0,
	$warns ? 1 : 0,
	"librdkafka $expected with SCRAM: " . ($warns ? 'WARNING' : 'no warning'));
unlike(slurp_file($node->logfile), qr/not-used-pw/, 'the password is not logged');

$node->stop;
$mock->stop;
done_testing();
