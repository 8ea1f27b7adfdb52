
# Copyright (c) 2026, outbox_kafka developers

=pod

=head1 NAME

RealKafka - Apache Kafka brokers (KRaft) for the outbox_kafka TAP tests

=head1 SYNOPSIS

  use FindBin;
  use lib $FindBin::Bin;
  use OutboxKafkaTest;
  use RealKafka;

  my $kafka = RealKafka->start(topics => ['r.alpha:3']);
  my $node = new_node('main', bootstrap => $kafka->bootstrap);
  ...
  my @msgs = $kafka->consume('r.alpha');
  $kafka->stop;

=head1 DESCRIPTION

Runs one combined broker+controller, or a cluster of several, from the jars
test/kafka/kafka.sh fetched from Maven Central (once, into a cache outside
the checkout), on free 127.0.0.1 ports, with the settings of
test/kafka/broker.properties (auto.create.topics.enable=false).  Storage is
formatted here, readiness is a poll of metadata requests (kcat -L) and topics
and ACLs are made with test/kafka/kafka_admin (librdkafka's Admin API), so
that no Kafka CLI tool needs a JVM of its own.

Security: security => 'PLAINTEXT' (default), 'SASL_SCRAM' (SCRAM-SHA-512 on
the client listener, users from scram_users, StandardAuthorizer with ACLs,
User:admin super user) or 'SSL' (ssl_keystore => a PEM file with the
broker's private key and certificate).  With SASL_SCRAM and SSL the brokers
have a second, PLAINTEXT listener (->admin_bootstrap) for the test's own
reads and admin requests and for replication; the relay only ever gets
->bootstrap.

Node logs are tmp_check/log/kafka_<test>_<n>_node<i>.log (the broker's log4j file
is <dir>/node<i>/server.log; both are kept).

Kafka version: the one test/kafka/pom.xml pins (the newest 4.x), or
kafka_version => 'X.Y.Z', or the environment's OUTBOX_KAFKA_VERSION (one
variable for every real-broker test; test/librdkafka.sh runs the matrix
3.9.x, 4.1.x, newest).  One exception: SASL_SCRAM with a librdkafka older
than 2.6.1 (Debian 12 has 2.0.2) runs Kafka 3.9.1
($RealKafka::SCRAM_COMPAT_KAFKA) instead of any Kafka 4.  Those librdkafka versions send the client
nonce twice in the SCRAM client-final-message (fixed by librdkafka pull
request 4895); Kafka 3.8.1 to 3.9.x accept a nonce that ends with the
server's, Kafka 4.x compares the whole nonce as RFC 5802 says and answers
every login, right password or not, with "Authentication failed during
authentication due to invalid credentials".  No relay setting can change
that: the relay, like kcat and kafka_admin, authenticates with the
librdkafka it is linked with.

=cut

package RealKafka;

use strict;
use warnings;

use Carp;
use File::Basename;
use File::Path qw(make_path);
use File::Spec;
use IPC::Run;
use OutboxKafkaTest ();
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $here = File::Spec->rel2abs(dirname(__FILE__));
our $KAFKA_DIR = File::Spec->catdir($here, '..', 'kafka');
our $KAFKA_SH = File::Spec->catfile($KAFKA_DIR, 'kafka.sh');
our $ADMIN = File::Spec->catfile($KAFKA_DIR, 'kafka_admin');
our $KCAT = $ENV{KCAT} // 'kcat';
# the newest Kafka whose SCRAM accepts librdkafka < 2.6.1 (see above)
our $SCRAM_COMPAT_KAFKA = '3.9.1';

my $count = 0;
# names of directories and logs: per test file and cluster
(my $test_name = basename($0)) =~ s/\.pl$//;

# run a command, die with its output unless it succeeds; returns stdout
sub run_ok
{
	my ($cmd, %o) = @_;
	my ($out, $err) = ('', '');
	my $in = $o{stdin} // undef;
	my $ok = IPC::Run::run($cmd, '<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout($o{timeout} // $PostgreSQL::Test::Utils::timeout_default));
	croak "@$cmd failed: $err$out" unless $ok;
	return $out;
}

=pod

=head1 METHODS

=over

=item RealKafka->start(nodes => 1, topics => ['name:partitions', ...], replication => nodes, min_insync => 1 or 2, security => 'PLAINTEXT'|'SASL_SCRAM'|'SSL', scram_users => {name => password}, ssl_keystore => file, kafka_version => 'X.Y.Z')

Format and start the brokers, wait until every one answers metadata
requests and create the topics (replication factor defaults to the number of
nodes, at most 3).  Returns the cluster object.

=cut

sub start
{
	my ($class, %o) = @_;
	$count++;
	my $self = bless {
		n => $o{nodes} // 1,
		security => $o{security} // 'PLAINTEXT',
		scram_users => $o{scram_users} // {},
		ssl_keystore => $o{ssl_keystore},
		min_insync => $o{min_insync} // (($o{nodes} // 1) >= 3 ? 2 : 1),
		dir => "${PostgreSQL::Test::Utils::tmp_check}/kafka_${test_name}_$count",
		id => "${test_name}_$count",
		nodes => [],
	}, $class;
	$self->{replication} = $o{replication} // ($self->{n} >= 3 ? 3 : $self->{n});
	croak "security must be PLAINTEXT, SASL_SCRAM or SSL"
	  unless $self->{security} =~ /^(PLAINTEXT|SASL_SCRAM|SSL)$/;

	my $t0 = time();
	# build the admin client when the tree was not built by test/run.sh
	run_ok([ 'make', '-s', '-C', $KAFKA_DIR, 'kafka_admin' ]) unless -x $ADMIN;

	$self->{kafka_version} = $o{kafka_version} // $ENV{OUTBOX_KAFKA_VERSION};
	$self->{kafka_version} ||= (split /\n/, run_ok([ $self->kafka_sh('version') ]))[-1];
	if ($self->{security} eq 'SASL_SCRAM' && version_number($self->{kafka_version}) >= 40000)
	{
		my $lib = librdkafka_version();
		if (version_number($lib) < version_number('2.6.1'))
		{
			note "librdkafka $lib sends a SCRAM nonce that Kafka 4 refuses (fixed in 2.6.1): "
			  . "SASL_SCRAM runs Kafka $SCRAM_COMPAT_KAFKA, not $self->{kafka_version}";
			$self->{kafka_version} = $SCRAM_COMPAT_KAFKA;
		}
	}
	$self->{libs} = (split /\n/, run_ok([ $self->kafka_sh('fetch') ], timeout => 600))[-1];
	my $t_fetch = time();

	File::Path::rmtree($self->{dir});
	my $secure = $self->{security} ne 'PLAINTEXT';
	for my $i (1 .. $self->{n})
	{
		# ports from PostgreSQL's picker: free on 127.0.0.1 now and reserved
		# against other test files running at the same time
		my $node = {
			i => $i,
			dir => "$self->{dir}/node$i",
			port => PostgreSQL::Test::Cluster::get_free_port(),
			cport => PostgreSQL::Test::Cluster::get_free_port(),
		};
		$node->{iport} = $secure ? PostgreSQL::Test::Cluster::get_free_port() : $node->{port};
		push @{ $self->{nodes} }, $node;
	}
	$self->{bootstrap} = join ',', map { "127.0.0.1:$_->{port}" } @{ $self->{nodes} };
	$self->{admin_bootstrap} = join ',', map { "127.0.0.1:$_->{iport}" } @{ $self->{nodes} };

	my $voters = join ',', map { "$_->{i}\@127.0.0.1:$_->{cport}" } @{ $self->{nodes} };
	my $common = slurp_file("$KAFKA_DIR/broker.properties");
	my $rf_internal = $self->{n} >= 3 ? 3 : 1;
	my $isr_internal = $self->{n} >= 3 ? 2 : 1;
	foreach my $node (@{ $self->{nodes} })
	{
		make_path($node->{dir});
		my $p = $common . qq{
process.roles=broker,controller
node.id=$node->{i}
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
log.dirs=$node->{dir}/data
default.replication.factor=$self->{replication}
min.insync.replicas=$self->{min_insync}
offsets.topic.replication.factor=$rf_internal
transaction.state.log.replication.factor=$rf_internal
transaction.state.log.min.isr=$isr_internal
share.coordinator.state.topic.replication.factor=$rf_internal
share.coordinator.state.topic.min.isr=$isr_internal
};
		if (!$secure)
		{
			$p .= qq{listeners=PLAINTEXT://127.0.0.1:$node->{port},CONTROLLER://127.0.0.1:$node->{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:$node->{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
};
		}
		else
		{
			my $proto = $self->{security} eq 'SSL' ? 'SSL' : 'SASL_PLAINTEXT';
			$p .= qq{listeners=CLIENT://127.0.0.1:$node->{port},INTERNAL://127.0.0.1:$node->{iport},CONTROLLER://127.0.0.1:$node->{cport}
advertised.listeners=CLIENT://127.0.0.1:$node->{port},INTERNAL://127.0.0.1:$node->{iport}
listener.security.protocol.map=CLIENT:$proto,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
};
		}
		if ($self->{security} eq 'SASL_SCRAM')
		{
			# clients authenticate with SCRAM-SHA-512 on CLIENT; the
			# authorizer checks their ACLs.  The PLAINTEXT listeners
			# (replication, controller, the test's admin) are ANONYMOUS.
			$p .= q{sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ANONYMOUS
allow.everyone.if.no.acl.found=false
};
		}
		if ($self->{security} eq 'SSL')
		{
			$self->_write_ssl_props($node, \$p);
		}
		open my $fh, '>', "$node->{dir}/server.properties" or die $!;
		print $fh $p;
		close $fh;
	}

	# format every node's storage (one JVM each, in parallel), with the
	# SCRAM credentials in the bootstrap metadata
	my $cid = cluster_id();
	my @scram = map { ('--add-scram', "SCRAM-SHA-512=[name=$_,password=$self->{scram_users}{$_}]") }
	  sort keys %{ $self->{scram_users} };
	my @fmt;
	foreach my $node (@{ $self->{nodes} })
	{
		my $h = IPC::Run::start([ $self->kafka_sh('format', $node->{dir}, $cid, @scram) ],
			'<', \undef, '>&', "$node->{dir}/format.out",
			IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
		push @fmt, [ $node, $h ];
	}
	foreach (@fmt)
	{
		my ($node, $h) = @$_;
		$h->finish or croak "formatting $node->{dir} failed: " . slurp_file("$node->{dir}/format.out");
	}
	my $t_format = time();

	$self->start_node($_->{i}, wait => 0) foreach @{ $self->{nodes} };
	$self->wait_brokers($self->{n});
	my $t_ready = time();
	note sprintf("kafka_%s: %d node(s) Kafka %s %s at %s: fetch check %.1f s, format %.1f s, start %.1f s",
		$self->{id}, $self->{n}, $self->{kafka_version}, $self->{security}, $self->{bootstrap},
		$t_fetch - $t0, $t_format - $t_fetch, $t_ready - $t_format);
	$self->{startup_seconds} = $t_ready - $t0;

	foreach my $t (@{ $o{topics} // [] })
	{
		my ($name, $parts) = split /:/, $t;
		$self->create_topic($name, $parts // 1);
	}
	return $self;
}

# the command line of test/kafka/kafka.sh with these arguments, for this
# cluster's Kafka version
sub kafka_sh
{
	my ($self, @args) = @_;
	my @env = $self->{kafka_version} ? ("OUTBOX_KAFKA_VERSION=$self->{kafka_version}") : ();
	return ('env', @env, 'bash', $KAFKA_SH, @args);
}

# the version of librdkafka the tests' clients and the relay run with (all
# built against the same one: RDKAFKA_PREFIX's, else the system's), e.g.
# "2.0.2"
sub librdkafka_version
{
	my $v = run_ok([ $ADMIN, 'version' ]);
	chomp $v;
	return $v;
}

# "2.6.1" -> 20601 (leading numbers only: "2.6.1-RC1" -> 20601)
sub version_number
{
	my ($v) = @_;
	my @n = ($v =~ /^(\d+)\.(\d+)(?:\.(\d+))?/) or croak "not a version: $v";
	return $n[0] * 10000 + $n[1] * 100 + ($n[2] // 0);
}

sub _write_ssl_props
{
	my ($self, $node, $p) = @_;
	croak "security SSL needs ssl_keystore (a PEM file: key and certificate)"
	  unless $self->{ssl_keystore};
	$$p .= qq{listener.name.client.ssl.keystore.type=PEM
listener.name.client.ssl.keystore.location=$self->{ssl_keystore}
listener.name.client.ssl.client.auth=none
};
	return;
}

=pod

=item $kafka->bootstrap, $kafka->admin_bootstrap

The client listeners (the relay's), and the PLAINTEXT listeners the test
uses to read back and administer (the same with security PLAINTEXT).

=cut

sub bootstrap { return $_[0]->{bootstrap}; }
sub admin_bootstrap { return $_[0]->{admin_bootstrap}; }
sub startup_seconds { return $_[0]->{startup_seconds}; }
sub libs { return $_[0]->{libs}; }

sub cluster_id
{
	require MIME::Base64;
	open my $fh, '<:raw', '/dev/urandom' or die $!;
	my $s = '-';
	while ($s =~ /^-/)    # like Kafka's own ids: "-" would read as an option
	{
		read($fh, my $b, 16) == 16 or die;
		$s = MIME::Base64::encode_base64($b, '');
		$s =~ tr{+/}{-_};
		$s =~ s/=+$//;
	}
	close $fh;
	return $s;
}

=pod

=item $kafka->start_node($i, wait => 1)

Start node $i (1-based) again after stop_node; waits until the cluster
lists all nodes that are meant to run unless wait => 0.

=cut

sub start_node
{
	my ($self, $i, %o) = @_;
	my $node = $self->{nodes}[ $i - 1 ];
	croak "node $i is running" if $node->{pid};
	my $log = "$PostgreSQL::Test::Utils::log_path/kafka_$self->{id}_node$i.log";
	my $pid = fork();
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $log or POSIX::_exit(1);
		open STDERR, '>&', \*STDOUT;
		# tests need a quick start, not peak throughput
		$ENV{KAFKA_JVM_PERFORMANCE_OPTS} //= '-XX:+UseSerialGC -XX:TieredStopAtLevel=1';
		exec($self->kafka_sh('run', $node->{dir})) or POSIX::_exit(127);
	}
	$node->{pid} = $pid;
	note "kafka_$self->{id} node $i started, pid $pid";
	$self->wait_brokers(scalar grep { $_->{pid} } @{ $self->{nodes} })
	  unless defined $o{wait} && !$o{wait};
	return;
}

=pod

=item $kafka->stop_node($i, $signal)

Stop node $i with TERM (graceful, controlled shutdown; default) or KILL,
and reap it.  Returns the seconds it took.

=cut

sub stop_node
{
	my ($self, $i, $sig) = @_;
	$sig //= 'TERM';
	my $node = $self->{nodes}[ $i - 1 ];
	return 0 unless $node->{pid};
	my $t0 = time();
	kill $sig, $node->{pid};
	my $deadline = time() + 60;
	while (waitpid($node->{pid}, POSIX::WNOHANG()) == 0)
	{
		if (time() > $deadline)
		{
			kill 'KILL', $node->{pid};
			waitpid($node->{pid}, 0);
			last;
		}
		usleep(20_000);
	}
	delete $node->{pid};
	my $dt = time() - $t0;
	note sprintf("kafka_%s node %d stopped (%s) in %.1f s", $self->{id}, $i, $sig, $dt);
	return $dt;
}

sub node_pid { return $_[0]->{nodes}[ $_[1] - 1 ]{pid}; }

=pod

=item $kafka->metadata(node => $i)

The cluster's metadata (kcat -L -J through the admin listeners), decoded.
Any running broker answers, or broker $i alone with node => $i (undef when
another one answered).  Brokers learn of a change (a new topic, a new ISR)
each from the metadata log on its own, so for a short while they may
disagree: right after a topic is created, one broker can list it with every
replica in sync while another does not know it yet (up to 0.2 s with Kafka
3.9.1 on the test machine).

=cut

sub metadata
{
	my ($self, %o) = @_;
	my ($out, $err) = ('', '');
	my @nodes = grep { $_->{pid} } @{ $self->{nodes} };
	@nodes = grep { $_->{i} == $o{node} } @nodes if defined $o{node};
	return undef unless @nodes;
	my $addrs = join ',', map { "127.0.0.1:$_->{iport}" } @nodes;
	IPC::Run::run([ $KCAT, '-L', '-J', '-b', $addrs, '-m', '2' ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(10)) or return undef;
	my $md = eval { JSON::PP->new->decode($out) } or return undef;
	# a client given one address asks that broker; make sure of it
	return undef
	  if defined $o{node} && ($md->{originating_broker}{id} // -1) != $o{node};
	return $md;
}

=pod

=item $kafka->wait_brokers($n)

Poll metadata until $n brokers are listed (alive and unfenced).

=cut

sub wait_brokers
{
	my ($self, $n) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		foreach my $node (@{ $self->{nodes} })
		{
			next unless $node->{pid};
			if (waitpid($node->{pid}, POSIX::WNOHANG()) != 0)
			{
				delete $node->{pid};
				croak "kafka_$self->{id} node $node->{i} exited; see $node->{dir}/server.log";
			}
		}
		my $md = $self->metadata;
		return 1 if $md && @{ $md->{brokers} // [] } == $n;
		usleep(100_000);
	}
	croak "kafka_$self->{id}: $n brokers not up within the timeout";
}

=pod

=item $kafka->topic_metadata($topic, node => $i)

List of {partition, leader, replicas => [...], isrs => [...]} of a topic, or
undef if the broker that answered does not know it (any running broker, or
broker $i with node => $i; see metadata).

=cut

sub topic_metadata
{
	my ($self, $topic, %o) = @_;
	my $md = $self->metadata(%o) or return undef;
	foreach my $t (@{ $md->{topics} // [] })
	{
		next unless $t->{topic} eq $topic;
		return undef if $t->{error};
		return [
			map {
				{
					partition => $_->{partition},
					leader => $_->{leader},
					replicas => [ map { $_->{id} } @{ $_->{replicas} // [] } ],
					isrs => [ map { $_->{id} } @{ $_->{isrs} // [] } ],
				}
			} sort { $a->{partition} <=> $b->{partition} } @{ $t->{partitions} }
		];
	}
	return undef;
}

# known_everywhere($topic, $check): true once every running broker lists
# $topic and $check->($partitions) holds for each one's view
sub known_everywhere
{
	my ($self, $topic, $check) = @_;
	$check //= sub { 1 };
	foreach my $node (grep { $_->{pid} } @{ $self->{nodes} })
	{
		my $parts = $self->topic_metadata($topic, node => $node->{i}) or return 0;
		return 0 unless $check->($parts);
	}
	return 1;
}

=pod

=item $kafka->wait_in_sync($topic)

Poll until every running broker lists every partition of $topic with a
leader and all its replicas in sync (one broker saying so is not enough:
see metadata).

=cut

sub wait_in_sync
{
	my ($self, $topic) = @_;
	return OutboxKafkaTest::poll_until(
		sub {
			return $self->known_everywhere(
				$topic,
				sub {
					foreach my $p (@{ $_[0] })
					{
						return 0 if $p->{leader} < 0 || @{ $p->{isrs} } < @{ $p->{replicas} };
					}
					return 1;
				});
		});
}

=pod

=item $kafka->admin(@args)

Run test/kafka/kafka_admin against the admin listeners, e.g.
->admin('create-topic', 't', 3, 3) or ->admin('allow', 'User:relay', 'Write', 't').

=item $kafka->create_topic($name, $partitions, $replication, @configs)

=cut

sub admin
{
	my ($self, @args) = @_;
	note "kafka_admin @args";
	return run_ok([ $ADMIN, '-b', $self->{admin_bootstrap}, @args ]);
}

sub create_topic
{
	my ($self, $name, $parts, $rf, @configs) = @_;
	$self->admin('create-topic', $name, $parts // 1, $rf // $self->{replication}, @configs);
	# the topic is known to every broker before the test goes on (each
	# learns of it on its own: see metadata)
	OutboxKafkaTest::poll_until(sub { $self->known_everywhere($name) })
	  or croak "topic $name did not appear in the metadata of every broker";
	return;
}

=pod

=item $kafka->consume($topic)

Read a whole topic through the admin listeners with kcat; same shape as
OutboxKafkaTest::consume_all (sorted by partition, then offset).

=cut

sub consume
{
	my ($self, $topic) = @_;
	local $OutboxKafkaTest::KCAT = $KCAT;
	return OutboxKafkaTest::consume_all($self->{admin_bootstrap}, $topic);
}

=pod

=item $kafka->java_produce_keys($topic, @keys)

Produce one message per key (value = the key) with Kafka's own Java console
producer (the Java client's default partitioner), and return a hash
key => partition as the broker stored them.

=cut

sub java_produce_keys
{
	my ($self, $topic, @keys) = @_;
	my $input = join '', map { "$_\t$_\n" } @keys;
	run_ok(
		[
			'java', '-Xmx128m', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC',
			"-Dlog4j2.configurationFile=file:$KAFKA_DIR/log4j2.properties",
			"-Dkafka.logs.dir=$self->{dir}",
			'-cp', "$self->{libs}/*",
			# the console producer moved from Scala to Java in Kafka 4.0
			version_number($self->{kafka_version}) >= 40000
			? 'org.apache.kafka.tools.ConsoleProducer'
			: 'kafka.tools.ConsoleProducer',
			'--bootstrap-server', $self->{admin_bootstrap}, '--topic', $topic,
			'--property', 'parse.key=true', '--property', "key.separator=\t"
		],
		stdin => $input);
	my %part;
	foreach my $m ($self->consume($topic))
	{
		$part{ $m->{key} } = $m->{partition};
	}
	return \%part;
}

=pod

=item $kafka->stop

Stop every node: SIGTERM to all at once (a last node alone would wait for a
controller quorum that is gone), SIGKILL for those still running after 15 s.

=back

=cut

sub stop
{
	my ($self) = @_;
	my @running = grep { $_->{pid} } @{ $self->{nodes} };
	kill 'TERM', $_->{pid} foreach @running;
	my $deadline = time() + 15;
	foreach my $node (@running)
	{
		while (waitpid($node->{pid}, POSIX::WNOHANG()) == 0)
		{
			if (time() > $deadline)
			{
				kill 'KILL', $node->{pid};
				waitpid($node->{pid}, 0);
				last;
			}
			usleep(20_000);
		}
		delete $node->{pid};
	}
	return;
}

sub DESTROY
{
	my ($self) = @_;
	local ($@, $?);
	foreach my $node (@{ $self->{nodes} // [] })
	{
		next unless $node->{pid};
		kill 'KILL', $node->{pid};
		waitpid($node->{pid}, 0);
		delete $node->{pid};
	}
}

1;
