
# Copyright (c) 2026, outbox_kafka developers

# A failure that is not the message's fault (here SQLSTATE 42501, a
# privilege the handler lacks) counts no attempt, so it never reaches the
# dead-letter table, but it backs off like any failure: 100 ms, doubling
# to 30 s (docs/inbox.md, Failures).  The worker used to compute the wait
# from the counted attempts only, so such a failure was retried every
# 100 ms forever: ten transactions, each writing the offset row, per
# second and partition.  The handler writes each try's time to the server
# log (RAISE LOG is not rolled back with its subtransaction); the gaps
# between tries must grow.  Once the handler is fixed the message is
# applied, once, and nothing is dead-lettered.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 'tb.orders';
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node('inbox_transient_backoff', bootstrap => $mock->bootstrap);

$node->safe_psql('postgres', q{
CREATE TABLE effect (seq int);
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE LOG 'inbox-try at %', extract(epoch FROM clock_timestamp());
    RAISE EXCEPTION 'no right to bill yet' USING ERRCODE = 'insufficient_privilege';
END
$$;
SELECT outbox.subscribe('tb', 'tb.orders', 'apply(outbox.inbox_message)', max_attempts => 2);
});
my $log_from = -s $node->logfile;
$node->safe_psql('postgres',
	qq{SELECT outbox.enqueue('$topic', '{"seq": 1}'::jsonb, key => 'k')});

# the times of the handler's tries, in seconds
sub tries
{
	return slurp_file($node->logfile, $log_from) =~ /inbox-try at ([0-9.]+)/g;
}

ok(poll_until(sub { my @t = tries(); @t >= 7 }), 'the handler was tried seven times')
  or diag slurp_file($node->logfile, $log_from);
my @t = tries();
my @gaps = map { $t[$_] - $t[ $_ - 1 ] } 1 .. 6;
note 'gaps between tries (s): ' . join(' ', map { sprintf '%.3f', $_ } @gaps);
# each wait is at least its back-off, 100 ms doubling (less 10 % for the
# clock); a wait may be longer (the consumer fetching again after the
# pause, a busy machine), so only the lower bounds are checked
foreach my $i (3 .. 5)
{
	my $backoff = 0.1 * 2**$i;
	cmp_ok($gaps[$i], '>=', 0.9 * $backoff,
		sprintf('wait %d is at least its back-off of %.1f s', $i + 1, $backoff));
}
is( $node->safe_psql('postgres',
		"SELECT attempts || '|' || state FROM outbox.inbox_status WHERE subscription = 'tb'"),
	'0|retrying',
	'no attempt counted; the partition says retrying');

# fixed: applied once, nothing dead-lettered
$node->safe_psql('postgres', q{
CREATE OR REPLACE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO effect VALUES ((convert_from(m.value, 'UTF8')::jsonb ->> 'seq')::int);
END
$$;
});
ok( $node->poll_query_until('postgres',
		"SELECT applied = 1 FROM outbox.inbox_status WHERE subscription = 'tb'"),
	'applied once the handler may');
is($node->safe_psql('postgres', 'SELECT count(*) FROM effect'), '1', 'one effect');
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.inbox_dead_letter'),
	'0', 'nothing dead-lettered');

$node->stop;
$mock->stop;
done_testing();
