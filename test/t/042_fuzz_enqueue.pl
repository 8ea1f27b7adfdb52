
# Copyright (c) 2026, outbox_kafka developers

# Fuzzed enqueue: 10 000 generated inputs (fixed seed) through the three
# outbox.enqueue overloads, each either refused with a clear SQLSTATE or
# delivered byte for byte (key, value, headers, read back with
# test/fuzz/fuzz_consumer), never a crash.  Classes, one topic each:
# adversarial topics, keys over every Unicode plane, headers of every
# shape, JSON documents (deep nesting, odd numbers and escapes), text, raw
# bytes with NULs, payloads around the size limit, and tombstones.
#
# Inputs travel as bytes (bytea), so invalid UTF-8 and NUL bytes reach the
# server; those PostgreSQL itself refuses while building the arguments
# (convert_from, the jsonb parser) are recorded as stage "input", the rest
# as stage "enqueue".
#
# The corpus runs in the UTF-8 database "postgres"; a second one, made of
# mostly Latin-1 characters (no topic class), runs in a LATIN1 database
# (topics "l.*"): what is outside Latin-1 is refused while the arguments are
# built, the rest must reach the consumer in UTF-8.

use strict;
use warnings;
use utf8;

use FindBin;
use lib $FindBin::Bin;

use Digest::MD5 qw(md5_hex);
use File::Spec;
use IPC::Run;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $limit = 20000;       # max_message_bytes and the producer's message.max.bytes
my $overhead = 320;      # OUTBOX_MESSAGE_OVERHEAD_BYTES
my $t_start = time();

