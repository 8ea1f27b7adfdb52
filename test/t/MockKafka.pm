
# Copyright (c) 2026, outbox_kafka developers

=pod

=head1 NAME

MockKafka - librdkafka's mock Kafka cluster for the outbox_kafka TAP tests

=head1 SYNOPSIS

  use MockKafka;    # or OutboxKafkaTest, which re-exports start_mock

  my $mock = start_mock(brokers => 3, topics => ['t.alpha:3']);
  $mock->command_ok('broker_down 1');
  ... $mock->bootstrap ...
  $mock->stop;

=head1 DESCRIPTION

Runs the helper test/mock_kafka/mock_kafka (librdkafka's mock cluster on
127.0.0.1, with fault injection) in its own process and talks to it over its
stdin/stdout: one command per line, one reply line each.  The mock picks its
listening ports itself (ephemeral ports the kernel hands out).  The commands
are listed in test/mock_kafka/README.md.  RealKafka.pm is the counterpart for
Apache Kafka.

=cut

package MockKafka;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use File::Basename;
use File::Spec;
use IPC::Run;
use PostgreSQL::Test::Utils ();
use Test::More;

our @EXPORT = qw(start_mock);

# test/t/ -> test/mock_kafka/<program>: the mock and its test consumer
my $here = File::Spec->rel2abs(dirname(__FILE__));
sub helper_path { return File::Spec->catfile($here, '..', 'mock_kafka', $_[0]); }
our $MOCK_BIN = $ENV{MOCK_KAFKA} // helper_path('mock_kafka');

my $mock_count = 0;

=pod

=head1 FUNCTIONS

=over

=item start_mock(brokers => N, topics => ['name:partitions', ...])

Start the mock cluster and return a MockKafka object with
->bootstrap, ->command($line) (returns the reply line, "OK" or "ERR ...";
command_ok dies unless the reply is OK) and ->stop.  Its stderr goes to
tmp_check/log/mock_kafka_<n>.log.

=cut

sub start_mock
{
	my (%opts) = @_;

	croak "mock_kafka helper not found at $MOCK_BIN (run make -C test/mock_kafka)"
	  unless -x $MOCK_BIN;

	my @cmd = ($MOCK_BIN);
	push @cmd, '--brokers', $opts{brokers} if $opts{brokers};
	push @cmd, '--topic', $_ for @{ $opts{topics} // [] };

	$mock_count++;
	my $errlog = "$PostgreSQL::Test::Utils::log_path/mock_kafka_$mock_count.log";
	my $self = bless {
		in => '',
		out => '',
		errlog => $errlog,
		timer => IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default),
	}, 'MockKafka';

	note "starting mock Kafka: @cmd";
	$self->{h} = IPC::Run::start(\@cmd, '<', \$self->{in}, '>', \$self->{out},
		'2>', $errlog, $self->{timer});

	my $line = $self->_read_line;
	croak "mock_kafka did not print its bootstrap address (got '"
	  . ($line // '<nothing>') . "'); see $errlog"
	  unless defined $line && $line =~ /^BOOTSTRAP=(\S+)$/;
	$self->{bootstrap} = $1;
	note "mock Kafka bootstrap: $self->{bootstrap}";
	return $self;
}

=back

=head1 METHODS

=cut


sub bootstrap { return $_[0]->{bootstrap}; }

sub _read_line
{
	my ($self) = @_;
	$self->{timer}->start($PostgreSQL::Test::Utils::timeout_default);
	while ($self->{out} !~ /\n/)
	{
		last if $self->{timer}->is_expired;
		last unless $self->{h}->pumpable;
		$self->{h}->pump;
	}
	return undef unless $self->{out} =~ s/^([^\n]*)\n//;
	return $1;
}

=pod

=head2 $mock->command($line)

Send one command, return its one-line reply ("OK" or "ERR ...").

=cut

sub command
{
	my ($self, $line) = @_;
	croak "mock_kafka is not running" unless $self->{h};
	note "mock_kafka command: $line";
	$self->{in} .= "$line\n";
	my $reply = $self->_read_line;
	croak "mock_kafka gave no reply to '$line' (see $self->{errlog})"
	  unless defined $reply;
	note "mock_kafka reply: $reply";
	return $reply;
}

sub command_ok
{
	my ($self, $line) = @_;
	my $reply = $self->command($line);
	croak "mock_kafka: '$line' failed: $reply" unless $reply eq 'OK';
	return $reply;
}

sub stop
{
	my ($self) = @_;
	return unless $self->{h};
	my $h = $self->{h};
	eval {
		$self->{in} .= "quit\n";
		$self->{timer}->start(10);
		$h->pump while $h->pumpable && !$self->{timer}->is_expired;
	};
	if ($h->pumpable || $self->{timer}->is_expired)
	{
		eval { $h->kill_kill(grace => 2) };
	}
	eval { $h->finish };
	delete $self->{h};
	return;
}

sub DESTROY
{
	my ($self) = @_;
	local ($@, $?);
	$self->stop if $self->{h};
}

1;
