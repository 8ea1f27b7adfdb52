
# Copyright (c) 2026, outbox_kafka developers

# The relay keeps its open batch in memory and saves it to
# outbox.relay_state at most every outbox_kafka.progress_save_interval
# (100 ms; docs/architecture.md):
# - events trickling in, one transaction each, cost the relay far fewer
#   transaction ids than events (it used one or more per batch before);
# - once the relay is idle, outbox.relay_state and outbox.status catch up
#   (nothing stays unsaved);
# - if somebody else changes outbox.relay_state under a running relay, the
#   relay notices at its next save, says so, starts over from the table
#   and loses nothing;
# - a relay with a chunk in flight is not woken by every commit (it
#   counts them and looks when the chunk is done), and loses none;
# - after a restart the relay goes on from the saved progress;
# - progress_save_interval is reloadable, and at 0 the relay saves after
#   every chunk.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.memory';
my $mock = start_mock(topics => ["$topic:2"]);
my $node = new_node('memory', bootstrap => $mock->bootstrap);

# a procedure that commits every event on its own, paced (pause seconds
# between commits): the load, not a synchronisation
$node->safe_psql('postgres', qq{
CREATE PROCEDURE trickle(n int, tag text, pause float8 DEFAULT 0.01)
LANGUAGE plpgsql AS \$\$
BEGIN
    FOR i IN 1 .. n LOOP
        PERFORM outbox.enqueue('$topic', tag || i, key => 'k' || (i % 7));
        COMMIT;
        PERFORM pg_sleep(pause);
    END LOOP;
END
\$\$;
});

my $events = 100;
my $x0 = $node->safe_psql('postgres', 'SELECT pg_current_xact_id()');
$node->safe_psql('postgres', "CALL trickle($events, 'a')");
ok(wait_until_published($node, 'postgres', $events),
	'events committed one by one are published');
my $x1 = $node->safe_psql('postgres', 'SELECT pg_current_xact_id()');
# the enqueuing transactions and this script's own two calls
my $relay_xids = $x1 - $x0 - $events - 1;
cmp_ok($relay_xids, '<', $events / 3,
	"the relay used $relay_xids transaction ids for $events single-event transactions");

is($node->safe_psql('postgres',
		'SELECT cur_tick IS NULL, published_max_id FROM outbox.relay_state'),
	"t|$events", 'once idle, outbox.relay_state holds the completed progress');

my @msgs = consume_all($mock->bootstrap, $topic);
is(scalar(@msgs), $events, "$events messages in Kafka");

# somebody else changes the progress row under the running relay
$node->safe_psql('postgres',
	'UPDATE outbox.relay_state SET batches_done = batches_done + 1000');
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', "CALL trickle(20, 'b')");
ok( $node->wait_for_log(
		qr/outbox\.relay_state was changed by somebody other than the relay/,
		$log_offset),
	'the relay notices that outbox.relay_state changed under it');
ok(wait_until_published($node, 'postgres', $events + 20),
	'and starts over from the table, publishing every event');
@msgs = consume_all($mock->bootstrap, $topic);
my %seen = map { $_->{payload} => 1 } @msgs;
is(scalar(grep { !$seen{"b$_"} } 1 .. 20), 0, 'none of the events is missing');

# a relay with a chunk in flight is not woken by every commit
$mock->command_ok('broker_down 1');
$node->safe_psql('postgres', "SELECT outbox.enqueue('$topic', 'stuck')");
ok( $node->poll_query_until('postgres',
		"SELECT state = 'broker_unreachable' FROM outbox.status"),
	'with the broker down, a chunk stays in flight');
my $pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM outbox.status');
sub wakeups
{
	my ($switches) = slurp_file("/proc/$pid/status") =~ /^voluntary_ctxt_switches:\s*(\d+)/m;
	return $switches;
}
my $w0 = wakeups();
$node->safe_psql('postgres', "CALL trickle(300, 'c', 0.001)");
my $woken = wakeups() - $w0;
cmp_ok($woken, '<', 100,
	"300 commits while a chunk is in flight woke the relay $woken times");
$mock->command_ok('broker_up 1');
ok(wait_until_published($node, 'postgres', 1),
	'once the broker is back, everything is published');
@msgs = consume_all($mock->bootstrap, $topic);
%seen = map { $_->{payload} => 1 } @msgs;
is(scalar(grep { !$seen{"c$_"} } 1 .. 300), 0,
	'none of the events committed while the relay did not listen is missing');

# a restart goes on from the saved progress: nothing saved is published again
my $before = scalar(@msgs);
$node->restart;
$node->safe_psql('postgres', "SELECT outbox.enqueue('$topic', 'after restart')");
ok( poll_until(sub { scalar(consume_all($mock->bootstrap, $topic)) > $before }),
	'an event after a restart is published');
is(scalar(consume_all($mock->bootstrap, $topic)), $before + 1,
	'and nothing saved before the clean restart is published again');

# progress_save_interval = 0: saved after every chunk, one transaction id
# each (the same trickle used fewer than a third as many at 100 ms)
$node->safe_psql('postgres', "ALTER SYSTEM SET outbox_kafka.progress_save_interval = 0");
$node->reload;
ok( $node->poll_query_until('postgres',
		"SELECT setting = '0' FROM pg_settings WHERE name = 'outbox_kafka.progress_save_interval'"),
	'progress_save_interval is reloaded');
my $published = $node->safe_psql('postgres', 'SELECT events_published FROM outbox.status');
$x0 = $node->safe_psql('postgres', 'SELECT pg_current_xact_id()');
$node->safe_psql('postgres', "CALL trickle(30, 'd', 0.02)");
ok(wait_until_published($node, 'postgres', $published + 30), 'the trickle is published');
$x1 = $node->safe_psql('postgres', 'SELECT pg_current_xact_id()');
$relay_xids = $x1 - $x0 - 30 - 1;
cmp_ok($relay_xids, '>=', 15,
	"at 0, the relay saved after (nearly) every chunk: $relay_xids transaction ids for 30 events");

$node->stop;
$mock->stop;
done_testing();
