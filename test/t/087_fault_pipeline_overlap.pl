
# Copyright (c) 2026, outbox_kafka developers

# Two chunks in flight (issue 19): an event committed while the relay's
# current chunk is still being delivered goes out in the next chunk at once,
# without waiting for the current one's acknowledgements.  The current
# chunk is kept in flight for as long as the test likes: its only event is
# of a partition without a leader, and outbox_kafka.stall_timeout (60 s) is
# far away, so nothing is held aside.  An event of another partition
# committed after that chunk was fetched must reach the consumer while the
# first is still unacknowledged; with one chunk in flight at a time it would
# wait for the stall timeout.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use MockKafka;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'pipe.overlap';
my $mock = start_mock(topics => [ "$topic:2" ]);
my $node = new_node(
	'pipeline_overlap',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => q{
outbox_kafka.stall_timeout = '60s'
});

# a key for each partition
my %key_of;
for my $i (1 .. 100)
{
	$key_of{ partition_for("k$i", 2) } //= "k$i";
	last if keys %key_of == 2;
}

sub enqueue
{
	my ($key) = @_;
	return $node->safe_psql('postgres',
		"SELECT outbox.enqueue('$topic', '{\"k\": \"$key\"}'::jsonb, key => '$key')");
}

# both partitions have had their producer's first acknowledgement
my @expected = (enqueue($key_of{0}), enqueue($key_of{1}));
ok(wait_until_published($node, 'postgres', 2), 'both partitions answer');
ok($node->poll_query_until('postgres', "SELECT state = 'idle' FROM outbox.status"),
	'the relay is idle');

# partition 0 loses its leader: an event of it stays in flight
$mock->command_ok("leader $topic 0 -1");
my $stuck = enqueue($key_of{0});
ok($node->poll_query_until('postgres', "SELECT state = 'publishing' FROM outbox.status"),
	'the chunk of the event of partition 0 is fetched (and produced)');

# committed after that chunk was fetched: belongs to a later chunk (and tick)
my $next = enqueue($key_of{1});
my $seen = poll_until(
	sub {
		return grep { (header_value($_, 'outbox-id') // '') eq $next }
		  consume_all($mock->bootstrap, $topic, 1);
	},
	30);
ok($seen, 'an event committed while a chunk is in flight is delivered before that chunk is acknowledged');
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.held_topics'),
	'0', 'nothing was held aside to let it pass');
is($node->safe_psql('postgres', 'SELECT pending_events > 0 FROM outbox.status'),
	't', 'the first event is still pending');

# the leader is back: everything is delivered
$mock->command_ok("leader $topic 0 1");
push @expected, $stuck, $next;
ok(wait_until_published($node, 'postgres', 4), 'nothing is pending');
my @msgs = consume_all($mock->bootstrap, $topic);
my $r = check_delivery(\@msgs, expected => \@expected);
is($r->{missing}, 0, 'every event is delivered');
is($r->{order_violations}, 0, 'per key, in commit order')
  or diag join("\n", @{ $r->{order_diag} });

$node->stop;
$mock->stop;
done_testing();
