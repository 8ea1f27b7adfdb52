
# Copyright (c) 2026, outbox_kafka developers

# TLS to a real Kafka broker, with a throwaway CA made here with openssl and
# outbox_kafka.producer_properties = 'security.protocol=SSL;ssl.ca.location=...':
#  - the broker first presents a certificate our CA did not sign: the relay
#    refuses it, reports why, dead-letters nothing and does not crash-loop;
#  - with a certificate the CA signed, the waiting events flow, in order.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use File::Copy;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use RealKafka;
use Test::More;
use Time::HiRes qw(time);

my $dir = "${PostgreSQL::Test::Utils::tmp_check}/tls";
mkdir $dir;

# run openssl, die on failure
sub openssl
{
	RealKafka::run_ok([ 'openssl', @_ ]);
}

# a CA, and a server certificate for 127.0.0.1 signed by it ($name.pem holds
# the key and the certificate, as Kafka's PEM key store wants them)
sub make_ca
{
	my ($ca) = @_;
	openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
		'-nodes', '-keyout', "$dir/$ca.key", '-out', "$dir/$ca.crt", '-days', '2',
		'-subj', "/CN=$ca");
}

sub make_server_cert
{
	my ($name, $ca) = @_;
	openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
		'-keyout', "$dir/$name.key", '-out', "$dir/$name.csr", '-subj', '/CN=127.0.0.1');
	open my $fh, '>', "$dir/$name.ext" or die $!;
	print $fh "subjectAltName = IP:127.0.0.1, DNS:localhost\n";
	close $fh;
	openssl('x509', '-req', '-in', "$dir/$name.csr", '-CA', "$dir/$ca.crt",
		'-CAkey', "$dir/$ca.key", '-CAcreateserial', '-out', "$dir/$name.crt",
		'-days', '2', '-extfile', "$dir/$name.ext");
	open $fh, '>', "$dir/$name.pem" or die $!;
	print $fh slurp_file("$dir/$name.key"), slurp_file("$dir/$name.crt");
	close $fh;
}

make_ca('test-ca');
make_server_cert('broker', 'test-ca');
make_ca('rogue-ca');
make_server_cert('rogue', 'rogue-ca');
chmod 0644, glob("$dir/*");

# the broker's key store: first the rogue certificate
copy("$dir/rogue.pem", "$dir/keystore.pem") or die $!;
my $kafka = RealKafka->start(
	security => 'SSL',
	ssl_keystore => "$dir/keystore.pem",
	topics => ['tls.orders:2']);

my $props = "security.protocol=SSL;ssl.ca.location=$dir/test-ca.crt";
my $node = new_node(
	'real_tls',
	bootstrap => $kafka->bootstrap,
	extra_conf => "outbox_kafka.producer_properties = '$props'\n");

# kcat with the same settings agrees that the certificate is not trusted
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'kcat', '-L', '-b', $kafka->bootstrap, '-m', '3',
			'-X', 'security.protocol=SSL', '-X', "ssl.ca.location=$dir/test-ca.crt" ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(20));
	like($err, qr/certificate verify failed|SSL handshake failed/i,
		'kcat with our CA refuses the rogue certificate as well');
}

$node->safe_psql('postgres',
	"SELECT outbox.enqueue('tls.orders', jsonb_build_object('n', i), key => 'o' || (i % 5)) FROM generate_series(1, 100) i");

ok($node->wait_for_log(qr/certificate verify failed/),
	'the server log names the TLS failure (librdkafka: certificate verify failed)');
# the relay tells in outbox.status why it cannot publish, within seconds
ok( OutboxKafkaTest::poll_until(
		sub {
			(outbox_status($node, 'postgres')->{last_error} // '') =~
			  /certificate|ssl|handshake/i;
		},
		30),
	'outbox.status reports the untrusted certificate');
my $st = outbox_status($node, 'postgres');
note "status: state $st->{state}, last_error: $st->{last_error}";
like($st->{state}, qr/^(misconfigured|broker_unreachable)$/,
	"state says the cluster cannot be used ($st->{state})");
like($st->{last_error}, qr/certificate verify failed|SSL handshake failed/i,
	'last_error names the TLS failure');
is($st->{events_published}, 0, 'nothing published to the untrusted broker');
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered');
is($st->{pending_events}, 100, 'the 100 events wait');
my $pid = $st->{worker_pid};
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) >= 1 FROM outbox.status WHERE last_error_at > now() - interval '5 s'"),
	'the failure is still being reported');
is(outbox_status($node, 'postgres')->{worker_pid}, $pid, 'same worker: no crash loop');

# --- the broker gets a certificate signed by our CA ----------------------------------
$kafka->stop_node(1);
copy("$dir/broker.pem", "$dir/keystore.pem") or die $!;
$kafka->start_node(1);
my $t0 = time();
ok(wait_until_published($node, 'postgres', 100), 'with a trusted certificate the events flow');
note sprintf("published %.1f s after the broker came back", time() - $t0);
$st = outbox_status($node, 'postgres');
is($st->{events_dead_lettered}, 0, 'nothing dead-lettered');
is($st->{worker_pid}, $pid, 'still the same worker');

my @msgs = $kafka->consume('tls.orders');
is(scalar(@msgs), 100, '100 messages over TLS, once each');
my $d = check_delivery(\@msgs);
is($d->{duplicates}, 0, 'no outbox-id twice');
is($d->{order_violations}, 0, 'per key in commit order')
  or diag join("\n", @{ $d->{order_diag} });

$node->stop;
$kafka->stop;
done_testing();
