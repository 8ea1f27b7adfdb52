# Copyright (c) 2026, outbox_kafka developers
#
# docs/configuration.md documents every setting the library defines, with
# the default and context the server reports.  A setting added to or
# renamed in src/ fails this test until it has a section there.
#
# The settings come from two places: pg_settings of a server that preloads
# the library (what users see), and the DefineCustom*Variable calls in
# src/*.c (settings hidden from pg_settings with GUC_NO_SHOW_ALL, such as
# producer_properties, are found there).
use strict;
use warnings;

use File::Basename;
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..', '..'));


# --- what the documentation says -------------------------------------------

my $doc = slurp_file("$top/docs/configuration.md");
my %documented;
# sections "### `outbox_kafka.name`" up to the next heading
while ($doc =~ /^### `(outbox_kafka\.[a-z_]+)`\n(.*?)(?=^#)/msg)
{
	my ($name, $body) = ($1, $2);
	my ($default) = $body =~ /^- Default: `([^`]*)`/m;
	my ($context) = $body =~ /^- Context: `([a-z_-]+)`/m;
	my ($type) = $body =~ /^- Type: (\S+)/m;
	$documented{$name} = { default => $default, context => $context, type => $type };
}
ok(scalar(keys %documented) >= 10, 'docs/configuration.md has setting sections')
  or diag('no "### `outbox_kafka.x`" sections found');

# the summary table names the same settings
my %summary = map { $_ => 1 } ($doc =~ /^\| \[`(outbox_kafka\.[a-z_]+)`\]/mg);
is_deeply([ sort keys %summary ], [ sort keys %documented ],
	'the summary table lists exactly the settings that have a section');

# --- what the source defines -----------------------------------------------

my %in_source;
foreach my $c (glob("$top/src/*.c"))
{
	my $text = slurp_file($c);
	$in_source{$1} = 1
	  while $text =~ /DefineCustom\w+Variable\(\s*"(outbox_kafka\.[A-Za-z0-9_]+)"/g;
}
ok(scalar(keys %in_source) >= 10, 'settings found in src/*.c');

# --- what the server reports -----------------------------------------------

my $node = PostgreSQL::Test::Cluster->new('docs_settings');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'outbox_kafka'\n");
$node->start;

my %server;
foreach my $line (split /\n/,
	$node->safe_psql('postgres',
		q{SELECT name, context, vartype, current_setting(name)
		    FROM pg_settings WHERE name LIKE 'outbox_kafka.%' ORDER BY name}))
{
	my ($name, $context, $vartype, $value) = split /\|/, $line, 4;
	$server{$name} = { context => $context, vartype => $vartype, value => $value };
}
ok(scalar(keys %server) >= 10, 'pg_settings lists outbox_kafka settings');

my %all = (%in_source, map { $_ => 1 } keys %server);
foreach my $name (sort keys %all)
{
	ok($documented{$name}, "$name is documented in docs/configuration.md")
	  or diag("add a section \"### `$name`\" with Type, Default and Context lines");
}
foreach my $name (sort keys %documented)
{
	ok($all{$name}, "documented $name exists in the library")
	  or diag("docs/configuration.md documents $name, which no longer exists");
}

# defaults and contexts as the server shows them, for every setting
foreach my $name (sort keys %documented)
{
	next unless $all{$name};
	my $d = $documented{$name};
	# hidden settings (GUC_NO_SHOW_ALL) are not in pg_settings: ask SHOW
	my $shown = $server{$name}
	  ? $server{$name}->{value}
	  : $node->safe_psql('postgres', "SELECT current_setting('$name')");
	my $doc_default = defined $d->{default} ? $d->{default} : '(none)';
	$doc_default = '' if $doc_default eq "''";
	is($doc_default, $shown, "$name: documented default is what SHOW says");
	is($d->{context}, $server{$name} ? $server{$name}->{context} : 'sighup',
		"$name: documented context");
	ok(defined $d->{type}, "$name: documented type");
}

# the README's table links here instead of repeating the settings
my $readme = slurp_file("$top/README.md");
like($readme, qr{docs/configuration\.md}, 'README links to docs/configuration.md');

$node->stop;
done_testing();
