# Copyright (c) 2026, outbox_kafka developers

# examples/prometheus/queries.yaml with the real postgres_exporter (Debian's
# prometheus-postgres-exporter): the exporter, connected as a pg_monitor
# member to two databases with the extension, serves the relay's metrics on
# a loopback port, and they move as events flow, wait for a broker, and are
# dead-lettered; the inbox's metrics (outbox.inbox_status) move as a
# subscription applies messages and dead-letters a poison one, and show the
# inbox stopped.  With promtool (from Debian's prometheus package: on the
# PATH, or fetched by test/install_deps.sh into /var/cache/outbox_kafka), the
# alert rules and their unit tests (alerts.test.yaml) are checked too.

use strict;
use warnings;

use Cwd qw(abs_path);
use FindBin;
use lib $FindBin::Bin;

use HTTP::Tiny;
use IPC::Run;
use OutboxKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $exporter_bin = $ENV{POSTGRES_EXPORTER} // '/usr/bin/prometheus-postgres-exporter';
plan skip_all => "$exporter_bin not found (Debian package prometheus-postgres-exporter)"
  unless -x $exporter_bin;
my $queries = abs_path("$FindBin::Bin/../../examples/prometheus/queries.yaml");

my $topic = 't.prom';
my $held_topic = 't.prom.held';
my $inbox_topic = 't.prom.in';
my $mock = start_mock(topics => ["$topic:2", "$held_topic:1", "$inbox_topic:2"]);
my $node = new_node(
	'prom',
	bootstrap => $mock->bootstrap,
	databases => 'orders,inventory',
	poll_interval => '100ms');

# the exporter's own role: no superuser, only pg_monitor
$node->safe_psql('postgres', 'CREATE ROLE prometheus LOGIN IN ROLE pg_monitor');

# One connection string, databases found by the exporter itself: several
# DSNs for one server would export its server-wide metrics twice under the
# same "server" label (host:port), and the exporter answers 500.
my $dsn = sprintf 'host=%s port=%d user=prometheus dbname=orders sslmode=disable',
  $node->host, $node->port;
my $exp_log = "$PostgreSQL::Test::Utils::log_path/postgres_exporter.log";
my ($exporter, $url);
my $http = HTTP::Tiny->new(timeout => 10);

sub scrape_text
{
	my $r = $http->get($url);
	note "scrape of $url: $r->{status} $r->{reason}" unless $r->{success};
	return $r->{success} ? $r->{content} : undef;
}

for my $try (1 .. 5)
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	$url = "http://127.0.0.1:$port/metrics";
	local $ENV{DATA_SOURCE_NAME} = $dsn;
	$exporter = IPC::Run::start(
		[
			$exporter_bin, "--web.listen-address=127.0.0.1:$port",
			"--extend.query-path=$queries", '--auto-discover-databases',
			'--include-databases=orders,inventory', '--log.level=warn'
		],
		'<', \undef, '>>', $exp_log, '2>>', $exp_log);
	last if poll_until(sub { defined scrape_text() || !$exporter->pumpable }, 30)
	  && $exporter->pumpable;
	eval { $exporter->kill_kill(grace => 1) };
	note "exporter did not come up on port $port (try $try)";
	undef $exporter;
}
ok($exporter, "postgres_exporter serves $url") or BAIL_OUT('no exporter');

# name{labels} => value, for the outbox_kafka metrics of one scrape; the
# exporter's "server" label is dropped, "database" kept
sub scrape
{
	my $text = scrape_text() // return {};
	my %m;
	foreach my $line (split /\n/, $text)
	{
		next unless $line =~ /^(outbox_kafka_\w+)\{([^}]*)\}\s+(\S+)$/;
		my ($name, $labels, $value) = ($1, $2, $3);
		my %l = $labels =~ /(\w+)="([^"]*)"/g;
		delete $l{server};
		my $key = $name . '{' . join(',', map { "$_=$l{$_}" } sort keys %l) . '}';
		$m{$key} = $value + 0;
	}
	return \%m;
}

sub metric
{
	my ($name, $db, %labels) = @_;
	$labels{database} = $db;
	return scrape()->{ $name . '{' . join(',', map { "$_=$labels{$_}" } sort keys %labels) . '}' };
}

