
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: a fatal producer error that comes back with every new
# producer (a cluster that refuses InitProducerId for good, as with
# CLUSTER_AUTHORIZATION_FAILED) must not make the relay rebuild its
# producer in a hot loop, flooding the log: each rebuild waits longer than
# the one before, outbox.status says why, and once the cluster accepts a
# producer again the events flow.  The mock refuses the next six
# InitProducerId requests with PRODUCER_FENCED, which makes an idempotent
# producer fatal.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::Local qw(timegm);

my $topic = 'fs.fatal.repeated';
my $refusals = 6;
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'fatal_repeated',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms');

$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"n\": 0}'::jsonb, key => 'k')");
ok(wait_until_published($node, 'postgres', 1), 'the first event is published');

my $offset = -s $node->logfile;
$mock->command_ok(
	'request_errors InitProducerId ' . join(' ', ('PRODUCER_FENCED') x $refusals));
# a harmless settings change makes the relay build a new producer
$node->safe_psql('postgres',
	"ALTER SYSTEM SET outbox_kafka.producer_properties = 'linger.ms=2'");
$node->reload;
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"n\": 1}'::jsonb, key => 'k')");

my $rebuild = qr/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \S+ .*recreates its Kafka producer (?:in \d+ ms )?after a fatal error/m;

# rebuild_times: the times (seconds) of the rebuilds after fatal errors
# logged since $offset
sub rebuild_times
{
	my $log = slurp_file($node->logfile, $offset);
	my @t;
	while ($log =~ /$rebuild/g)
	{
		my ($y, $mo, $d, $h, $mi, $s) =
		  $1 =~ /^(\d+)-(\d+)-(\d+) (\d+):(\d+):([\d.]+)$/;
		push @t, timegm(0, $mi, $h, $d, $mo - 1, $y) + $s;
	}
	return @t;
}

ok(poll_until(sub { rebuild_times() >= 5 }, 60),
	'five fatal errors in a row are logged');
my @t = rebuild_times();
my @gaps = map { $t[$_] - $t[ $_ - 1 ] } 1 .. $#t;
note 'seconds between rebuilds: ' . join(' ', map { sprintf '%.3f', $_ } @gaps);
cmp_ok($gaps[3], '>=', 0.6,
	'the relay waits longer before each rebuild (no hot loop)');
cmp_ok($gaps[3], '>', $gaps[0], '... doubling its wait');
my $status = outbox_status($node, 'postgres');
isnt($status->{state}, 'publishing', 'outbox.status does not say it publishes');
like($status->{last_error} // '', qr/fenced|fatal/i,
	'last_error says why');

ok(wait_until_published($node, 'postgres', 1),
	'once the cluster accepts a producer again the waiting event is published');
my $by_id = by_outbox_id(consume_all($mock->bootstrap, $topic));
is(scalar(keys %$by_id), 2, 'both events are in Kafka');
is(scalar(grep { @{ $by_id->{$_} } > 1 } keys %$by_id), 0, 'once each');

$node->stop;
$mock->stop;
done_testing();
