
# Copyright (c) 2026, outbox_kafka developers

# Published means durable (G9): with outbox_kafka.wait_for_standbys = on
# the relay publishes an event only once the synchronous standbys have
# confirmed its commit.  A standby that never answers keeps the event
# back (said in outbox.status); once the standby requirement is lifted the
# event flows.  An application that commits with synchronous_commit = off
# still gets its events published (after the relay flushed the WAL).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.durable';
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node('durable', bootstrap => $mock->bootstrap);

# an application committing asynchronously: published all the same
$node->safe_psql('postgres',
	"SET synchronous_commit = off; SELECT outbox.enqueue('$topic', 'async'::text, key => 'k')");
ok(wait_until_published($node, 'postgres', 1),
	'an event committed with synchronous_commit = off is published');

# a synchronous standby that does not exist: nothing may be published
$node->append_conf('postgresql.conf', qq{
outbox_kafka.wait_for_standbys = on
synchronous_standby_names = 'standby_that_never_comes'
});
$node->reload;
$node->poll_query_until('postgres',
	"SELECT current_setting('outbox_kafka.wait_for_standbys') = 'on'")
  or die 'reload not applied';
# the application itself must not wait for the standby in this test
$node->safe_psql('postgres',
	"SET synchronous_commit = local; SELECT outbox.enqueue('$topic', 'held back'::text, key => 'k')");
ok( $node->poll_query_until(
		'postgres',
		"SELECT last_error LIKE '%waiting for the synchronous standbys%' FROM outbox.status"),
	'outbox.status says the relay waits for the standbys')
  or diag explain outbox_status($node, 'postgres');
my @msgs = consume_all($mock->bootstrap, $topic);
is(scalar(grep { ($_->{payload} // '') eq 'held back' } @msgs),
	0, 'the event is not in Kafka while no standby confirmed it');
is(outbox_status($node, 'postgres')->{pending_events}, 1, 'it is still pending');

# lift the requirement: the event flows and the error goes away
$node->append_conf('postgresql.conf', "synchronous_standby_names = ''\n");
$node->reload;
ok(wait_until_published($node, 'postgres', 2),
	'published once no synchronous standby is required');
@msgs = consume_all($mock->bootstrap, $topic);
is(scalar(grep { ($_->{payload} // '') eq 'held back' } @msgs),
	1, 'the held-back event reached Kafka exactly once');
ok( $node->poll_query_until('postgres',
		"SELECT last_error IS NULL FROM outbox.status"),
	'last_error is cleared once it is fixed');

$node->stop;
$mock->stop;
done_testing();
