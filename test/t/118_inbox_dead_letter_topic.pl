# Copyright (c) 2026, outbox_kafka developers

# A subscription's Kafka dead-letter topic: a dead-lettered message is
# also enqueued (outbox.enqueue, as the subscription's owner, in the
# batch's transaction) to that topic, and the relay publishes it with the
# same key and value, the message's own headers and headers naming its
# source, error and SQLSTATE.  Subscribing checks that the owner may
# enqueue to the topic (42501 otherwise).  If the enqueue fails later (the
# grant was revoked), the whole batch rolls back: neither the dead-letter
# row nor the offset move without the Kafka record.
#
# outbox_kafka.consumer_properties: unsafe properties and credentials are
# refused (22023), a good value is applied on reload (the consumers are
# built again).

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock(topics => ['d.orders:2', 'd.dlq:1']);
my $node = new_node('inbox_dlq_topic', bootstrap => $mock->bootstrap);

$node->safe_psql('postgres', q{
CREATE ROLE billing;
GRANT USAGE ON SCHEMA outbox TO billing;
GRANT EXECUTE ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text)
    TO billing;
CREATE TABLE effect (n bigserial PRIMARY KEY, key text, seq int);
GRANT INSERT ON effect TO billing;
GRANT USAGE ON SEQUENCE effect_n_seq TO billing;
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := convert_from(m.value, 'UTF8')::jsonb;
BEGIN
    IF v ? 'poison' THEN
        RAISE EXCEPTION 'cannot bill order %', v ->> 'seq';
    END IF;
    INSERT INTO effect (key, seq) VALUES (convert_from(m.key, 'UTF8'), (v ->> 'seq')::int);
END
$$;
SELECT outbox.grant_topic('postgres', 'd.orders');
});

# --- the owner must be allowed to enqueue to the dead-letter topic ---------
my ($ret, $out, $err) = $node->psql('postgres', q{
	SET ROLE billing;
	SELECT outbox.subscribe('dl', 'd.orders', 'apply(outbox.inbox_message)',
	                        max_attempts => 2, dead_letter_topic => 'd.dlq');
}, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/42501: permission denied to use dead-letter topic "d.dlq"/,
	'without EXECUTE on outbox.enqueue: 42501');
$node->safe_psql('postgres', q{
GRANT EXECUTE ON FUNCTION outbox.enqueue(text, bytea, text, jsonb) TO billing;
});
($ret, $out, $err) = $node->psql('postgres', q{
	SET ROLE billing;
	SELECT outbox.subscribe('dl', 'd.orders', 'apply(outbox.inbox_message)',
	                        max_attempts => 2, dead_letter_topic => 'd.dlq');
}, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/42501: permission denied to publish to topic "d.dlq"/,
	'without a topic grant: 42501');
($ret, $out, $err) = $node->psql('postgres', q{
	SELECT outbox.subscribe('bad', 'd.orders', 'apply(outbox.inbox_message)',
	                        dead_letter_topic => 'no spaces allowed');
}, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  22023/, 'an invalid topic name: 22023');

$node->safe_psql('postgres', q{
SELECT outbox.grant_topic('billing', 'd.dlq');
SET ROLE billing;
SELECT outbox.subscribe('dl', 'd.orders', 'apply(outbox.inbox_message)',
                        max_attempts => 2, dead_letter_topic => 'd.dlq');
});
is($node->safe_psql('postgres', q{SELECT owner, dead_letter_topic FROM outbox.subscriptions}),
	'billing|d.dlq', 'with both, the subscription is made');

# --- a poison message reaches the topic ---------------------------------------
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('d.orders', jsonb_build_object('seq', i), key => 'k' || (i % 4))
  FROM generate_series(1, 20) i;
SELECT outbox.enqueue('d.orders', jsonb_build_object('seq', 21, 'poison', true), key => 'k1',
                      headers => '{"trace": "abc"}');
SELECT outbox.enqueue('d.orders', jsonb_build_object('seq', i), key => 'k' || (i % 4))
  FROM generate_series(22, 40) i;
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM effect}) eq '39';
	}), 'the good messages are applied');
is($node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_dead_letter}),
	'1', 'the poison message is a dead letter');
my ($dl_partition, $dl_offset, $dl_value) = split /\|/, $node->safe_psql('postgres',
	q{SELECT "partition", "offset", convert_from(value, 'UTF8') FROM outbox.inbox_dead_letter});

my @dlq;
ok(poll_until(sub { @dlq = consume_all($mock->bootstrap, 'd.dlq'); scalar(@dlq) >= 1 }),
	'the relay publishes it to the dead-letter topic');
