# Copyright (c) 2026, outbox_kafka developers

# The NestJS example (examples/nestjs-orders) end to end: a PostgreSQL node
# with outbox_kafka publishing database "orders" to a real Apache Kafka
# broker (RealKafka.pm; OUTBOX_NESTJS_BROKER=mock uses the mock broker);
# the example's own `npm test` (Jest) then drives HTTP orders through the
# outbox to its two billing consumers side by side, the hand-written kafkajs
# one and the inbox variant (a PL/pgSQL handler run by outbox_kafka's inbox
# worker, db/inbox.sql): committed orders charged exactly once by each even
# after a replay and a redelivered event, rolled-back ones never, poison
# messages in the dead-letter topic byte for byte and in
# outbox.inbox_dead_letter, per-order order kept; the order API as
# the non-owner role of db/grants.sql, with Kafka unreachable, under
# concurrent orders and after its connections were terminated.
#
# Node.js dependencies come from the example's package-lock.json (`npm ci`;
# test/run.sh runs it before the suite, this test only if they are missing).

use strict;
use warnings;

use Cwd qw(abs_path);
use FindBin;
use lib $FindBin::Bin;

use IPC::Run;
use OutboxKafkaTest;
use RealKafka;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $example = abs_path("$FindBin::Bin/../../examples/nestjs-orders");

plan skip_all => 'npm is not installed (test/install_deps.sh installs it)'
  unless grep { -x "$_/npm" } split /:/, $ENV{PATH};

note 'Node.js ' . `node --version 2>&1` . 'npm ' . `npm --version 2>&1`;

# npm and Jest must not write into the home directory of the test user
my $tmp = PostgreSQL::Test::Utils::tempdir('nestjs');
local $ENV{npm_config_cache} = "$tmp/npm-cache";
local $ENV{npm_config_update_notifier} = 'false';
local $ENV{npm_config_fund} = 'false';
local $ENV{npm_config_audit} = 'false';

sub run_npm
{
	my ($what, @args) = @_;
	my $out = '';
	my $ok = IPC::Run::run([ 'npm', '--prefix', $example, @args ],
		'<', \undef, '>&', \$out, IPC::Run::timeout(600));
	return ($ok, $out);
}

unless (-d "$example/node_modules/\@nestjs/core")
{
	note 'node_modules missing: npm ci';
	my ($ok, $out) = run_npm('npm ci', 'ci', '--no-audit', '--no-fund');
	ok($ok, 'npm ci installs the example\'s dependencies from package-lock.json')
	  or diag $out;
}

my @topics = ('order.created:3', 'order.created.dlq:3');
my $broker =
  ($ENV{OUTBOX_NESTJS_BROKER} // 'real') eq 'mock'
  ? start_mock(topics => \@topics)
  : RealKafka->start(topics => \@topics);
note 'broker: ' . ref($broker) . ' at ' . $broker->bootstrap;
my $node = new_node(
	'nestjs',
	bootstrap => $broker->bootstrap,
	databases => 'orders',
	poll_interval => '100ms');

# the example connects with the libpq variables node-postgres also reads
local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
local $ENV{PGDATABASE} = 'orders';
local $ENV{PGUSER} = $node->safe_psql('postgres', 'SELECT current_user');
delete local $ENV{DATABASE_URL};
delete local $ENV{BILLING_DATABASE_URL};
local $ENV{KAFKA_BROKERS} = $broker->bootstrap;
local $ENV{KAFKAJS_NO_PARTITIONER_WARNING} = '1';

my $started = time();
my ($ok, $out) = run_npm('npm test', 'test', '--', '--ci', '--verbose');
my $seconds = time() - $started;
note $out;
ok($ok, "npm test passes in examples/nestjs-orders ($seconds s)")
  or diag $out;

my ($summary) = $out =~ /^Tests:\s+(.*)$/m;
$summary //= '';
like($summary, qr/\b\d+ passed, \d+ total/, "Jest ran its tests: $summary");
unlike($summary, qr/skipped|failed/, 'none skipped (the end-to-end suite ran) or failed');
like($out, qr/charges nobody twice when the partition is replayed/,
	'the redelivery test is among them');
like($out, qr/takes orders as the non-owner role orders_app/,
	'the order API ran as a non-owner role (db/grants.sql)');
like($out, qr/answers 120 concurrent orders with opposite line orders without a 500/,
	'the concurrent-orders test is among them');
like($out, qr/processes other partitions while one waits between retries/,
	'the partition concurrency test is among them');
like($out, qr/inbox variant: charges each committed order once/,
	'the inbox variant charged the orders');
like($out, qr/inbox variant: moves poison messages to outbox\.inbox_dead_letter/,
	'the inbox variant\'s dead-letter test is among them');
like($out, qr/inbox variant: charges nobody twice when rewound/,
	'the inbox variant\'s replay test is among them');
like($out, qr/both variants charge a redelivered event once/,
	'the redelivered-event test is among them');

# what the relay says afterwards
my $st = outbox_status($node, 'orders');
is($st->{pending_events}, 0, 'outbox.status: nothing pending after the run');
is($st->{events_dead_lettered}, 0,
	'the relay dead-lettered nothing (poison is the consumer\'s business)');

$node->stop;
$broker->stop;
done_testing();
