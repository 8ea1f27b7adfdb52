
# Copyright (c) 2026, outbox_kafka developers

# outbox_kafka.max_message_bytes bounds the whole Kafka record: with the
# producer's message.max.bytes set to the same value, every event is either
# refused by outbox.enqueue (SQLSTATE 54000) or delivered, never refused by
# the producer and dead-lettered for its size.  For events of every shape
# (the three payload kinds, tombstones, long and multi-byte keys, many
# headers, headers long enough for multi-byte length varints) the test
# finds the largest payload enqueue accepts, then enqueues it and its
# neighbours around that boundary.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $limit = 20000;
my $topic = 't.size';
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'message_size',
	bootstrap => $mock->bootstrap,
	poll_interval => '100ms',
	extra_conf => qq{
outbox_kafka.max_message_bytes = $limit
outbox_kafka.producer_properties = 'message.max.bytes=$limit'
});

# warm-up: the producer is connected and honours message.max.bytes
$node->safe_psql('postgres',
	"SELECT outbox.enqueue('$topic', '{\"warmup\": 1}'::jsonb)");
ok(wait_until_published($node, 'postgres', 1), 'warm-up event published');

# try_enqueue(n, ...) enqueues an event whose payload has n bytes, in a
# subtransaction that is always rolled back, and says "ok" or the SQLSTATE.
# enqueue_n(...) does it for real.  largest_ok(...) is the largest n that
# enqueue accepts (binary search).
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION payload_of(kind text, n int) RETURNS bytea LANGUAGE sql AS $$
    SELECT CASE kind
        WHEN 'json' THEN convert_to(jsonb_build_object('p', repeat('j', n - 9))::text, 'UTF8')
        WHEN 'text' THEN convert_to(repeat('t', n), 'UTF8')
        WHEN 'bytea' THEN decode(repeat('00ff', n / 2) || CASE WHEN n % 2 = 1 THEN '7f' ELSE '' END, 'hex')
    END
$$;
CREATE FUNCTION enqueue_n(kind text, n int, k text, h jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    IF kind = 'tombstone' THEN
        -- the key carries the size
        RETURN outbox.enqueue('t.size', NULL::bytea, k || repeat('k', n), h);
    ELSIF kind = 'json' THEN
        RETURN outbox.enqueue('t.size', jsonb_build_object('p', repeat('j', n - 9)), k, h);
    ELSIF kind = 'text' THEN
        RETURN outbox.enqueue('t.size', repeat('t', n), k, h);
    ELSE
        RETURN outbox.enqueue('t.size', payload_of('bytea', n), k, h);
    END IF;
END
$$;
CREATE FUNCTION try_enqueue(kind text, n int, k text, h jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        PERFORM enqueue_n(kind, n, k, h);
        RAISE EXCEPTION 'probe' USING ERRCODE = 'P0001';
    EXCEPTION
        WHEN SQLSTATE 'P0001' THEN RETURN 'ok';
        WHEN OTHERS THEN RETURN SQLSTATE;
    END;
END
$$;
CREATE FUNCTION largest_ok(kind text, k text, h jsonb) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    lo int := 10;       -- accepted
    hi int := 100000;   -- refused
    mid int;
    r text;
BEGIN
    IF try_enqueue(kind, lo, k, h) <> 'ok' THEN
        RAISE EXCEPTION 'even % bytes are refused: %', lo, try_enqueue(kind, lo, k, h);
    END IF;
    WHILE hi - lo > 1 LOOP
        mid := (lo + hi) / 2;
        r := try_enqueue(kind, mid, k, h);
        IF r = 'ok' THEN lo := mid;
        ELSIF r = '54000' THEN hi := mid;
        ELSE RAISE EXCEPTION 'unexpected SQLSTATE % for % bytes', r, mid;
        END IF;
    END LOOP;
    RETURN lo;
END
$$;
CREATE TABLE tried (shape text, n int, id bigint, sqlstate text);
});

# --- the shapes ---------------------------------------------------------------
sub many_headers
{
	my ($count, $len) = @_;
	return '{' . join(', ',
		map { sprintf('"h-%03d": "%s"', $_, 'v' x $len) } 1 .. $count) . '}';
}
my %shapes = (
	'text, no key, no headers' => [ 'text', undef, undef ],
	'json, long key, 40 headers of 63 bytes' =>
	  [ 'json', 'K' x 3000, many_headers(40, 63) ],
	'json, 40 headers of 64 bytes (2-byte varints)' =>
	  [ 'json', 'k', many_headers(40, 64) ],
	'bytea, multi-byte key, a 9000-byte header (3-byte varint)' =>
	  [ 'bytea', "clé-\x{1F511}" x 100, '{"big": "' . ('b' x 9000) . '"}' ],
	'text, null header values' =>
	  [ 'text', 'key', '{"a": null, "b": null, "c": null}' ],
	'tombstone, long key, headers' =>
	  [ 'tombstone', 'tomb-', many_headers(10, 100) ],
	'json, empty headers object, empty key' => [ 'json', '', '{}' ],);

