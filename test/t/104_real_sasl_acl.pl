
# Copyright (c) 2026, outbox_kafka developers

# SASL/SCRAM-SHA-512 and ACLs (StandardAuthorizer, KRaft) on a real broker,
# credentials given the way a DBA does it:
#   ALTER SYSTEM SET outbox_kafka.producer_properties = 'security.protocol=
#     SASL_PLAINTEXT;sasl.mechanism=SCRAM-SHA-512;sasl.username=..;sasl.password=..'
#   SELECT pg_reload_conf();
#  - a wrong password: reported clearly (state misconfigured, last_error
#    says authentication), the worker does not crash-loop, nothing is
#    dead-lettered;
#  - the right password: events flow; a topic the user may not WRITE is
#    held aside (outbox.held_topics, outbox.status) while the healthy topic
#    keeps flowing; granting the ACL at run time lets the held events flow,
#    in order;
#  - no password ever appears in the server log.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RealKafka;
use Test::More;
use Time::HiRes qw(time);

my $good_pw = 'relay-Sup3r-s3cret-pw';
my $bad_pw = 'wrong-Pa55word-xyz';
my $kafka = RealKafka->start(
	security => 'SASL_SCRAM',
	scram_users => { admin => 'admin-secret-pw', relay => $good_pw },
	topics => [ 'sasl.ok:3', 'sasl.denied:1' ]);
# the relay's user may write sasl.ok only
$kafka->admin('allow', 'User:relay', 'Write', 'sasl.ok');

my $node = new_node('real_sasl', bootstrap => $kafka->bootstrap);

sub set_props
{
	my ($pw) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET outbox_kafka.producer_properties = 'security.protocol=SASL_PLAINTEXT;"
		  . "sasl.mechanism=SCRAM-SHA-512;sasl.username=relay;sasl.password=$pw'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
}

sub enqueue
{
	my ($topic, $n, $tag) = @_;
	$node->safe_psql('postgres',
		"SELECT outbox.enqueue('$topic', jsonb_build_object('tag', '$tag', 'i', i), key => 'k' || (i % 7))"
		  . " FROM generate_series(1, $n) i");
}

# like poll_until, with a deadline of $secs (default 30 s): the relay reacts
# within seconds, a longer wait only means the behaviour is missing
sub soon
{
	my ($code, $secs) = @_;
	return OutboxKafkaTest::poll_until(sub { eval { $code->() } }, $secs // 30);
}

# --- wrong password -------------------------------------------------------------
set_props($bad_pw);
enqueue('sasl.ok', 50, 'a');
ok($node->wait_for_log(qr/SASL authentication error|Authentication failed/i),
	'the server log shows the authentication failure');
ok( soon(
		sub {
			my $s = outbox_status($node, 'postgres');
			$s->{state} eq 'misconfigured' && ($s->{last_error} // '') =~ /authenticat/i;
		}),
	"wrong password: state misconfigured, last_error says authentication");
my $st = outbox_status($node, 'postgres');
note "status: state $st->{state}, last_error: " . ($st->{last_error} // 'none');
unlike($st->{last_error} // '', qr/\Q$bad_pw\E/, 'last_error does not show the password');
my $pid = $st->{worker_pid};
ok($pid, "worker pid $pid");
# watch it for a while: same process, nothing dead-lettered, events wait
my $t0 = time();
ok( soon(
		sub {
			my $s = outbox_status($node, 'postgres');
			return 'changed' if ($s->{worker_pid} // 0) != $pid || $s->{events_dead_lettered};
			return time() - $t0 > 5;
		}) eq '1',
	'for 5 s: same worker (no crash loop), nothing dead-lettered');
$st = outbox_status($node, 'postgres');
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered');
is($st->{pending_events}, 50, 'the 50 events wait');

# --- the right password ----------------------------------------------------------------
set_props($good_pw);
ok(soon(sub { outbox_status($node, 'postgres')->{pending_events} == 0 }),
	'right password: the waiting events are published');
is(scalar($kafka->consume('sasl.ok')), 50, '50 messages in sasl.ok');

# --- a topic without WRITE permission ----------------------------------------------------
enqueue('sasl.denied', 30, 'd');
enqueue('sasl.ok', 50, 'b');
ok( soon(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM outbox.held_topics WHERE topic = 'sasl.denied'") == 1;
		}),
	'sasl.denied is held aside (outbox.held_topics)');
my $held = '';
$node->psql('postgres',
	"SELECT reason || '|' || held_events FROM outbox.held_topics WHERE topic = 'sasl.denied'",
	stdout => \$held);
note "held: $held";
like($held, qr/authoriz/i, 'the reason says authorization failed');
like($held, qr/\|30$/, '30 events held');
ok(soon(sub { scalar($kafka->consume('sasl.ok')) == 100 }),
	'sasl.ok keeps flowing while sasl.denied is held');
enqueue('sasl.ok', 20, 'c');
ok(soon(sub { scalar($kafka->consume('sasl.ok')) == 120 }),
	'events enqueued to sasl.ok after the hold flow too');
$st = outbox_status($node, 'postgres');
is($st->{held_topics}, 1, 'outbox.status: held_topics = 1');
is($st->{held_events}, 30, 'outbox.status: held_events = 30');
like($st->{state}, qr/^(publishing|holding)$/,
	"state of the healthy rest (never idle while a topic is held): $st->{state}");
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered');

# --- grant WRITE at run time ---------------------------------------------------------
$kafka->admin('allow', 'User:relay', 'Write', 'sasl.denied');
ok( soon(
		sub {
			$node->safe_psql('postgres', 'SELECT count(*) FROM outbox.held_topics') == 0
			  && outbox_status($node, 'postgres')->{pending_events} == 0;
		},
		60),
	'after the grant the held events are published');
my @d = $kafka->consume('sasl.denied');
is(scalar(@d), 30, '30 messages in sasl.denied, once each');
my @ids = map { header_value($_, 'outbox-id') } @d;
is("@ids", join(' ', sort { $a <=> $b } @ids), 'in commit order');
$st = outbox_status($node, 'postgres');
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered at all');
is($st->{worker_pid}, $pid, 'the same worker from the first to the last step');

# --- secrets ---------------------------------------------------------------------------
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$good_pw\E/, 'the password never appears in the server log');
unlike($log, qr/\Q$bad_pw\E/, 'nor the wrong one');

$node->stop;
$kafka->stop;
done_testing();
