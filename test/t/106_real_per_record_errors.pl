
# Copyright (c) 2026, outbox_kafka developers

# One bad record in a batch, on a real broker (issue 17 item 3, KIP-467).
# A compacted topic refuses a record without a key (INVALID_RECORD).  Kafka
# refuses the whole batch it came in, naming the bad record; librdkafka 2.4
# and later fail only that record with INVALID_RECORD and the others with
# _INVALID_DIFFERENT_RECORD.  The relay must dead-letter the bad event
# alone and publish the innocent ones of its batch, in order.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RealKafka;
use Test::More;

my $topic = 'r.compacted';
my $kafka = RealKafka->start();
$kafka->create_topic($topic, 1, 1, 'cleanup.policy=compact');
my $node = new_node('real_record_errors', bootstrap => $kafka->bootstrap);
note 'librdkafka ' . RealKafka::librdkafka_version();

# one transaction, one chunk, one partition: the keyless event sits in the
# middle of its batch
my @ids = split /\n/, $node->safe_psql('postgres', qq{
	SELECT outbox.enqueue('$topic', jsonb_build_object('i', i),
	                      key => CASE WHEN i = 4 THEN NULL ELSE 'k' || (i % 3) END)
	  FROM generate_series(1, 9) i});
my $bad = $ids[3];
my @innocent = grep { $_ != $bad } @ids;

ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM outbox.dead_letters WHERE id = $bad"),
	'the keyless event is dead-lettered');
like($node->safe_psql('postgres', "SELECT error FROM outbox.dead_letters WHERE id = $bad"),
	qr/INVALID_RECORD/, 'with the broker\'s reason');
is($node->safe_psql('postgres', "SELECT count(*) FROM outbox.dead_letters WHERE id <> $bad"),
	'0', 'no innocent event of its batch is dead-lettered');
ok(wait_until_published($node, 'postgres', scalar @innocent), 'the innocent events are published');
my @msgs;
ok( OutboxKafkaTest::poll_until(sub { @msgs = $kafka->consume($topic); @msgs >= @innocent }, 30),
	'and reach the topic');
my $r = check_delivery(\@msgs, expected => \@innocent);
is($r->{missing}, 0, 'all of them');
is($r->{order_violations}, 0, 'per key in commit order')
  or diag join("\n", @{ $r->{order_diag} });

$node->stop;
$kafka->stop;
done_testing();
