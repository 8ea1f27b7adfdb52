
# Copyright (c) 2026, outbox_kafka developers

# A topic that does not exist on a real broker (auto.create.topics.enable=
# false, as in production): its events are held aside and reported
# (outbox.held_topics, outbox.status) while the other topic keeps flowing;
# creating the topic lets them flow, once each and in order.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RealKafka;
use Test::More;

my $kafka = RealKafka->start(topics => ['u.ok:2']);
my $node = new_node('real_unknown', bootstrap => $kafka->bootstrap);

# poll with a deadline; a failing query (a view that is missing) is false
sub soon { my ($c, $t) = @_; return OutboxKafkaTest::poll_until(sub { eval { $c->() } }, $t // 30); }

# interleaved: events of the missing topic between the healthy ones
$node->safe_psql('postgres', q{
SELECT outbox.enqueue(CASE WHEN i % 4 = 0 THEN 'u.missing' ELSE 'u.ok' END,
                      jsonb_build_object('i', i), key => 'k' || (i % 5))
FROM generate_series(1, 400) i});

ok(soon(sub { scalar($kafka->consume('u.ok')) == 300 }),
	'the 300 events of u.ok are published');
ok( soon(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM outbox.held_topics WHERE topic = 'u.missing'") == 1;
		}),
	'u.missing is held aside (outbox.held_topics)');
my $held = '';
$node->psql('postgres',
	"SELECT reason || '|' || held_events FROM outbox.held_topics WHERE topic = 'u.missing'",
	stdout => \$held);
note "held: $held";
like($held, qr/unknown/i, 'the reason says the topic is unknown');
like($held, qr/\|100$/, '100 events held');
my $st = outbox_status($node, 'postgres');
is($st->{held_topics}, 1, 'outbox.status: held_topics = 1');
is($st->{held_events}, 100, 'outbox.status: held_events = 100');
like($st->{state}, qr/^(publishing|holding)$/,
	"state of the healthy rest (never idle while a topic is held): $st->{state}");
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered');

# the healthy topic keeps flowing
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('u.ok', jsonb_build_object('late', i)) FROM generate_series(1, 50) i");
ok(soon(sub { scalar($kafka->consume('u.ok')) == 350 }),
	'u.ok keeps flowing while u.missing is held');

# create the topic: the held events flow
$kafka->create_topic('u.missing', 2);
ok( soon(
		sub {
			$node->safe_psql('postgres', 'SELECT count(*) FROM outbox.held_topics') == 0
			  && outbox_status($node, 'postgres')->{pending_events} == 0;
		}),
	'once the topic exists its events are published');
my @m = $kafka->consume('u.missing');
is(scalar(@m), 100, '100 messages in u.missing, once each');
my $d = check_delivery(\@m);
is($d->{duplicates}, 0, 'no outbox-id twice');
is($d->{order_violations}, 0, 'per key in commit order')
  or diag join("\n", @{ $d->{order_diag} });
is(outbox_status($node, 'postgres')->{events_dead_lettered}, 0, 'nothing dead-lettered');

$node->stop;
$kafka->stop;
done_testing();
