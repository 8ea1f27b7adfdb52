
# Copyright (c) 2026, outbox_kafka developers

# A database listed in outbox_kafka.databases that is created after the
# launcher last looked gets its relay as soon as a transaction there
# enqueues: the commit wakes the launcher (a latch), which used to look
# again only every 5 s, so the first events of a new database waited up to
# 5 s.  The launcher has just looked (and reported the database missing)
# when the database is created; its event must be published well before
# the launcher would have looked again.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $topic = 't.newdb';
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'newdb',
	bootstrap => $mock->bootstrap,
	databases => 'newdb',
	create_extension_in => []);

$node->wait_for_log(
	qr/database "newdb" listed in "outbox_kafka.databases" does not exist/);
my $looked_at = time();
$node->safe_psql('postgres', 'CREATE DATABASE newdb');
$node->safe_psql('newdb', 'CREATE EXTENSION outbox_kafka');
$node->safe_psql('newdb',
	"SELECT outbox.enqueue('$topic', '{\"first\": true}'::jsonb)");
my $committed_at = time();
note sprintf('enqueued %.2f s after the launcher looked', $committed_at - $looked_at);

my $published_at = poll_until(
	sub {
		$node->safe_psql('newdb',
			'SELECT count(*) FROM outbox.status WHERE events_published > 0 AND pending_events = 0'
		) eq '1' ? time() : 0;
	},
	30);
ok($published_at, 'the first event of the new database is published');
cmp_ok($published_at - $committed_at, '<', 2.5,
	sprintf('... %.2f s after its commit, not at the launcher\'s next look (5 s after the last)',
		$published_at - $committed_at));

my @msgs = consume_all($mock->bootstrap, $topic);
is(scalar(@msgs), 1, 'it is in Kafka once');

$node->stop;
$mock->stop;
done_testing();
