# Copyright (c) 2026, outbox_kafka developers
#
# DROP EXTENSION and CREATE EXTENSION while the relay runs: the relay says
# it waits for the extension, picks the new one up, publishes its events
# (each once: nothing of the dropped installation is applied to the new
# one), never crashes (a crashed worker would restart the whole cluster),
# and the server still stops promptly.
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use OutboxKafkaTest;

my $mock = OutboxKafkaTest::start_mock(brokers => 1, topics => ['drop.events:1']);
my $node = OutboxKafkaTest::new_node('drop', bootstrap => $mock->bootstrap,
	poll_interval => '200ms');

my $payloads = sub {
	join ',', map { $_->{payload} }
	  OutboxKafkaTest::consume_all($mock->bootstrap, 'drop.events');
};

for my $round (1 .. 3)
{
	$node->safe_psql('postgres', "SELECT outbox.enqueue('drop.events', 'before-$round')");
	ok(OutboxKafkaTest::poll_until(sub { $payloads->() =~ /before-$round/ }),
		"round $round: published before the drop");

	# an event left pending goes away with the extension
	$node->safe_psql('postgres',
		"SELECT outbox.enqueue('drop.events', 'dropped-$round'); DROP EXTENSION outbox_kafka");
	$node->safe_psql('postgres', 'CREATE EXTENSION outbox_kafka');
	$node->safe_psql('postgres', "SELECT outbox.enqueue('drop.events', 'after-$round')");
	ok(OutboxKafkaTest::poll_until(sub { $payloads->() =~ /after-$round/ }),
		"round $round: events of the re-created extension are published");
}

# DROP, CREATE and enqueue in one go, while the relay is idle: it must not
# read the new tables with what it kept of the dropped installation.  It
# used to publish the event, fail to save its progress ("outbox.relay_state
# was changed by somebody other than the relay") and publish it again.
my $count = sub {
	my ($p) = @_;
	scalar(grep { ($_->{payload} // '') eq $p }
		  OutboxKafkaTest::consume_all($mock->bootstrap, 'drop.events'));
};
for my $round (1 .. 5)
{
	ok($node->poll_query_until('postgres', "SELECT state = 'idle' FROM outbox.status"),
		"round $round: relay idle");
	$node->safe_psql('postgres', qq{
		DROP EXTENSION outbox_kafka;
		CREATE EXTENSION outbox_kafka;
		SELECT outbox.enqueue('drop.events', 'once-$round');
	});
	ok(OutboxKafkaTest::poll_until(sub { $count->("once-$round") >= 1 }),
		"round $round: the event of the new installation is published");
	ok($node->poll_query_until('postgres',
			'SELECT pending_events = 0 AND state = \'idle\' FROM outbox.status'),
		"round $round: nothing left to publish");
	is($count->("once-$round"), 1, "round $round: ... once");
}

ok($node->poll_query_until('postgres', "SELECT state = 'idle' FROM outbox.status"),
	'relay idle again');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no worker crashed');

my $t0 = time();
$node->stop('fast');
cmp_ok(time() - $t0, '<', 15, 'the server stops promptly');

$mock->stop;
done_testing();
