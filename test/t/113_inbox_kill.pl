
# Copyright (c) 2026, outbox_kafka developers

# Exactly-once across crashes: 3 000 keyed messages are applied while the
# inbox worker is killed with SIGKILL three times (each a crash restart of
# the server, during which the relay of the same database may publish
# events again: duplicates on the producing side) and the server is
# stopped in immediate mode once.  Every message has exactly one effect,
# in order per key, and outbox.inbox_status counts each once.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'k.orders';
my $total = 3000;
my $mock = start_mock(topics => ["$topic:4"]);
my $node = new_node('inbox_kill', bootstrap => $mock->bootstrap,
	extra_conf => "restart_after_crash = on\noutbox_kafka.inbox_batch_size = 20\n");

$node->safe_psql('postgres', $INBOX_EFFECT_HANDLER);
$node->safe_psql('postgres', qq{
SELECT outbox.grant_topic('postgres', 'k.*');
SELECT outbox.subscribe('kill', '$topic', 'apply(outbox.inbox_message)');
SELECT outbox.enqueue('$topic', jsonb_build_object('seq', i), key => 'k' || (i % 50))
  FROM generate_series(1, $total) i;
});

sub query { return query_or_empty($node, 'postgres', $_[0]); }
sub effects { my $n = query('SELECT count(*) FROM effect'); return $n eq '' ? -1 : $n; }
sub inbox_pid { return inbox_worker_pid($node, 'postgres'); }

foreach my $at (400, 1100, 1800)
{
	ok(poll_until(sub { effects() >= $at && inbox_pid() ne '' }),
		"at least $at effects, the inbox worker runs");
	my $pid = inbox_pid();
	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	ok(poll_until(sub { my $p = inbox_pid(); $p ne '' && $p ne $pid }),
		"SIGKILL of inbox worker $pid: a new one runs after the crash restart");
}

ok(poll_until(sub { effects() >= 2400 }), 'at least 2400 effects');
$node->stop('immediate');
$node->start;

ok(poll_until(sub { effects() >= $total }, 120), "$total effects");
# let anything in flight settle, then count again
ok(poll_until(sub {
		query(q{SELECT sum(lag) = 0 AND sum(stored_offset) = sum(high_watermark) FROM outbox.inbox_status})
		  eq 't';
	}), 'the inbox is caught up');
is(effects(), $total, "exactly $total effects: none missing, none doubled");
is($node->safe_psql('postgres', 'SELECT count(DISTINCT seq) FROM effect'), $total,
	'one per message');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT seq < lag(seq) OVER (PARTITION BY key ORDER BY n) AS back FROM effect) s
	 WHERE back}),
	'0', 'in order per key');
is($node->safe_psql('postgres', 'SELECT sum(applied) FROM outbox.inbox_status'), $total,
	'inbox_status counts each once');
note 'duplicates skipped (relay re-publishing around the crashes): '
  . $node->safe_psql('postgres', 'SELECT sum(duplicates) FROM outbox.inbox_status');

$node->stop;
$mock->stop;
done_testing();
