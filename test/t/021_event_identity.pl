# Copyright (c) 2026, outbox_kafka developers
#
# outbox-event-id is never reused (G4), where outbox-id is:
#
# - DROP EXTENSION / CREATE EXTENSION while the relay runs: the sequence
#   behind outbox-id starts over at 1;
# - a base backup restored to an earlier point (copied back and started,
#   no archive recovery: the timeline stays what it was);
# - a streaming standby that stopped receiving before the last events,
#   then promoted.
#
# In each case the events enqueued afterwards reach Kafka with outbox-id
# values that Kafka already holds for other events, and with
# outbox-event-id values it never held: a consumer that de-duplicates on
# outbox-event-id (docs/consumers.md) loses nothing.  Every case checks
# both, so the test also proves that outbox-id alone would have failed.
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OutboxKafkaTest;

my $mock = start_mock(
	brokers => 1,
	topics => [ 'id.recreate:1', 'id.restore:1', 'id.failover:1' ]);
my $bootstrap = $mock->bootstrap;

# enqueue n events to topic, payloads "<label>-1" .. "<label>-n"
sub enqueue_events
{
	my ($node, $topic, $label, $n) = @_;
	$node->safe_psql('postgres',
		"SELECT outbox.enqueue('$topic', '$label-' || g, key => 'k') FROM generate_series(1, $n) g"
	);
}

# wait until every payload in @$want is in topic; returns the messages
sub wait_in_kafka
{
	my ($topic, $want) = @_;
	my @msgs;
	poll_until(
		sub {
			@msgs = consume_all($bootstrap, $topic);
			my %have = map { ($_->{payload} // '') => 1 } @msgs;
			return !grep { !$have{$_} } @$want;
		});
	my %have = map { ($_->{payload} // '') => 1 } @msgs;
	is(scalar(grep { !$have{$_} } @$want), 0,
		"$topic: all " . scalar(@$want) . ' events expected are in Kafka');
	return @msgs;
}

# outbox-event-id names one event only; outbox-id was reused
sub check_identities
{
	my ($topic, $msgs) = @_;
	my (%by_uuid, %by_id);
	foreach my $m (@$msgs)
	{
		my $uuid = header_value($m, 'outbox-event-id') // 'none';
		$by_uuid{$uuid}{ $m->{payload} } = 1;
		$by_id{ header_value($m, 'outbox-id') }{ $m->{payload} } = 1;
	}
	ok(!exists $by_uuid{none}, "$topic: every message carries outbox-event-id");
	is(scalar(grep { keys %{ $by_uuid{$_} } > 1 } keys %by_uuid), 0,
		"$topic: no outbox-event-id was used for two different events");
	my %payloads = map { $_->{payload} => 1 } @$msgs;
	is(scalar(keys %by_uuid), scalar(keys %payloads),
		"$topic: one outbox-event-id per event");
	my @reused = grep { keys %{ $by_id{$_} } > 1 } keys %by_id;
	ok(scalar(@reused) > 0,
		"$topic: while outbox-id was reused for different events ("
		  . scalar(@reused) . ' ids)');
}

# $node lost the "b" events Kafka holds; its next events ("c") must reuse
# their outbox-id values and none of their outbox-event-id values
sub enqueue_after_loss
{
	my ($node, $topic, $a_events, $lost) = @_;
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM outbox.event WHERE convert_from(payload, 'UTF8') LIKE 'b-%'"),
		'0', "$topic: $lost");
	enqueue_events($node, $topic, 'c', 10);
	my @msgs = wait_in_kafka($topic,
		[ (map { "a-$_" } 1 .. $a_events), (map { "b-$_" } 1 .. 100), (map { "c-$_" } 1 .. 10) ]);
	check_identities($topic, \@msgs);
}

# --- DROP / CREATE EXTENSION while the relay runs -------------------------

my $node = new_node('recreate', bootstrap => $bootstrap, poll_interval => '200ms');
enqueue_events($node, 'id.recreate', 'before', 5);
wait_in_kafka('id.recreate', [ map { "before-$_" } 1 .. 5 ]);
# in one session, as an application's migration would
$node->safe_psql('postgres', q{
	DROP EXTENSION outbox_kafka;
	CREATE EXTENSION outbox_kafka;
	SELECT outbox.enqueue('id.recreate', 'after-' || g, key => 'k') FROM generate_series(1, 5) g;
});
is($node->safe_psql('postgres', 'SELECT min(id) FROM outbox.event'),
	'1', 'the re-created extension numbers events from 1 again');
my @msgs = wait_in_kafka('id.recreate',
	[ map { ("before-$_", "after-$_") } 1 .. 5 ]);
check_identities('id.recreate', \@msgs);
$node->stop;

# --- a base backup restored to an earlier point -----------------------------

my $old = new_node('restore_old', bootstrap => $bootstrap, poll_interval => '200ms',
	init => { allows_streaming => 1 });
enqueue_events($old, 'id.restore', 'a', 3);
wait_in_kafka('id.restore', [ map { "a-$_" } 1 .. 3 ]);
$old->backup('earlier');
# more than the 32 values a sequence logs ahead: the restored sequence
# hands out ids these events already had
enqueue_events($old, 'id.restore', 'b', 100);
wait_in_kafka('id.restore', [ map { "b-$_" } 1 .. 100 ]);
my $timeline_old = $old->safe_psql('postgres',
	'SELECT timeline_id FROM pg_control_checkpoint()');
$old->stop;

my $restored = PostgreSQL::Test::Cluster->new('restore_new');
$restored->init_from_backup($old, 'earlier');
$restored->start;
is($restored->safe_psql('postgres', 'SELECT timeline_id FROM pg_control_checkpoint()'),
	$timeline_old, 'the restored cluster is on the same timeline');
enqueue_after_loss($restored, 'id.restore', 3,
	'the restored cluster knows nothing of the events after the backup');
$restored->stop;

# --- a lagging standby promoted -------------------------------------------

my $primary = new_node('failover_primary', bootstrap => $bootstrap,
	poll_interval => '200ms', init => { allows_streaming => 1 });
$primary->backup('for_standby');
my $standby = PostgreSQL::Test::Cluster->new('failover_standby');
$standby->init_from_backup($primary, 'for_standby', has_streaming => 1);
$standby->start;
enqueue_events($primary, 'id.failover', 'a', 5);
wait_in_kafka('id.failover', [ map { "a-$_" } 1 .. 5 ]);
$primary->wait_for_catchup($standby);
# the standby falls behind: it receives nothing of what follows
$standby->stop;
enqueue_events($primary, 'id.failover', 'b', 100);
wait_in_kafka('id.failover', [ map { "b-$_" } 1 .. 100 ]);
$primary->stop('immediate');

$standby->start;
$standby->promote;
ok( $standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
	'the lagging standby is promoted');
enqueue_after_loss($standby, 'id.failover', 5,
	'the promoted standby never received the last events of the old primary');
$standby->stop;

$mock->stop;
done_testing();