# wait until metric $name of $db satisfies $test (a code ref on the value)
sub metric_until
{
	my ($name, $db, $test, %labels) = @_;
	my $v;
	poll_until(sub { $v = metric($name, $db, %labels); defined $v && $test->($v) });
	return $v;
}

sub enqueue
{
	my ($db, $n, $payload) = @_;
	$payload //= q{'{"n": 1}'::jsonb};
	$node->safe_psql($db,
		"SELECT outbox.enqueue('$topic', $payload, key => 'k' || g) FROM generate_series(1, $n) g");
}

# --- at rest -------------------------------------------------------------
my $m = scrape();
for my $name (
	qw(relay_running problem pending_events pending_events_exact
	oldest_pending_age_seconds events_published_total events_retried_total
	events_failed_total events_dead_lettered_total dead_letters
	last_publish_timestamp_seconds last_error_timestamp_seconds
	relay_start_timestamp_seconds held_topics held_events storage_bytes))
{
	for my $db (qw(orders inventory))
	{
		ok(defined $m->{"outbox_kafka_$name\{database=$db}"},
			"outbox_kafka_$name is exported for database $db");
	}
}
ok(metric_until('outbox_kafka_relay_status', 'orders', sub { $_[0] == 1 }, state => 'idle'),
	'relay_status{state="idle"} is 1 for orders');
is(metric('outbox_kafka_relay_status', 'orders', state => 'broker_unreachable'), 0,
	'relay_status{state="broker_unreachable"} is 0');
is(metric('outbox_kafka_relay_running', 'orders'), 1, 'relay_running is 1');
is(metric('outbox_kafka_held_topics', 'orders'), 0, 'held_topics is 0');
is(metric('outbox_kafka_held_events', 'orders'), 0, 'held_events is 0');
cmp_ok(metric('outbox_kafka_storage_bytes', 'orders'), '>', 0,
	'storage_bytes is the size of the outbox tables (the exporter, a pg_monitor member, may read it)');
is(scalar(grep { /^outbox_kafka_held_topic_/ } keys %$m), 0,
	'no outbox_kafka_held_topic_* series while nothing is held');
is(metric('outbox_kafka_problem', 'orders'), 0, 'problem is 0');
is(scalar(grep { /^outbox_kafka_inbox/ } keys %$m), 0,
	'no outbox_kafka_inbox* series without inbox subscriptions');

# --- events flow ----------------------------------------------------------
my $published0 = metric('outbox_kafka_events_published_total', 'orders');
enqueue('orders', 20);
is(metric_until('outbox_kafka_events_published_total', 'orders',
		sub { $_[0] >= $published0 + 20 }), $published0 + 20,
	'events_published_total grows by the 20 events published');
# the relay saves its progress at most every 100 ms: pending follows shortly
is(metric_until('outbox_kafka_pending_events', 'orders', sub { $_[0] == 0 }), 0,
	'nothing pending afterwards');
cmp_ok(abs(metric('outbox_kafka_last_publish_timestamp_seconds', 'orders') - time()),
	'<', 60, 'last_publish_timestamp_seconds is now');
is(metric('outbox_kafka_events_published_total', 'inventory'), 0,
	'the other database published nothing');

# --- broker down: events wait, their age grows ------------------------------
$mock->command_ok('broker_down 1');
enqueue('orders', 7);
ok(metric_until('outbox_kafka_relay_status', 'orders', sub { $_[0] == 1 },
		state => 'broker_unreachable'),
	'relay_status{state="broker_unreachable"} becomes 1 while the broker is down');
is(metric('outbox_kafka_relay_status', 'orders', state => 'idle'), 0,
	'and relay_status{state="idle"} 0');
is(metric('outbox_kafka_pending_events', 'orders'), 7, 'pending_events is 7');
ok(metric_until('outbox_kafka_oldest_pending_age_seconds', 'orders', sub { $_[0] >= 1 }),
	'oldest_pending_age_seconds grows past 1 s');
is(metric('outbox_kafka_pending_events', 'inventory'), 0,
	'the other database has nothing pending');

