# Copyright (c) 2026, outbox_kafka developers
#
# What the relay keeps to read a batch cheaply (event_scan.c): the event
# tables' OIDs and columns across transactions, and a small batch's events
# copied by its bounds scan.  Events come out exactly as enqueued, in
# commit order, whether the batch was kept (one small transaction), too
# large to keep (more events than outbox_kafka.batch_size, read over
# several chunks) or holds a value stored out of line (TOAST); and the
# relay follows its tables when their indexes are rebuilt under new OIDs
# (REINDEX CONCURRENTLY) or the extension is dropped and created again.
use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock(brokers => 1, topics => ['kept.events:1']);
my $node = new_node(
	'kept',
	bootstrap => $mock->bootstrap,
	poll_interval => '200ms',
	extra_conf => "outbox_kafka.batch_size = 4\n");

my @expected;

# enqueue: one transaction of the given payloads (key k<n>, a header h)
my $enqueue = sub {
	my (@payloads) = @_;
	my $sql = join '',
	  map { "SELECT outbox.enqueue('kept.events', '$_'::text, 'k$_', '{\"h\": \"$_\"}');" }
	  @payloads;
	$node->safe_psql('postgres', "BEGIN; $sql COMMIT;");
	push @expected, @payloads;
};

# check: everything enqueued so far is published once, in commit order,
# with its key and header
my $check = sub {
	my ($what) = @_;
	my @msgs;
	OutboxKafkaTest::poll_until(
		sub {
			@msgs = OutboxKafkaTest::consume_all($mock->bootstrap, 'kept.events');
			return @msgs >= @expected;
		});
	is(join(',', map { $_->{payload} } @msgs), join(',', @expected),
		"$what: published once each, in commit order");
	# (the TOASTed one below has key kbig and header big)
	is( scalar(grep {
				my $name = length($_->{payload}) > 1000 ? 'big' : $_->{payload};
				$_->{key} ne "k$name"
				  || (OutboxKafkaTest::header_value($_, 'h') // '') ne $name
			} @msgs),
		0,
		"$what: keys and headers as enqueued");
};

# one-event batches, each kept by its bounds scan
$enqueue->("one-$_") for 1 .. 20;
$check->('one-event transactions');

# small batches of several events, and one larger than batch_size (4): not
# kept, read over several chunks and transactions
$enqueue->(map { "three-$_-$_" } 1 .. 3);
$enqueue->(map { "ten-$_" } 1 .. 10);
$enqueue->("after-ten");
$check->('batches of 3 and 10 events');

# a payload stored out of line (TOAST), alone in its batch
$node->safe_psql('postgres', q{
	SELECT outbox.enqueue('kept.events',
		(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 10000) i),
		'kbig', '{"h": "big"}')});
my @msgs;
OutboxKafkaTest::poll_until(
	sub {
		@msgs = OutboxKafkaTest::consume_all($mock->bootstrap, 'kept.events');
		return @msgs > @expected;
	});
my $big = $node->safe_psql('postgres',
	q{SELECT string_agg(md5(i::text), '') FROM generate_series(1, 10000) i});
ok(@msgs == @expected + 1 && $msgs[-1]{payload} eq $big,
	'a TOASTed payload is published byte for byte');
push @expected, $big;

# the indexes rebuilt under new OIDs while the relay runs: it must open
# the new ones, not the dropped ones it knew
my $old_index = $node->safe_psql('postgres',
	q{SELECT 'outbox.event_0_pkey'::regclass::oid});
$node->safe_psql('postgres', "REINDEX TABLE CONCURRENTLY outbox.event_$_")
  for 0 .. 2;
isnt($node->safe_psql('postgres', q{SELECT 'outbox.event_0_pkey'::regclass::oid}),
	$old_index, 'REINDEX CONCURRENTLY gave the index a new OID');
$enqueue->("reindexed-$_") for 1 .. 3;
$enqueue->(map { "reindexed-many-$_" } 1 .. 6);
$check->('after REINDEX CONCURRENTLY');

# the extension dropped and created again: new tables, new OIDs
$node->safe_psql('postgres', 'DROP EXTENSION outbox_kafka');
$node->safe_psql('postgres', 'CREATE EXTENSION outbox_kafka');
$enqueue->("recreated-$_") for 1 .. 3;
$check->('after DROP and CREATE EXTENSION');

unlike(slurp_file($node->logfile), qr/could not open relation|terminated by signal/,
	'the relay never opened a relation that was gone, nor crashed');

$node->stop;
$mock->stop;
done_testing();
