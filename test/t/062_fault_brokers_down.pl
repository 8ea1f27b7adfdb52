
# Copyright (c) 2026, outbox_kafka developers

# Fault suite: every broker down for FAULT_OUTAGE_SECONDS (default 30)
# under a steady stream (G5, issue 7 item 11).  Events wait (nothing is
# dead-lettered, the worker does not restart), outbox.status says the
# cluster is unreachable while it is, and stops saying so once it is back;
# publishing resumes within a second or two of the brokers' return
# (recovery_s in the figures) and every committed event arrives in per-key
# order.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;

use FaultStream;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $outage = $ENV{FAULT_OUTAGE_SECONDS} // 30;
my @topics = ('fs.down.a', 'fs.down.b');
my $mock = start_mock(brokers => 2, topics => [ map { "$_:3" } @topics ]);
my $node = new_node('outage30', bootstrap => $mock->bootstrap,
	poll_interval => '200ms');

my $fs = FaultStream->new(node => $node, mock => $mock, topics => \@topics);
$fs->start;
ok($fs->grow(300), 'the stream flows');
my $pid = outbox_status($node, 'postgres')->{worker_pid};

$mock->command_ok('broker_down all');
my $t_down = time();
ok( $fs->wait_for(
		sub {
			$node->safe_psql('postgres',
				"SELECT state = 'broker_unreachable' AND pending_events > 0 FROM outbox.status"
			) eq 't';
		},
		20),
	'outbox.status: broker_unreachable with events pending')
  or diag explain outbox_status($node, 'postgres');
# keep the brokers down for the whole outage while the stream goes on
$fs->wait_for(sub { time() - $t_down >= $outage }, $outage + 5);
my $st = outbox_status($node, 'postgres');
note "after ${outage} s down: state $st->{state}, pending $st->{pending_events}, last_error "
  . ($st->{last_error} // 'none');
is($st->{dead_letters}, 0, 'nothing dead-lettered during the outage');
ok(defined $st->{last_error}, 'last_error says what is wrong during the outage');

$mock->command_ok('broker_up all');
$fs->fault_over;
my $t_up = time();
ok($fs->grow(200, 30), 'the stream flows again after the outage');
ok( $fs->wait_for(
		sub {
			my $s = outbox_status($node, 'postgres');
			$s->{state} =~ /^(idle|publishing)$/ && !defined $s->{last_error};
		},
		10),
	'after recovery outbox.status no longer reports the outage (state, last_error)')
  or diag explain outbox_status($node, 'postgres');
$fs->stop;
my $r = $fs->verify(max_duplicates => 0, name => "all brokers down ${outage} s");
$r->{outage_s} = $outage;
note 'figures: ' . FaultStream::figures($r);
cmp_ok($r->{recovery_s}, '<=', 2,
	"everything committed before the brokers returned delivered $r->{recovery_s} s after their return");
is(outbox_status($node, 'postgres')->{worker_pid}, $pid, 'the same worker throughout (no crash loop)');

$fs->shutdown;
$node->stop;
$mock->stop;
done_testing();