$mock->command_ok('broker_up 1');
ok(metric_until('outbox_kafka_pending_events', 'orders', sub { $_[0] == 0 }) == 0,
	'pending_events back to 0 once the broker is up');
is(metric('outbox_kafka_oldest_pending_age_seconds', 'orders'), 0,
	'oldest_pending_age_seconds back to 0');
cmp_ok(metric('outbox_kafka_events_published_total', 'orders'), '>=', $published0 + 27,
	'the waiting events are counted as published');

# --- a held topic: its partition has no leader -------------------------------
# the series of outbox_kafka_held_topic for $topic in $db: {name => [labels, value]}
sub held_topic_series
{
	my ($db, $t) = @_;
	my %found;
	my $all = scrape();
	foreach my $key (keys %$all)
	{
		next unless $key =~ /^(outbox_kafka_held_topic_\w+)\{(.*)\}$/;
		my ($name, $labels) = ($1, $2);
		next unless $labels =~ /(?:^|,)database=\Q$db\E(?:,|$)/ && $labels =~ /(?:^|,)topic=\Q$t\E(?:,|$)/;
		$found{$name} = [ $labels, $all->{$key} ];
	}
	return \%found;
}

$mock->command_ok("leader $held_topic 0 -1");
enqueue('orders', 3);
$node->safe_psql('orders',
	"SELECT outbox.enqueue('$held_topic', '{\"n\": 1}'::jsonb, key => 'h' || g) FROM generate_series(1, 4) g");
is(metric_until('outbox_kafka_held_topics', 'orders', sub { $_[0] == 1 }), 1,
	'held_topics is 1 while a partition has no leader');
is(metric_until('outbox_kafka_held_events', 'orders', sub { $_[0] == 4 }), 4,
	'held_events counts the 4 waiting events');
is(metric('outbox_kafka_held_topics', 'inventory'), 0, 'inventory holds no topic');
ok(metric_until('outbox_kafka_relay_status', 'orders', sub { $_[0] == 1 }, state => 'holding'),
	'relay_status{state="holding"} is 1 while only held events wait (never "idle")');
