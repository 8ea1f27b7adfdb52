
# Copyright (c) 2026, outbox_kafka developers

# Producer properties that would let progress run ahead of what the
# cluster holds (G1 no loss) or break the order of a key (G3) are refused
# when set, with SQLSTATE 22023 and a message naming the guarantee, in
# outbox_kafka.producer_properties and in the properties file alike; the
# relay checks the file again when it builds its producer.  With
# outbox_kafka.allow_unsafe_producer_properties = on they are accepted.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.unsafe';
my $dir = PostgreSQL::Test::Utils::tempdir;

# property => guarantee it breaks
my @unsafe = (
	[ 'enable.idempotence=false', 'G3' ],
	[ 'enable.idempotence=0', 'G3' ],
	[ 'acks=1', 'G1' ],
	[ 'acks=0', 'G1' ],
	[ 'request.required.acks=1', 'G1' ],
	[ 'enable.gapless.guarantee=false', 'G3' ],
	[ 'message.timeout.ms=1500', 'G3' ],
	[ 'delivery.timeout.ms=300000', 'G3' ],
	[ 'max.in.flight=6', 'G3' ],
	[ 'max.in.flight.requests.per.connection=10', 'G3' ],
	[ 'retries=3', 'G3' ],
	[ 'message.send.max.retries=0', 'G3' ],
	[ 'partitioner=random', 'G3' ],
	[ 'ACKS=1', 'G1' ],
	# librdkafka strips a "topic." prefix and applies the rest
	[ 'topic.message.timeout.ms=1500', 'G3' ],
	[ 'topic.partitioner=random', 'G3' ],
	[ 'topic.acks=1', 'G1' ],
	[ 'Topic.request.required.acks=0', 'G1' ],
);
my @safe = (
	'enable.idempotence=true', 'acks=all', 'acks=-1',
	'enable.gapless.guarantee=true', 'message.timeout.ms=0',
	'max.in.flight=5', 'retries=2147483647', 'partitioner=murmur2',
	'linger.ms=5;compression.type=lz4',
);

sub write_file
{
	my ($path, $mode, $content) = @_;
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh $content;
	close($fh);
	chmod($mode, $path) or die "chmod $path: $!";
	return;
}

my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'unsafe',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms');

# alter: ALTER SYSTEM SET name = 'value' with verbose errors; returns
# (exit code, stderr)
sub alter
{
	my ($name, $value) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nALTER SYSTEM SET $name = '$value'");
	return ($ret, $err);
}

# --- refused in producer_properties and in the file ---------------------------------
my $i = 0;
foreach my $case (@unsafe)
{
	my ($prop, $g) = @$case;
	my ($name) = split /=/, $prop;
	my ($ret, $err) = alter('outbox_kafka.producer_properties', $prop);
	isnt($ret, 0, "producer_properties '$prop' is refused");
	like($err, qr/ERROR:  22023: /, '... with SQLSTATE 22023');
	like($err,
		qr/producer property "\Q$name\E" would break guarantee $g \(/,
		"... naming guarantee $g");
	like($err, qr/allow_unsafe_producer_properties/, '... and the opt-out');

	my $file = "$dir/unsafe" . $i++ . '.properties';
	write_file($file, 0600, "# unsafe\n$prop\n");
	($ret, $err) = alter('outbox_kafka.producer_properties_file', $file);
	isnt($ret, 0, "'$prop' in the properties file is refused");
	like($err,
		qr/ERROR:  22023: producer property "\Q$name\E" in file "\Q$file\E" would break guarantee $g/,
		'... with SQLSTATE 22023, naming the file and the guarantee');
}

foreach my $prop (@safe)
{
	my ($ret, $err) = alter('outbox_kafka.producer_properties', $prop);
	is($ret, 0, "producer_properties '$prop' is accepted") or diag $err;
}

my ($ret, $err) = alter('outbox_kafka.producer_properties', 'log.queue=false');
like($err, qr/22023: producer property "log.queue" is set by the relay/,
	'log.queue cannot be overridden');

# without success reports the relay would wait for ever
foreach my $prop ('delivery.report.only.error=true', 'delivery.report.only.error=1')
{
	($ret, $err) = alter('outbox_kafka.producer_properties', $prop);
	like($err, qr/22023: producer property "delivery.report.only.error" must be false/,
		"'$prop' is refused, even with no guarantee at stake");
}
($ret, $err) = alter('outbox_kafka.producer_properties',
	'delivery.report.only.error=false');
is($ret, 0, 'delivery.report.only.error=false is accepted') or diag $err;

# a value with an escaped ';' is one value, not two entries
($ret, $err) =
  alter('outbox_kafka.producer_properties', 'client.id=a\;b;linger.ms=1');
is($ret, 0, 'a value with an escaped semicolon is accepted') or diag $err;
($ret, $err) = alter('outbox_kafka.producer_properties', 'client.id=a;b');
like($err, qr/22023: invalid producer property syntax in entry 2/,
	'an unescaped semicolon starts a new entry');

$node->safe_psql('postgres',
	'ALTER SYSTEM RESET outbox_kafka.producer_properties');

# --- the relay checks the file when it builds the producer --------------------------
my $file = "$dir/relay.properties";
write_file($file, 0600, "linger.ms=1\n");
is((alter('outbox_kafka.producer_properties_file', $file))[0],
	0, 'a safe properties file is accepted');
# the file changes without a reload: the relay refuses it at its next start
write_file($file, 0600, "acks=1\n");
$node->restart;
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"n\": 1}'::jsonb)");
ok( $node->poll_query_until(
		'postgres', "SELECT state = 'misconfigured' FROM outbox.status"),
	'a relay whose file asks for acks=1 is misconfigured');
like(
	outbox_status($node, 'postgres')->{last_error} // '',
	qr/producer property "acks" in file "\Q$file\E" would break guarantee G1/,
	'last_error names the property, the file and the guarantee');

# --- the opt-out ----------------------------------------------------------------
# ALTER SYSTEM judges by the opt-out as the next reload sets it: no reload
# is needed between the two statements
$node->safe_psql('postgres',
	'ALTER SYSTEM SET outbox_kafka.allow_unsafe_producer_properties = on');
foreach my $case (@unsafe)
{
	my ($prop) = @$case;
	next if $prop =~ /^ACKS/;
	($ret, $err) = alter('outbox_kafka.producer_properties', $prop);
	is($ret, 0, "with the opt-out '$prop' is accepted") or diag $err;
}
# (librdkafka itself wants acks=all with idempotence)
my $props = 'enable.idempotence=false;enable.gapless.guarantee=false;acks=1';
($ret, $err) = alter('outbox_kafka.producer_properties', $props);
is($ret, 0, 'acks=1 without idempotence set with the opt-out');
$node->reload;
ok( $node->poll_query_until(
		'postgres',
		"SELECT current_setting('outbox_kafka.producer_properties') = '$props'"),
	'the reload applies it');
ok( $node->poll_query_until(
		'postgres',
		"SELECT state IN ('idle', 'publishing') AND pending_events = 0 FROM outbox.status"
	),
	'with the opt-out the relay publishes with acks=1 and the file');
my @msgs = consume_all($mock->bootstrap, $topic);
is(scalar(@msgs), 1, 'the event reached Kafka');

# turning the opt-out off: the relay refuses the unsafe properties again
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET outbox_kafka.allow_unsafe_producer_properties');
$node->restart;
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"n\": 2}'::jsonb)");
ok( $node->poll_query_until(
		'postgres', "SELECT state = 'misconfigured' FROM outbox.status"),
	'without the opt-out the relay refuses them again');

$node->stop;
$mock->stop;
done_testing();
