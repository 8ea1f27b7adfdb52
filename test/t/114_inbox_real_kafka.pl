
# Copyright (c) 2026, outbox_kafka developers

# The inbox end to end on Apache Kafka (RealKafka.pm): 2 000 keyed events
# published by the relay of one database are applied by the inbox of
# another (both on one server), through a SIGKILL of the inbox worker, an
# immediate shutdown of the server and a broker restart (kill -9, then
# start).  Every message has exactly one effect, in order per key.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RealKafka;
use Test::More;

my $topic = 'r.inbox';
my $total = 2000;
my $kafka = RealKafka->start(topics => ["$topic:6"]);
my $node = new_node('real_inbox', bootstrap => $kafka->bootstrap,
	databases => 'shop,billing',
	extra_conf => "restart_after_crash = on\noutbox_kafka.inbox_batch_size = 50\n");

$node->safe_psql('billing', $INBOX_EFFECT_HANDLER);
$node->safe_psql('billing', qq{
SELECT outbox.subscribe('billing', '$topic', 'apply(outbox.inbox_message)');
});
$node->safe_psql('shop', qq{
SELECT outbox.grant_topic('postgres', 'r.*');
SELECT outbox.enqueue('$topic', jsonb_build_object('seq', i), key => 'k' || (i % 40))
  FROM generate_series(1, $total) i;
});

sub query { return query_or_empty($node, 'billing', $_[0]); }
sub effects { my $n = query('SELECT count(*) FROM effect'); return $n eq '' ? -1 : $n; }
sub inbox_pid { return inbox_worker_pid($node, 'billing'); }

ok(poll_until(sub { effects() >= 300 && inbox_pid() ne '' }, 120), 'applying');
my $pid = inbox_pid();
my $offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
ok(poll_until(sub { my $p = inbox_pid(); $p ne '' && $p ne $pid }, 120),
	'SIGKILL of the inbox worker: a new one after the crash restart');

ok(poll_until(sub { effects() >= 800 }, 120), 'applying again');
$node->stop('immediate');
$node->start;

ok(poll_until(sub { effects() >= 1200 }, 120), 'applying after an immediate shutdown');
$kafka->stop_node(1, 'KILL');
$kafka->start_node(1);

ok(poll_until(sub { effects() >= $total }, 180), "$total effects");
ok(poll_until(sub {
		query(q{SELECT count(*) = 6 AND sum(lag) = 0 AND bool_and(state = 'caught_up')
		          FROM outbox.inbox_status}) eq 't';
	}, 60), 'caught up on all 6 partitions');
is(effects(), $total, "exactly $total effects through a SIGKILL, an immediate shutdown and a broker kill");
is(query('SELECT count(DISTINCT seq) FROM effect'), $total, 'one per message');
is(query(q{
	SELECT count(*) FROM (
	  SELECT seq < lag(seq) OVER (PARTITION BY key ORDER BY n) AS back FROM effect) s
	 WHERE back}),
	'0', 'in order per key');

note 'duplicates skipped: ' . query('SELECT sum(duplicates) FROM outbox.inbox_status');

$node->stop;
$kafka->stop;
done_testing();