my $series;
poll_until(sub { $series = held_topic_series('orders', $held_topic); ($series->{outbox_kafka_held_topic_events}[1] // 0) == 4 });
is($series->{outbox_kafka_held_topic_events}[1], 4,
	"outbox_kafka_held_topic_events{topic=\"$held_topic\"} is 4");
like($series->{outbox_kafka_held_topic_events}[0] // '', qr/error_class=(stalled|topic unavailable)/,
	'and carries the error class as a label') or note explain $series;
like($series->{outbox_kafka_held_topic_events}[0] // '', qr/(?:^|,)partition=0(?:,|$)/,
	'and the held partition') or note explain $series;
ok(defined $series->{outbox_kafka_held_topic_held_seconds}
	  && $series->{outbox_kafka_held_topic_held_seconds}[1] >= 0,
	'outbox_kafka_held_topic_held_seconds is exported');
ok(defined $series->{outbox_kafka_held_topic_oldest_event_age_seconds}
	  && $series->{outbox_kafka_held_topic_oldest_event_age_seconds}[1] >= 0,
	'outbox_kafka_held_topic_oldest_event_age_seconds is exported');
is(scalar(keys %{ held_topic_series('orders', $topic) }), 0,
	"the healthy topic $topic has no held_topic series");

$mock->command_ok("leader $held_topic 0 1");
is(metric_until('outbox_kafka_held_topics', 'orders', sub { $_[0] == 0 }), 0,
	'held_topics back to 0 once the partition has a leader');
is(metric('outbox_kafka_held_events', 'orders'), 0, 'held_events back to 0');
ok(poll_until(sub { scalar(keys %{ held_topic_series('orders', $held_topic) }) == 0 }),
	'the held topic\'s series are gone');
is(metric_until('outbox_kafka_pending_events', 'orders', sub { $_[0] == 0 }), 0,
	'nothing pending afterwards');

# --- a permanent error dead-letters an event -------------------------------
is(metric('outbox_kafka_dead_letters', 'inventory'), 0, 'no dead letters in inventory');
$mock->command_ok('produce_errors 1 MSG_SIZE_TOO_LARGE');
enqueue('inventory', 1, q{'{"poison": true}'::jsonb});
is(metric_until('outbox_kafka_dead_letters', 'inventory', sub { $_[0] >= 1 }), 1,
	'dead_letters is 1 for inventory');
is(metric('outbox_kafka_events_dead_lettered_total', 'inventory'), 1,
	'events_dead_lettered_total is 1 for inventory');
cmp_ok(metric('outbox_kafka_events_failed_total', 'inventory'), '>=', 1,
	'events_failed_total counts the refused delivery');
cmp_ok(metric('outbox_kafka_last_error_timestamp_seconds', 'inventory'), '>', 0,
	'last_error_timestamp_seconds is set for inventory');
is(metric('outbox_kafka_dead_letters', 'orders'), 0, 'orders has no dead letters');
is(metric('outbox_kafka_events_dead_lettered_total', 'orders'), 0,
	'events_dead_lettered_total stays 0 for orders');

$node->safe_psql('inventory', 'SELECT outbox.requeue_dead_letters()');
is(metric_until('outbox_kafka_dead_letters', 'inventory', sub { $_[0] == 0 }), 0,
	'dead_letters back to 0 after requeue_dead_letters()');

# --- the inbox: inventory applies what orders publishes ---------------------
# the sum of metric $name of $db over the series that have %labels
sub metric_sum
{
	my ($name, $db, %labels) = @_;
	my ($sum, $n) = (0, 0);
	my $all = scrape();
	KEY: foreach my $key (keys %$all)
	{
		next unless $key =~ /^\Q$name\E\{(.*)\}$/;
		my %l = map { split /=/, $_, 2 } split /,/, $1;
		next unless ($l{database} // '') eq $db;
		foreach my $k (keys %labels)
		{
			next KEY unless ($l{$k} // '') eq $labels{$k};
		}
		$sum += $all->{$key};
		$n++;
	}
	return $n ? $sum : undef;
}

$node->safe_psql('inventory', qq{
	CREATE TABLE inbox_seen (k text PRIMARY KEY);
	CREATE FUNCTION prom_handler(m outbox.inbox_message) RETURNS void
	LANGUAGE plpgsql AS \$\$
	BEGIN
		IF convert_from(m.value, 'UTF8')::jsonb ? 'poison' THEN
			RAISE EXCEPTION 'poison message';
		END IF;
		INSERT INTO inbox_seen VALUES (convert_from(m.key, 'UTF8'));
	END
	\$\$;
	SELECT outbox.subscribe('prom', '$inbox_topic', 'prom_handler(outbox.inbox_message)',
	                        max_attempts => 2);
});
$node->safe_psql('orders', qq{
	SELECT outbox.enqueue('$inbox_topic', '{"n": 1}'::jsonb, key => 'in' || g)
	  FROM generate_series(1, 10) g;
	SELECT outbox.enqueue('$inbox_topic', '{"poison": true}'::jsonb, key => 'bad');
});
is(poll_until(sub { (metric_sum('outbox_kafka_inbox_applied_total', 'inventory', subscription => 'prom') // 0) >= 10 })
	  && metric_sum('outbox_kafka_inbox_applied_total', 'inventory', subscription => 'prom'),
	10, 'outbox_kafka_inbox_applied_total counts the 10 messages applied');
is(poll_until(sub { (metric_sum('outbox_kafka_inbox_dead_letters', 'inventory', subscription => 'prom') // 0) >= 1 })
	  && metric_sum('outbox_kafka_inbox_dead_letters', 'inventory', subscription => 'prom'),
	1, 'outbox_kafka_inbox_dead_letters counts the poison message');
is($node->safe_psql('inventory', 'SELECT count(*) FROM inbox_seen'), 10,
	'the handler applied the 10 messages');
is(metric_sum('outbox_kafka_inbox_lag', 'inventory', subscription => 'prom'), 0,
	'outbox_kafka_inbox_lag is 0 on every partition');
is(metric_sum('outbox_kafka_inbox_stored_offset', 'inventory', subscription => 'prom'), 11,
	'outbox_kafka_inbox_stored_offset: past the 11 messages, on the 2 partitions together');
is(metric_sum('outbox_kafka_inbox_high_watermark', 'inventory', subscription => 'prom'), 11,
	'outbox_kafka_inbox_high_watermark: the 11 messages');
is(metric_sum('outbox_kafka_inbox_duplicates_total', 'inventory', subscription => 'prom'), 0,
	'outbox_kafka_inbox_duplicates_total is 0');
is(metric_sum('outbox_kafka_inbox_attempts', 'inventory', subscription => 'prom'), 0,
	'outbox_kafka_inbox_attempts is 0 once the poison message is parked');
cmp_ok(metric_sum('outbox_kafka_inbox_last_error_timestamp_seconds', 'inventory', subscription => 'prom'),
	'>', 0, 'outbox_kafka_inbox_last_error_timestamp_seconds is set');
ok(poll_until(sub { (metric_sum('outbox_kafka_inbox_state_status', 'inventory', state => 'caught_up') // 0) == 2 }),
	'outbox_kafka_inbox_state_status{state="caught_up"} is 1 for both partitions');
is(metric_sum('outbox_kafka_inbox_state_status', 'inventory'), 2,
	'and every other state is 0');
is(metric_sum('outbox_kafka_inbox_lag', 'orders'), undef, 'orders has no inbox series');

# a replay: rewound to offset 0, the inbox skips the 10 messages on their
# de-duplication records (the poison message, which has none, is tried and
# dead-lettered again)
$node->safe_psql('inventory', qq{
	SELECT outbox.inbox_rewind('prom', "partition", 0) FROM outbox.inbox_offset
	 WHERE subscription = 'prom';
});
is(poll_until(sub { (metric_sum('outbox_kafka_inbox_duplicates_total', 'inventory', subscription => 'prom') // 0) >= 10 })
	  && metric_sum('outbox_kafka_inbox_duplicates_total', 'inventory', subscription => 'prom'),
	10, 'after a rewind, outbox_kafka_inbox_duplicates_total counts the 10 messages skipped');
is(metric_sum('outbox_kafka_inbox_applied_total', 'inventory', subscription => 'prom'), 10,
	'and outbox_kafka_inbox_applied_total is unchanged');

# --- relay stopped: a database no longer listed ----------------------------
$node->safe_psql('postgres', "ALTER SYSTEM SET outbox_kafka.databases = 'orders'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok(metric_until('outbox_kafka_relay_running', 'inventory', sub { $_[0] == 0 }) == 0,
	'relay_running drops to 0 when inventory is no longer published');
is(metric('outbox_kafka_problem', 'inventory'), 1, 'and problem is 1');
is(metric('outbox_kafka_relay_status', 'inventory', state => 'not_running'), 1,
	'relay_status{state="not_running"} is 1');
ok(poll_until(sub { (metric_sum('outbox_kafka_inbox_state_status', 'inventory', state => 'stopped') // 0) == 2 }),
	'outbox_kafka_inbox_state_status{state="stopped"} is 1 for both partitions of the stopped inbox');

# --- the alert rules (when Prometheus' promtool is installed) ----------------
SKIP:
{
	# on the PATH, or where test/install_deps.sh (fetch_promtool) puts it
	my $promtool = (grep { -x "$_/promtool" } split(/:/, $ENV{PATH}),
		'/var/cache/outbox_kafka/promtool')[0];
	skip 'promtool not installed (Debian package prometheus)', 2 unless $promtool;
	my $dir = abs_path("$FindBin::Bin/../../examples/prometheus");
	my ($out, $ok) = ('');
	$ok = IPC::Run::run([ "$promtool/promtool", 'check', 'rules', "$dir/alerts.yaml" ],
		'>&', \$out);
	ok($ok, 'promtool check rules alerts.yaml') or diag $out;
	$out = '';
	$ok = IPC::Run::run([ "$promtool/promtool", 'test', 'rules', "$dir/alerts.test.yaml" ],
		'>&', \$out);
	ok($ok, 'promtool test rules alerts.test.yaml: the alerts fire as documented')
	  or diag $out;
}

$exporter->kill_kill(grace => 2);
$node->stop;
$mock->stop;
done_testing();