is(scalar(@dlq), 1, 'once');
my $m = $dlq[0];
is($m->{key}, 'k1', 'with its key');
is($m->{payload}, $dl_value, 'and its value');
is(header_value($m, 'trace'), 'abc', 'its own headers');
is(header_value($m, 'inbox-subscription'), 'dl', 'the subscription');
is(header_value($m, 'inbox-source-topic'), 'd.orders', 'the source topic');
is(header_value($m, 'inbox-source-partition'), $dl_partition, 'partition');
is(header_value($m, 'inbox-source-offset'), $dl_offset, 'and offset');
is(header_value($m, 'inbox-error'), 'cannot bill order 21', 'the error');
is(header_value($m, 'inbox-sqlstate'), 'P0001', 'its SQLSTATE');
is(header_value($m, 'inbox-attempts'), '2', 'and the attempts');
ok(defined header_value($m, 'outbox-event-id'), 'and an identity of its own from the relay');

# --- the dead letter and its Kafka record commit together ---------------------
$node->safe_psql('postgres', q{SELECT outbox.revoke_topic('billing', 'd.dlq')});
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('d.orders', jsonb_build_object('seq', 41, 'poison', true), key => 'k2');
SELECT outbox.enqueue('d.orders', jsonb_build_object('seq', 42), key => 'k2');
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{
			SELECT last_error LIKE '%permission denied to publish to topic "d.dlq"%'
			  FROM outbox.inbox_worker_status()}) eq 't';
	}), 'the grant revoked: dead-lettering fails, the worker says why');
is($node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_dead_letter}),
	'1', 'no dead-letter row without its Kafka record');
is($node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE seq = 42}),
	'0', 'and the partition waits at the message');
$node->safe_psql('postgres', q{SELECT outbox.grant_topic('billing', 'd.dlq')});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE seq = 42}) eq '1';
	}), 'granted again: the partition goes on');
is($node->safe_psql('postgres', q{SELECT count(*) FROM outbox.inbox_dead_letter}),
	'2', 'one more dead letter');
ok(poll_until(sub { @dlq = consume_all($mock->bootstrap, 'd.dlq'); scalar(@dlq) >= 2 }),
	'and its record');
is(scalar(@dlq), 2, 'once');
is(header_value($dlq[1], 'inbox-error'), 'cannot bill order 41', 'the second one');

# --- outbox_kafka.consumer_properties -----------------------------------------
foreach my $case (
	[ 'group.id=mine', qr/consumer property "group.id" is set by the inbox/ ],
	[ 'enable.auto.commit=true', qr/consumer property "enable.auto.commit" is set by the inbox/ ],
	[ 'isolation.level=read_uncommitted', qr/consumer property "isolation.level" is set by the inbox/ ],
	[ 'sasl.password=hunter2', qr/consumer property "sasl.password" belongs in outbox_kafka.producer_properties/ ],
	[ 'no.such.property=1', qr/invalid consumer property "no.such.property"/ ],
	[ 'group.id=x;sasl.password=hunter3', qr/consumer property "group.id" is set by the inbox/ ])
{
	($ret, $out, $err) = $node->psql('postgres',
		"ALTER SYSTEM SET outbox_kafka.consumer_properties = '$case->[0]'",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/22023: /, "consumer_properties '$case->[0]' refused with 22023");
	like($err, $case->[1], '... saying why');
	unlike($err, qr/hunter\d/, '... never showing the value') if $case->[0] =~ /hunter/;
}
unlike(slurp_file($node->logfile), qr/hunter\d/,
	'a credential given to consumer_properties by mistake stays out of the server log');
my $offset = -s $node->logfile;
$node->safe_psql('postgres', q{
ALTER SYSTEM SET outbox_kafka.consumer_properties = 'fetch.wait.max.ms=20;queued.min.messages=500';
SELECT pg_reload_conf();
});
ok($node->wait_for_log(qr/subscription "dl" consumes 2 partitions of topic "d.orders"/, $offset),
	'a new value: the consumers are built again on reload');
$node->safe_psql('postgres', q{
SELECT outbox.enqueue('d.orders', jsonb_build_object('seq', 43), key => 'k3');
});
ok(poll_until(sub {
		$node->safe_psql('postgres', q{SELECT count(*) FROM effect WHERE seq = 43}) eq '1';
	}), 'and consume with it');
is($node->safe_psql('postgres', q{SHOW outbox_kafka.consumer_properties}),
	'fetch.wait.max.ms=20;queued.min.messages=500', 'SHOW shows it');

$node->stop;
$mock->stop;
done_testing();