my %boundary;
foreach my $shape (sort keys %shapes)
{
	my ($kind, $key, $headers) = @{ $shapes{$shape} };
	my $k = defined $key ? sql_lit($key) : 'NULL';
	my $h = defined $headers ? sql_lit($headers) . '::jsonb' : 'NULL';
	my $n = $node->safe_psql('postgres', "SELECT largest_ok('$kind', $k, $h)");
	$boundary{$shape} = $n;
	note "$shape: enqueue accepts up to $n bytes of payload (or key)";
	# one statement per event: a refused one must not take the others along
	foreach my $d (-2 .. 2)
	{
		my $size = $n + $d;
		$node->safe_psql(
			'postgres', qq{
DO \$\$
BEGIN
    INSERT INTO tried VALUES (${\ sql_lit($shape)}, $size,
                              enqueue_n('$kind', $size, $k, $h), NULL);
EXCEPTION WHEN OTHERS THEN
    INSERT INTO tried VALUES (${\ sql_lit($shape)}, $size, NULL, SQLSTATE);
END
\$\$});
	}
}

my $tried = $node->safe_psql('postgres',
	"SELECT count(*), count(id), count(*) FILTER (WHERE sqlstate = '54000'), "
	  . "count(*) FILTER (WHERE id IS NULL AND sqlstate IS DISTINCT FROM '54000') FROM tried");
my ($n_tried, $n_accepted, $n_refused, $n_other) = split /\|/, $tried;
note "$n_tried events tried: $n_accepted accepted, $n_refused refused with 54000";
is($n_other, 0, 'every refusal is SQLSTATE 54000');
is($n_accepted, 3 * scalar(keys %shapes),
	'at the boundary and below it accepted, above it refused, for every shape');

# nothing pending, and nothing held aside (where the relay holds topics)
my $held_q =
  $node->safe_psql('postgres', "SELECT to_regclass('outbox.held_event') IS NOT NULL") eq 't'
  ? ' AND NOT EXISTS (SELECT FROM outbox.held_event)'
  : '';
ok($node->poll_query_until('postgres',
		"SELECT (SELECT pending_events = 0 FROM outbox.status)$held_q"),
	'all accepted events published');
my $status = outbox_status($node, 'postgres');
is($status->{events_dead_lettered}, 0, 'no event was dead-lettered')
  or diag explain $status;
is($node->safe_psql('postgres', 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'outbox.dead_letters is empty')
  or diag $node->safe_psql('postgres',
	'SELECT id, octet_length(payload), octet_length(key), error FROM outbox.dead_letters');

# --- every accepted event arrived whole -----------------------------------------
my @msgs = consume_all($mock->bootstrap, $topic);
my $by_id = by_outbox_id(@msgs);
my ($missing, $bad, $largest) = (0, 0, 0);
foreach my $line (split /\n/,
	$node->safe_psql('postgres',
		'SELECT id, shape, n FROM tried WHERE id IS NOT NULL ORDER BY id'))
{
	my ($id, $shape, $n) = split /\|/, $line;
	my $m = $by_id->{$id};
	if (!$m)
	{
		diag "event $id ($shape, $n bytes) was not delivered";
		$missing++;
		next;
	}
	$m = $m->[0];
	my $kind = $shapes{$shape}[0];
	my $value_len = defined $m->{payload} ? length($m->{payload}) : -1;
	my $key_len = defined $m->{key} ? length($m->{key}) : -1;
	if (($kind eq 'tombstone' && $value_len != -1)
		|| ($kind ne 'tombstone' && $value_len != $n))
	{
		diag "event $id ($shape): value of $value_len bytes, enqueued $n";
		$bad++;
	}
	# the record as librdkafka counts it against message.max.bytes
	my $record = 36 + ($key_len > 0 ? $key_len : 0) + ($value_len > 0 ? $value_len : 0);
	foreach my $h (@{ $m->{headers} })
	{
		my ($name, $value) = @$h;
		$record += varint_len(length($name)) + length($name)
		  + varint_len(length($value // '')) + length($value // '');
	}
	$largest = $record if $record > $largest;
}
is($missing, 0, 'every accepted event was delivered');
is($bad, 0, 'every delivered value has the enqueued size');
note "largest delivered record: $largest bytes of $limit (librdkafka's count)";
ok($largest <= $limit, 'no delivered record exceeds message.max.bytes');
ok($largest > $limit - 300,
	'the boundary is tight: the largest record is within 300 bytes of the limit');

$node->stop;
$mock->stop;
done_testing();


sub sql_lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	utf8::encode($s) if utf8::is_utf8($s);
	return "'$s'";
}

sub varint_len
{
	my ($n) = @_;
	my $z = $n * 2;    # zig-zag of a non-negative length
	my $len = 1;
	while ($z >= 128) { $z >>= 7; $len++; }
	return $len;
}