# --- the consumer -----------------------------------------------------------
my $consumer = File::Spec->catfile($PostgreSQL::Test::Utils::tmp_check, 'fuzz_consumer');
{
	my $src = File::Spec->catfile($FindBin::Bin, '..', 'fuzz', 'fuzz_consumer.c');
	my ($out, $err) = ('', '');
	IPC::Run::run([ $ENV{CC} // 'cc', '-O2', '-Wall', '-o', $consumer, $src, '-lrdkafka' ],
		'>', \$out, '2>', \$err)
	  or BAIL_OUT("could not build $src: $err");
}

# --- the topics -----------------------------------------------------------------
my @valid_topics = ('T', '_', '-', '...', 'f.Topic_9-x', 'f.' . ('t' x 247));
my @classes = qw(topic key hdr json text bytea size tomb);
my %class_topic = map { $_ => "f.$_" } @classes;
my @latin1_classes = grep { $_ ne 'topic' } @classes;
# eight partitions a class, sixteen for the large events of "size": the mock
# keeps at most 5 MiB per partition and silently drops older data
my $mock = start_mock(
	topics => [
		(map { "$_:1" } @valid_topics),
		(map { "$class_topic{$_}:" . ($_ eq 'size' ? 16 : 8) } @classes),
		(map { "l.$_:" . ($_ eq 'size' ? 16 : 8) } @latin1_classes)
	]);
my $latin1 = 'latin1db';
my $node = new_node(
	'fuzz',
	bootstrap => $mock->bootstrap,
	databases => "postgres,$latin1",
	poll_interval => '100ms',
	start => 0,
	extra_conf => qq{
outbox_kafka.max_message_bytes = $limit
outbox_kafka.producer_properties = 'message.max.bytes=$limit'
});
$node->start;
$node->safe_psql('postgres',
	"CREATE DATABASE $latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
$node->safe_psql($_, 'CREATE EXTENSION outbox_kafka') foreach ('postgres', $latin1);
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $log_offset = -s $node->logfile;

# --- generators -------------------------------------------------------------------

sub pick { return $_[ int(rand(@_)) ]; }

# A code point from every plane, with the awkward ones over-represented;
# for the LATIN1 corpus ($latin1_only) almost only Latin-1 ones.
my $latin1_only = 0;

sub rand_cp
{
	my $r = rand();
	if ($latin1_only && rand() > 0.005)
	{
		return 0x20 + int(rand(0x5f)) if $r < 0.5;
		return 1 + int(rand(0x1f)) if $r < 0.55;
		return 0x7f + int(rand(0x81));
	}
	return 0x20 + int(rand(0x5f)) if $r < 0.40;                 # printable ASCII
	return 1 + int(rand(0x1f)) if $r < 0.45;                    # controls (no NUL)
	return 0x7f + int(rand(0x81)) if $r < 0.52;                 # DEL, C1, Latin-1
	return pick(0xFFFE, 0xFFFF, 0xFEFF, 0x200B, 0x202E, 0x0301, 0xFDD0) if $r < 0.57;
	if ($r < 0.75)                                              # rest of the BMP
	{
		my $cp;
		do { $cp = 0x100 + int(rand(0xFF00)) } while $cp >= 0xD800 && $cp <= 0xDFFF;
		return $cp;
	}
	my $plane = 1 + int(rand(16));                              # astral planes, all
	return pick($plane * 0x10000, $plane * 0x10000 + 0xFFFF,
		$plane * 0x10000 + int(rand(0x10000)));
}

# Random UTF-8 string of up to $max characters (as bytes).
sub rand_ustr
{
	my ($max) = @_;
	my $s = join('', map { chr(rand_cp()) } 1 .. int(rand($max + 1)));
	utf8::encode($s);
	return $s;
}

my @invalid_utf8 = ("\xff", "\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"a\x00b", "\x00", "ok\xfe");

sub bytes_of
{
	my ($s) = @_;
	utf8::encode($s) if utf8::is_utf8($s);
	return $s;
}

# A JSON string literal of random content: raw UTF-8 and escapes.
sub json_str
{
	my ($max) = @_;
	my $s = '"';
	foreach (1 .. int(rand($max + 1)))
	{
		my $r = rand();
		if ($r < 0.15)
		{
			$s .= pick('\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t');
		}
		elsif ($r < 0.25)
		{
			my $cp = rand_cp();
			if ($cp > 0xFFFF)
			{
				my $v = $cp - 0x10000;
				$s .= sprintf('\\u%04x\\u%04x', 0xD800 + ($v >> 10), 0xDC00 + ($v & 0x3FF));
			}
			else
			{
				$s .= sprintf('\\u%04X', $cp);
			}
		}
		else
		{
			my $c = chr(rand_cp());
			$c = sprintf('\\u%04x', ord($c)) if ord($c) < 0x20;
			$c = '\\"' if $c eq '"';
			$c = '\\\\' if $c eq '\\';
			utf8::encode($c);
			$s .= $c;
		}
	}
	return $s . '"';
}

sub json_num
{
	return pick('0', '-0', '1', '-1', '3.14', '1e10', '1E-10', '-2.5e+300', '1e400',
		'0.000000000000000000001', '123456789012345678901234567890',
		int(rand(1e9)), -rand(1e6), '1.0', '100e-2');
}

sub json_doc
{
	my ($depth) = @_;
	my $r = rand();
	return pick('true', 'false', 'null') if $r < 0.1;
	return json_num() if $r < 0.25;
	return json_str(20) if $r < 0.45 || $depth > 4;
	my $ws = pick('', ' ', "\n", "\t ", "\r\n");
	if ($r < 0.7)
	{
		return '[' . $ws . join(",$ws", map { json_doc($depth + 1) } 1 .. int(rand(5))) . ']';
	}
	return '{' . $ws . join(",$ws",
		map { json_str(8) . ':' . $ws . json_doc($depth + 1) } 1 .. int(rand(5))) . '}';
}

sub rand_headers
{
	my $r = rand();
	return undef if $r < 0.3;
	my @m;
	foreach (1 .. int(rand(6)))
	{
		push @m, json_str(10) . ': ' . (rand() < 0.1 ? 'null' : json_str(30));
	}
	return '{' . join(', ', @m) . '}';
}

# --- the corpus --------------------------------------------------------------------
# Each input: class, topic, key, kind (jsonb, text, bytea), payload, headers
# (JSON text), pad and pad_char ("@PAD@" in key, payload or headers becomes
# pad_char repeated pad times, so large inputs travel small).
my @corpus;
sub add
{
	my %e = @_;
	$e{topic} = $class_topic{ $e{class} } unless exists $e{topic};
	push @corpus, \%e;
}

# generate(seed, latin1_only, classes...): a fresh corpus
sub generate
{
	my ($seed, $l1, @want) = @_;
	my %want = map { $_ => 1 } @want;
	srand($seed);
	$latin1_only = $l1;
	@corpus = ();
	foreach (1 .. 1000)    # topics
	{
		my $r = rand();
		my $topic;
		if ($r < 0.4) { $topic = pick(@valid_topics); }
		elsif ($r < 0.45) { $topic = undef; }
		elsif ($r < 0.5) { $topic = pick(@invalid_utf8); }
		elsif ($r < 0.75)
		{
			$topic = pick('', '.', '..', 'a' x 250, 'b' x 1000, 'a b', "a\tb", "a\nb", 'a/b',
				'a:b', 'a,b', 'a+b', 'a@b', 'orders*', ' x', 'x ', 'ä', '中文', "\x{1F600}",
				"a\x{200B}b", 'ａ', ('a' x 248) . 'é', "x\x{10FFFF}", '$', '%', '#', '~');
		}
		else
		{
			# legal characters with one illegal one somewhere
			my @c = map { pick('a' .. 'z', 'A' .. 'Z', 0 .. 9, '.', '_', '-') } 1 .. 1 + int(rand(30));
			my $bad;
			do { $bad = chr(rand_cp()) } while $bad =~ /^[a-zA-Z0-9._-]$/;
			splice(@c, int(rand(@c + 1)), 0, $bad);
			$topic = join('', @c);
		}
		add(class => 'topic', topic => defined $topic ? bytes_of($topic) : undef,
			kind => pick(qw(jsonb text bytea)), payload => '{"fuzz": "topic"}',
			key => pick(undef, 'k'));
	}

	foreach (1 .. 1600)    # keys
	{
		my $r = rand();
		my %e = (class => 'key', kind => 'text', payload => 'key fuzz');
		if ($r < 0.1) { $e{key} = undef; }
		elsif ($r < 0.15) { $e{key} = ''; }
		elsif ($r < 0.25) { $e{key} = pick(@invalid_utf8); }
		elsif ($r < 0.35)
		{
			# a character of any plane, at its start, end or anywhere (a
			# surrogate of plane 0 is refused as invalid UTF-8)
			my $plane = int(rand(17));
			$e{key} = bytes_of(chr(pick(0x7F, 0x80, 0x1, 0xFFFE, 0xFFFF, 0x1F511, 0xE0001,
				$plane * 0x10000 + pick(0, 0xFFFF, 0xFFFD, int(rand(0x10000))))));
		}
		elsif ($r < 0.45)
		{
			$e{key} = 'big-@PAD@';
			$e{pad} = int(rand($limit * 1.2));
			$e{pad_char} = pick('k', 'é', '中', "\x{1F511}");
			$e{pad} = int($e{pad} / length(bytes_of($e{pad_char})));
		}
		else { $e{key} = rand_ustr(pick(1, 5, 50, 300)); }
		$e{kind} = pick(qw(jsonb text bytea));
		$e{payload} = '"key fuzz"' if $e{kind} eq 'jsonb';
		add(%e);
	}

	foreach (1 .. 2200)    # headers
	{
		my $r = rand();
		my %e = (class => 'hdr', kind => pick(qw(jsonb text bytea)), key => pick(undef, 'hk'));
		$e{payload} = $e{kind} eq 'jsonb' ? '{"fuzz": "headers"}' : 'headers fuzz';
		if ($r < 0.1)
		{
			$e{headers} = pick('[]', '["a"]', '"s"', '1', 'true', 'null', '{"a": {"b": "c"}}',
				'{"a": ["x"]}', '{"n": 1}', '{"b": false}', '{"f": 1.5e10}', '{"ok": "y", "bad": 2}',
				'{"a": {}}', '{"a": []}');
		}
		elsif ($r < 0.17)
		{
			$e{headers} = pick('{"outbox-id": "1"}', '{"OUTBOX-created-at": "x"}', '{"Outbox-": null}',
				'{"outbox-requeued-from": "3"}', '{"x": "1", "outbox-x": "2"}', '{"oUtBoX-id": "1"}');
		}
		elsif ($r < 0.25)
		{
			$e{headers} = pick('{"a": "\\u0000"}', '{"\\u0000": "x"}', '{"a": "\\ud800"}', '{"a": }',
				'{', '', '{"a": "b",}', "{\"a\": \"\xff\"}", "{\"\xc3\": \"x\"}", '{"a": "\\x41"}');
		}
		elsif ($r < 0.32)
		{
			$e{headers} = pick('{"big": "@PAD@"}', '{"@PAD@": "v"}', '{"a": "@PAD@", "b": "@PAD@"}');
			$e{pad} = int(rand($limit * 0.8));
			$e{pad_char} = pick('v', 'é', "\x{1F600}");
			$e{pad} = int($e{pad} / length(bytes_of($e{pad_char})));
		}
		elsif ($r < 0.36)
		{
			my $n = pick(64, 200, 500, 2000);
			$e{headers} = '{' . join(', ', map { sprintf('"h%d": "%s"', $_, 'x' x ($_ % 7)) } 1 .. $n) . '}';
		}
		elsif ($r < 0.4)
		{
			$e{headers} = pick('{"a": "1", "a": "2"}', '{"content-type": "text/plain"}',
				'{"": ""}', '{"": null}', '{"\\ud83d\\ude00": "\\u00e9\\n\\t"}', '{}',
				'{"Content-Type": "application/json", "content-type": "x"}');
		}
		else { $e{headers} = rand_headers() // '{}'; }
		add(%e);
	}

	foreach (1 .. 1700)    # JSON payloads
	{
		my $r = rand();
		my %e = (class => 'json', kind => 'jsonb', key => pick(undef, 'jk', rand_ustr(5)),
			headers => pick(undef, rand_headers()));
		if ($r < 0.08)
		{
			my $d = pick(10, 100, 1000, 3000, 10000, 100000);
			$e{payload} = rand() < 0.5 ? ('[' x $d) . (']' x $d) : ('{"a":' x $d) . '1' . ('}' x $d);
		}
		elsif ($r < 0.13)
		{
			$e{payload} = pick('NaN', 'Infinity', '-Infinity', '{"a": NaN}', '[1,]', '{"a" 1}', "'x'",
				'', ' ', '01', '1.', '.5', '+1', '"\\x"', '"\\u12"', "\"\x01\"", '[1] [2]', "\xff");
		}
		elsif ($r < 0.18)
		{
			$e{payload} = pick('{"p": "@PAD@"}', '["@PAD@"]', '"@PAD@"');
			$e{pad} = $limit - $overhead - 20 + int(rand(40)) - 20 * (rand() < 0.5);
			$e{pad} = int(rand($limit * 1.5)) if rand() < 0.3;
			$e{pad_char} = pick('j', 'é', "\x{1D11E}");
			$e{pad} = int($e{pad} / length(bytes_of($e{pad_char})));
		}
		else { $e{payload} = json_doc(0); }
		add(%e);
	}

	foreach (1 .. 1000)    # text payloads
	{
		my $r = rand();
		my %e = (class => 'text', kind => 'text', key => pick(undef, 'tk'),
			headers => pick(undef, rand_headers()));
		if ($r < 0.05) { $e{payload} = ''; }
		elsif ($r < 0.15) { $e{payload} = 'x' . pick(@invalid_utf8) . 'y'; }
		elsif ($r < 0.2)
		{
			$e{payload} = 'pad @PAD@ end';
			$e{pad} = int(rand($limit * 1.3));
			$e{pad_char} = pick('t', 'ß', '中', "\x{10FFFF}");
			$e{pad} = int($e{pad} / length(bytes_of($e{pad_char})));
		}
		else { $e{payload} = rand_ustr(pick(1, 10, 100, 2000)); }
		add(%e);
	}

	foreach (1 .. 1000)    # raw bytes
	{
		my $r = rand();
		my %e = (class => 'bytea', kind => 'bytea', key => pick(undef, 'bk'),
			headers => pick(undef, rand_headers()));
		if ($r < 0.05) { $e{payload} = ''; }
		elsif ($r < 0.1) { $e{payload} = join('', map { chr } 0 .. 255); }
		elsif ($r < 0.15) { $e{payload} = "\x00" x int(rand(100)); }
		elsif ($r < 0.2)
		{
			$e{payload} = "\x00\xff";
			$e{pad} = int(rand($limit * 1.3));
			$e{pad_char} = pick('b', "\x{1F600}");
			$e{pad} = int($e{pad} / length(bytes_of($e{pad_char})));
		}
		else { $e{payload} = join('', map { chr(int(rand(256))) } 1 .. int(rand(pick(10, 300, 3000)))); }
		add(%e);
	}

	foreach (1 .. 800)    # around the size limit
	{
		my %e = (class => 'size', kind => pick(qw(jsonb text bytea)),
			key => rand_ustr(20), headers => pick(undef, '{}', rand_headers()));
		# a key spreads them over the partitions (null keys stick to one a while)
		$e{pad_char} = pick('s', 's', 'é', '中', "\x{1F600}");
		$e{payload} = $e{kind} eq 'jsonb' ? '{"p": "@PAD@"}' : '@PAD@';
		my $used = $overhead + length($e{key} // '') + length($e{headers} // '') + 9;
		$e{pad} = int(($limit - $used + int(rand(81)) - 40) / length(bytes_of($e{pad_char})));
		add(%e);
	}

	foreach (1 .. 700)    # tombstones
	{
		my $r = rand();
		my %e = (class => 'tomb', kind => pick(qw(jsonb text bytea)), payload => undef,
			headers => pick(undef, rand_headers()));
		if ($r < 0.15) { $e{key} = undef; }
		elsif ($r < 0.2) { $e{key} = ''; }
		elsif ($r < 0.3)
		{
			$e{key} = '@PAD@';
			$e{pad} = $limit - $overhead - 20 + int(rand(40));
			$e{pad_char} = 'z';
		}
		else { $e{key} = rand_ustr(pick(1, 10, 100)); }
		add(%e);
	}

	@corpus = grep { $want{ $_->{class} } } @corpus;
	if ($l1)
	{
		foreach my $e (@corpus)
		{
			$e->{pad_char} = 'é' if defined $e->{pad_char} && ord($e->{pad_char}) > 0xFF;
		}
	}
	return @corpus;
}

my @utf8_corpus = generate(424242, 0, @classes);
my @latin1_corpus = generate(434343, 1, grep { $_ ne 'topic' } @classes);
@corpus = ();
my $n_inputs = scalar(@utf8_corpus);
cmp_ok($n_inputs, '>=', 10000, "corpus of $n_inputs inputs, and " . scalar(@latin1_corpus)
	  . ' mostly Latin-1 ones for the LATIN1 database');

# --- load it, run it, one subtransaction per input, a commit every 500 ----------
my %allowed = (
	input => { map { $_ => 1 } qw(22021 22P02 22P05 54001) },
	enqueue => { map { $_ => 1 } qw(22004 22023 54000 22021 22P05) },);
my %run;    # database => { inputs, delivered }

sub run_corpus
{
	my ($db, $prefix, @entries) = @_;

	$node->safe_psql(
		$db, q{
CREATE TABLE fuzz_in (n int PRIMARY KEY, class text, topic bytea, key bytea,
                      kind text, payload bytea, headers bytea, pad int, pad_char bytea);
CREATE TABLE fuzz_out (n int PRIMARY KEY, stage text, id bigint, sqlstate text,
                       message text, topic text, want_key text, key_len int,
                       want_value text, value_len int, want_headers text,
                       want_headers_sorted text);
CREATE FUNCTION padded(s text, pad int, pad_char bytea) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN pad IS NULL THEN s
                ELSE replace(s, '@PAD@', repeat(convert_from(pad_char, 'UTF8'), pad)) END
$$;
CREATE PROCEDURE fuzz_run() LANGUAGE plpgsql AS $$
DECLARE
    r record;
    t text; k text; h jsonb; jv jsonb; tv text; bv bytea;
    v_id bigint; st text; msg text; v_stage text;
    i int := 0;
BEGIN
    FOR r IN SELECT * FROM fuzz_in ORDER BY n LOOP
        t := NULL; k := NULL; h := NULL; jv := NULL; tv := NULL; bv := NULL;
        v_id := NULL; st := NULL; msg := NULL; v_stage := 'input';
        BEGIN
            t := convert_from(r.topic, 'UTF8');
            k := padded(convert_from(r.key, 'UTF8'), r.pad, r.pad_char);
            h := padded(convert_from(r.headers, 'UTF8'), r.pad, r.pad_char)::jsonb;
            IF r.kind = 'jsonb' THEN
                jv := padded(convert_from(r.payload, 'UTF8'), r.pad, r.pad_char)::jsonb;
            ELSIF r.kind = 'text' THEN
                tv := padded(convert_from(r.payload, 'UTF8'), r.pad, r.pad_char);
            ELSE
                bv := r.payload || CASE WHEN r.pad IS NOT NULL AND r.payload IS NOT NULL
                                        THEN decode(repeat(encode(r.pad_char, 'hex'), r.pad), 'hex')
                                        ELSE '' END;
            END IF;
            v_stage := 'enqueue';
            IF r.kind = 'jsonb' THEN
                v_id := outbox.enqueue(t, jv, k, h);
            ELSIF r.kind = 'text' THEN
                v_id := outbox.enqueue(t, tv, k, h);
            ELSE
                v_id := outbox.enqueue(t, bv, k, h);
            END IF;
            v_stage := 'delivered';
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        END;
        -- what the consumer must see: everything in UTF-8 (bytea as is)
        INSERT INTO fuzz_out
        SELECT r.n, v_stage, v_id, st, left(msg, 200), t,
               md5(convert_to(k, 'UTF8')), octet_length(convert_to(k, 'UTF8')),
               md5(w.v), octet_length(w.v), hs.ordered, hs.sorted
          FROM (SELECT CASE WHEN v_id IS NULL THEN NULL
                            WHEN r.kind = 'jsonb' THEN convert_to(jv::text, 'UTF8')
                            WHEN r.kind = 'text' THEN convert_to(tv, 'UTF8')
                            ELSE bv END AS v) w,
               (SELECT md5(coalesce(string_agg(p, ',' ORDER BY o), '')) AS ordered,
                       md5(coalesce(string_agg(p, ',' ORDER BY p), '')) AS sorted
                  FROM (SELECT encode(convert_to(e.key, 'UTF8'), 'hex') || ':' ||
                               coalesce(encode(convert_to(e.value, 'UTF8'), 'hex'), '-') AS p, e.o
                          FROM jsonb_each_text(CASE WHEN v_id IS NOT NULL THEN h END)
                               WITH ORDINALITY e(key, value, o)) x) hs;
        i := i + 1;
        IF i % 500 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END
$$;
});

	my $copy = "COPY fuzz_in FROM STDIN;\n";
	foreach my $e (@entries)
	{
		my @f = ($e->{n}, $e->{class});
		my $topic = $e->{topic};
		$topic = "$prefix.$e->{class}" if $prefix ne 'f' && defined $topic;
		push @f, map { defined $_ ? '\\\\x' . unpack('H*', bytes_of($_)) : '\\N' }
		  ($topic, $e->{key});
		push @f, $e->{kind};
		push @f, map { defined $_ ? '\\\\x' . unpack('H*', bytes_of($_)) : '\\N' }
		  @$e{qw(payload headers pad_char)};
		splice(@f, 7, 0, $e->{pad} // '\\N');
		$copy .= join("\t", @f) . "\n";
	}
	$copy .= "\\.\n";
	$node->safe_psql($db, $copy);

	my $t0 = time();
	$node->safe_psql($db, 'CALL fuzz_run()');
	note sprintf('%s: %d inputs enqueued in %.1f s', $db, scalar(@entries), time() - $t0);

	# what was refused, and how
	my ($unclear, $delivered_n) = (0, 0);
	foreach my $line (split /\n/,
		$node->safe_psql($db,
			"SELECT class, stage, coalesce(sqlstate, ''), count(*), "
			  . "translate(min(message), E'\\n\\r\\t|', '    ') FROM fuzz_out JOIN fuzz_in USING (n) "
			  . "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"))
	{
		my ($class, $stage, $st, $count, $msg) = split /\|/, $line, 5;
		note sprintf('%-8s %-6s %-9s %-5s %5d  %s', $db, $class, $stage, $st, $count,
			$stage eq 'delivered' ? '' : $msg);
		if ($stage eq 'delivered') { $delivered_n += $count; next; }
		if (!$allowed{$stage}{$st})
		{
			diag "$db: unexpected SQLSTATE $st at $stage ($count inputs of class $class): $msg";
			$unclear += $count;
		}
	}
	is($unclear, 0,
		"$db: every refusal has an expected SQLSTATE (22004, 22023, 54000, 22021, 22P05 at enqueue)");
	cmp_ok($delivered_n, '>', scalar(@entries) / 3, "$db: $delivered_n inputs accepted");
	# a name the caller made up must not forge lines in the log or the client
	is($node->safe_psql($db,
			"SELECT count(*) FROM fuzz_out WHERE stage = 'enqueue' AND message ~ '[\\x01-\\x1f\\x7f]'"),
		'0', "$db: no error message of enqueue carries control characters from the input");
	$run{$db} = { inputs => scalar(@entries), delivered => $delivered_n };
	return;
}

my $i = 0;
$_->{n} = ++$i foreach @utf8_corpus;
$i = 0;
$_->{n} = ++$i foreach @latin1_corpus;
run_corpus('postgres', 'f', @utf8_corpus);
run_corpus($latin1, 'l', @latin1_corpus);

# --- no crash -------------------------------------------------------------------------
# every accepted event acknowledged (also those of topics the relay held
# aside for a while and released)
foreach my $db ('postgres', $latin1)
{
	ok($node->poll_query_until($db,
			"SELECT events_published >= $run{$db}{delivered} FROM outbox.status"),
		"$db: all accepted events published");
	my $status = outbox_status($node, $db);
	is($status->{events_dead_lettered}, 0, "$db: nothing dead-lettered")
	  or diag $node->safe_psql($db,
		'SELECT id, topic, octet_length(key), octet_length(payload), error FROM outbox.dead_letters LIMIT 10');
}
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$started, 'the postmaster did not restart');
my $log = slurp_file($node->logfile, $log_offset);
my @crash = grep { /PANIC|TRAP|terminated by signal|was terminated|reinitializing|server closed the connection/ }
  split /\n/, $log;
is(scalar(@crash), 0, 'no PANIC, assertion failure or crashed process in the server log')
  or diag join("\n", @crash[0 .. ($#crash < 10 ? $#crash : 9)]);

# --- delivered byte for byte ---------------------------------------------------------------
my %msg_by_id;    # "topic prefix:id" => messages
my $n_msgs = 0;
my %accepted;     # prefix => [ids]
$accepted{f} = [ split /\n/, $node->safe_psql('postgres', 'SELECT id FROM fuzz_out WHERE id IS NOT NULL') ];
$accepted{l} = [ split /\n/, $node->safe_psql($latin1, 'SELECT id FROM fuzz_out WHERE id IS NOT NULL') ];

# read every topic until all accepted events are there (or the deadline);
# the LATIN1 database's topics start with "l."
sub consume_fuzz_topics
{
	my ($out, $err) = ('', '');
	my @topics = (@valid_topics, (map { $class_topic{$_} } @classes),
		map { "l.$_" } @latin1_classes);
	IPC::Run::run([ $consumer, $mock->bootstrap, $PostgreSQL::Test::Utils::timeout_default, @topics ],
		'>', \$out, '2>', \$err)
	  or die "fuzz_consumer failed: $err";
	my $id_hex = unpack('H*', 'outbox-id');
	%msg_by_id = ();
	$n_msgs = 0;
	foreach my $line (split /\n/, $out)
	{
		my ($topic, $part, $offset, $key, $value, $headers) = split /\t/, $line, -1;
		my @h = map { [ split /:/, $_, 2 ] } split /,/, $headers;
		my ($id) = map { pack('H*', $_->[1]) } grep { $_->[0] eq $id_hex } @h;
		my $prefix = $topic =~ /^l\./ ? 'l' : 'f';
		$n_msgs++;
		push @{ $msg_by_id{ $prefix . ':' . ($id // 'none') } },
		  { topic => $topic, key => $key, value => $value, headers => \@h };
	}
	foreach my $prefix ('f', 'l')
	{
		return 0 if grep { !$msg_by_id{"$prefix:$_"} } @{ $accepted{$prefix} };
	}
	return 1;
}
poll_until(\&consume_fuzz_topics);
note "$n_msgs messages consumed";
is($n_msgs, $run{postgres}{delivered} + $run{$latin1}{delivered},
	'one message per accepted input, nothing else');

foreach my $db ('postgres', $latin1)
{
	my $prefix = $db eq 'postgres' ? 'f' : 'l';
	my ($missing, $dup, $bad_copy, $bad_topic, $bad_key, $bad_value, $bad_headers, $bad_ct) = (0) x 8;
	foreach my $line (split /\n/,
		$node->safe_psql($db,
			"SELECT o.n, o.id, o.topic, coalesce(o.want_key, '-'), coalesce(o.want_value, '-'), "
			  . "o.want_headers, o.want_headers_sorted, i.kind FROM fuzz_out o JOIN fuzz_in i USING (n) "
			  . "WHERE o.id IS NOT NULL"))
	{
		my ($n, $id, $topic, $want_key, $want_value, $want_headers, $want_sorted, $kind) =
		  split /\|/, $line, -1;
		my $ms = $msg_by_id{"$prefix:$id"};
		if (!$ms) { diag "$db: input $n (id $id, topic $topic) not delivered" if $missing++ < 5; next; }
		my $m = $ms->[0];
		# at least once: a copy (after a producer rebuild, say) must be the
		# same message byte for byte
		foreach my $copy (@$ms[ 1 .. $#$ms ])
		{
			$dup++;
			my $same = $copy->{key} eq $m->{key} && $copy->{value} eq $m->{value}
			  && join(',', map { "$_->[0]:$_->[1]" } @{ $copy->{headers} }) eq
			  join(',', map { "$_->[0]:$_->[1]" } @{ $m->{headers} });
			$bad_copy++ unless $same;
		}
		if ($m->{topic} ne $topic) { diag "$db: input $n: topic $m->{topic}, want $topic" if $bad_topic++ < 5; }
		my $got_key = $m->{key} eq '-' ? '-' : md5_hex(pack('H*', $m->{key}));
		if ($got_key ne $want_key) { diag "$db: input $n: key $m->{key}" if $bad_key++ < 5; }
		my $got_value = $m->{value} eq '-' ? '-' : md5_hex(pack('H*', $m->{value}));
		if ($got_value ne $want_value)
		{
			diag "$db: input $n ($kind): value " . substr($m->{value}, 0, 200) if $bad_value++ < 5;
		}
		# the relay's headers first: outbox-*, then content-type for JSON values
		my @h = @{ $m->{headers} };
		shift @h while @h && pack('H*', $h[0][0]) =~ /^outbox-/;
		if ($kind eq 'jsonb' && $m->{value} ne '-')
		{
			if (@h && pack('H*', $h[0][0]) eq 'content-type'
				&& pack('H*', $h[0][1]) eq 'application/json')
			{
				shift @h;
			}
			else { $bad_ct++; }
		}
		# in order in a UTF-8 database; in another one the relay's UTF-8 copy
		# of the object sorts its names by their UTF-8 form
		my @pairs = map { "$_->[0]:$_->[1]" } @h;
		my $got_headers = $prefix eq 'f' ? md5_hex(join(',', @pairs)) : md5_hex(join(',', sort @pairs));
		if ($got_headers ne ($prefix eq 'f' ? $want_headers : $want_sorted))
		{
			diag "$db: input $n: headers " . join(',', @pairs) if $bad_headers++ < 5;
		}
	}
	is($missing, 0, "$db: every accepted input was delivered");
	note "$db: $dup duplicate deliveries (at least once: G4)";
	is($bad_copy, 0, "$db: every duplicate is the same message byte for byte");
	is($bad_topic, 0, "$db: each on its topic");
	is($bad_key, 0, "$db: keys byte for byte in UTF-8 (null stays null)");
	is($bad_value, 0,
		"$db: values byte for byte: JSON as jsonb renders it and text in UTF-8, bytes exact, tombstones null");
	is($bad_ct, 0, "$db: JSON values labelled content-type: application/json");
	is($bad_headers, 0, "$db: the caller's headers byte for byte in UTF-8, null values null");
}

note sprintf('fuzz test took %.1f s', time() - $t_start);
$node->stop;
$mock->stop;
done_testing();
