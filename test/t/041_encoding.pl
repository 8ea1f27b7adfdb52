
# Copyright (c) 2026, outbox_kafka developers

# In a database that is not UTF-8 (LATIN1 here) consumers still receive
# UTF-8: JSON payloads (labelled application/json), text payloads and the
# envelopes of outbox.capture are converted at enqueue; bytea payloads are
# sent as they are.  Keys and header names and values are text and jsonb in
# the database encoding, checked convertible at enqueue; the relay sends
# them in UTF-8.

use strict;
use utf8;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use Encode qw(encode encode_utf8);
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $topic = 't.enc';
my $db = 'latin1db';
my $mock = start_mock(topics => ["$topic:1"]);
my $node = new_node(
	'encoding',
	bootstrap => $mock->bootstrap,
	databases => $db,
	poll_interval => '100ms',
	start => 0);
$node->start;
$node->safe_psql('postgres',
	"CREATE DATABASE $db ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
$node->safe_psql($db, 'CREATE EXTENSION outbox_kafka');

# psql sends UTF-8; the server converts it to LATIN1
sub sql
{
	my ($query) = @_;
	return $node->safe_psql($db,
		encode_utf8("SET client_encoding = 'UTF8';\n$query"));
}

my %want;    # id => { value => bytes | undef, key => bytes | undef, headers => {name => value} }

my $word = "Zoë à Zürich, ½ æsir? non: ÿ ß ñ ¼ ©";
my ($json_id, $text_id, $bytea_id) = split /\|/, sql(qq{
SELECT outbox.enqueue('$topic', jsonb_build_object('w', '$word'), 'clé-json',
                      '{"x-ville": "Besançon", "x-é": "ü"}'),
       outbox.enqueue('$topic', '$word'::text, 'clé-text', '{"plain": "ascii"}'),
       outbox.enqueue('$topic', '\\xe9ff00c3a9'::bytea, 'k')});
$want{$json_id} = {
	value => encode_utf8(qq({"w": "$word"})),
	key => encode_utf8('clé-json'),
	headers => { 'x-ville' => encode_utf8('Besançon'), encode_utf8('x-é') => encode_utf8('ü') },
	json => 1,
};
$want{$text_id} = {
	value => encode_utf8($word),
	key => encode_utf8('clé-text'),
	headers => { plain => 'ascii' },
};
$want{$bytea_id} = { value => "\xe9\xff\x00\xc3\xa9", key => 'k', headers => {} };

# capture: the envelope is JSON, the key a column's text; a key change
# publishes a delete for the old key first
sql(q{
CREATE TABLE towns (name text PRIMARY KEY, note text);
CREATE TRIGGER towns_outbox AFTER INSERT OR UPDATE OR DELETE ON towns
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('t.enc', 'name');
});
my $first_capture = 1 + sql('SELECT max(id) FROM outbox.event');
sql(qq{INSERT INTO towns VALUES ('Ærøskøbing', '$word')});
sql(q{UPDATE towns SET name = 'Århus' WHERE name = 'Ærøskøbing'});

my $n = 3 + 3;
ok($node->poll_query_until($db,
		"SELECT pending_events = 0 AND events_published >= $n FROM outbox.status"),
	"the $n events are published");
is($node->safe_psql($db, 'SELECT count(*) FROM outbox.dead_letters'),
	'0', 'nothing dead-lettered');

my @msgs = consume_all($mock->bootstrap, $topic);
my $by_id = by_outbox_id(@msgs);
is(scalar(@msgs), $n, "$n messages on the topic");

foreach my $id ($json_id, $text_id, $bytea_id)
{
	my $m = $by_id->{$id} ? $by_id->{$id}[0] : undef;
	my $w = $want{$id};
	ok($m, "event $id delivered") or next;
	is(hexdump($m->{payload}), hexdump($w->{value}),
		"event $id: the payload arrives in UTF-8 (bytea as it was)");
	if ($w->{json})
	{
		is(header_value($m, 'content-type'), 'application/json',
			"event $id: labelled application/json");
	}
}

my @captured = map { $by_id->{$_} ? $by_id->{$_}[0] : undef }
  ($first_capture .. $first_capture + 2);
my $insert_env = encode_utf8(qq("after":{"name":"Ærøskøbing","note":"$word"}));
ok(defined $captured[0] && index($captured[0]{payload}, $insert_env) >= 0,
	'capture: the insert envelope is UTF-8')
  or diag hexdump($captured[0] ? $captured[0]{payload} : '');
ok(defined $captured[1] && $captured[1]{payload} =~ /^\{"op":"d"/
	  && index($captured[1]{payload}, encode_utf8('"before":{"name":"Ærøskøbing"')) >= 0,
	'capture: the key change first deletes the old key, in UTF-8')
  or diag explain \@captured;
ok(defined $captured[2] && $captured[2]{payload} =~ /^\{"op":"u"/
	  && index($captured[2]{payload}, encode_utf8('"after":{"name":"Århus"')) >= 0,
	'capture: then the update under the new key, in UTF-8');

# the relay converts keys and headers, stored in the database encoding
foreach my $id ($json_id, $text_id)
{
	my $m = $by_id->{$id} ? $by_id->{$id}[0] : undef;
	my $w = $want{$id};
	is(hexdump($m ? $m->{key} : undef), hexdump($w->{key}),
		"event $id: the key arrives in UTF-8");
	my %got = map { ($_->[0] => $_->[1]) }
	  grep { $_->[0] !~ /^(outbox-|content-type$)/ } @{ $m ? $m->{headers} : [] };
	is_deeply(\%got, $w->{headers},
		"event $id: header names and values arrive in UTF-8");
}
is(hexdump($captured[1] ? $captured[1]{key} : undef),
	hexdump(encode_utf8('Ærøskøbing')),
	'capture: the old key arrives in UTF-8');
is(hexdump($captured[2] ? $captured[2]{key} : undef),
	hexdump(encode_utf8('Århus')),
	'capture: the new key arrives in UTF-8');

$node->stop;
$mock->stop;
done_testing();


sub hexdump
{
	my ($s) = @_;
	return 'null' unless defined $s;
	return unpack('H*', $s);
}
