# Copyright (c) 2026, outbox_kafka developers
#
# The documentation stays true:
#
# - every ```sql block of README.md and docs/*.md runs, in the order of its
#   file, against a server with the extension (one fresh database per file,
#   with the tables and roles the examples name: orders, app_role,
#   table_owner).  A block preceded by "<!-- expect-error SQLSTATE -->" must
#   fail with that SQLSTATE; every other block must succeed.  Examples that
#   cannot run (postgresql.conf lines, shell commands, signatures) use
#   another fence language (conf, sh, text).  The extension already exists
#   in each database, so "CREATE EXTENSION outbox_kafka" in an example is run
#   as "CREATE EXTENSION IF NOT EXISTS outbox_kafka".
# - docs/sql-reference.md names every function, table, view and column of
#   the extension, and every error message enqueue, capture and the SQL
#   functions raise.
#
# No relay runs (no database is listed): the examples of the relay API and
# of settings change nothing a relay would see.
use strict;
use warnings;

use File::Basename;
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $top = File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..', '..'));


# the ```sql blocks of a Markdown file: [{line, sql, expect}]
sub sql_blocks
{
	my ($path) = @_;
	my @lines = split /\n/, slurp_file($path), -1;
	my @blocks;
	my $i = 0;
	while ($i < @lines)
	{
		if ($lines[$i] =~ /^(\s*)```sql\s*$/)
		{
			my $indent = length($1);
			my $start = $i + 1;
			my $expect;
			# the nearest non-blank line above may carry the expectation
			my $j = $i - 1;
			$j-- while $j >= 0 && $lines[$j] =~ /^\s*$/;
			$expect = $1
			  if $j >= 0 && $lines[$j] =~ /^\s*<!--\s*expect-error\s+([0-9A-Z]{5})\s*-->\s*$/;
			my @sql;
			$i++;
			while ($i < @lines && $lines[$i] !~ /^\s*```\s*$/)
			{
				my $l = $lines[$i];
				$l =~ s/^ {0,$indent}//;
				push @sql, $l;
				$i++;
			}
			push @blocks, { line => $start, sql => join("\n", @sql) . "\n", expect => $expect };
		}
		$i++;
	}
	return @blocks;
}

my $node = PostgreSQL::Test::Cluster->new('docs_sql');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'outbox_kafka'
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE ROLE app_role NOLOGIN;
	CREATE ROLE table_owner NOLOGIN;
});
my $roles_before = $node->safe_psql('postgres',
	q{SELECT string_agg(quote_ident(rolname), ',') FROM pg_roles});

my @files = ("$top/README.md", sort glob("$top/docs/*.md"));
my $total = 0;
my $n = 0;
foreach my $path (@files)
{
	my $file = File::Spec->abs2rel($path, $top);
	my @blocks = sql_blocks($path);
	next unless @blocks;
	my $db = 'docs_' . $n++;

	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
		CREATE EXTENSION outbox_kafka;
		CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer,
		                     amount numeric, status text DEFAULT 'new');
		GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO app_role;
	});

	foreach my $b (@blocks)
	{
		my $sql = $b->{sql};
		$sql =~ s/CREATE EXTENSION outbox_kafka\b/CREATE EXTENSION IF NOT EXISTS outbox_kafka/g;
		my ($ret, $stdout, $stderr) = $node->psql(
			$db, $sql,
			on_error_stop => 1,
			extra_params => [ '-v', 'VERBOSITY=verbose' ]);
		my $where = "$file:$b->{line}";
		if (defined $b->{expect})
		{
			ok($ret != 0 && $stderr =~ /ERROR:  $b->{expect}:/,
				"$where fails with SQLSTATE $b->{expect}")
			  or diag("exit $ret\n$stderr\n--- block:\n$b->{sql}");
		}
		else
		{
			is($ret, 0, "$where runs")
			  or diag("$stderr\n--- block:\n$b->{sql}");
		}
		$total++;
	}

	# undo what the examples changed outside their database
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET ALL');
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	$node->safe_psql('postgres', "DROP DATABASE $db WITH (FORCE)");
	foreach my $role (split /\n/,
		$node->safe_psql('postgres',
			qq{SELECT quote_ident(rolname) FROM pg_roles
			    WHERE quote_ident(rolname) <> ALL (string_to_array('$roles_before', ','))}))
	{
		$node->safe_psql('postgres', "DROP OWNED BY $role; DROP ROLE $role");
	}
}
cmp_ok($total, '>=', 20, "$total SQL examples run");

# --- docs/sql-reference.md names every object, column and error ------------

my $ref = slurp_file("$top/docs/sql-reference.md");
$node->safe_psql('postgres', 'CREATE DATABASE docs_ref');
$node->safe_psql('docs_ref', 'CREATE EXTENSION outbox_kafka');

my @objects = split /\n/, $node->safe_psql('docs_ref', q{
	SELECT CASE d.classid
	       WHEN 'pg_proc'::regclass THEN (SELECT 'outbox.' || proname FROM pg_proc WHERE oid = d.objid)
	       WHEN 'pg_class'::regclass THEN (SELECT 'outbox.' || relname FROM pg_class WHERE oid = d.objid)
	       END
	  FROM pg_depend d
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'outbox_kafka')
	   AND d.classid IN ('pg_proc'::regclass, 'pg_class'::regclass)
	 ORDER BY 1});
cmp_ok(scalar(@objects), '>=', 30, scalar(@objects) . ' objects in the extension');
foreach my $obj (@objects)
{
	like($ref, qr/\Q$obj\E(?![a-z_0-9])/, "sql-reference.md names $obj");
}

foreach my $line (split /\n/, $node->safe_psql('docs_ref', q{
	SELECT c.relname || ' ' || a.attname
	  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
	 WHERE c.relnamespace = 'outbox'::regnamespace AND c.relkind IN ('r', 'v')
	   AND a.attnum > 0 AND NOT a.attisdropped
	 ORDER BY 1}))
{
	my ($rel, $col) = split / /, $line;
	like($ref, qr/`\Q$col\E`/, "sql-reference.md documents column $col of outbox.$rel");
}

# error messages raised by the user-facing C functions and the SQL scripts
my @messages;
foreach my $c ('src/enqueue.c', 'src/capture.c')
{
	my $text = slurp_file("$top/$c");
	push @messages, $1 while $text =~ /errmsg\("((?:[^"\\]|\\.)*)"/g;
}
foreach my $s (glob("$top/sql/*.sql"))
{
	my $text = slurp_file($s);
	push @messages, $1 while $text =~ /RAISE EXCEPTION '((?:[^']|'')*)'/g;
}
cmp_ok(scalar(@messages), '>=', 15, scalar(@messages) . ' error messages found in the sources');
foreach my $msg (@messages)
{
	my $shown = $msg;
	$shown =~ s/\\"/"/g;
	# printf conversions match any placeholder the documentation uses
	my @parts = split /%[-0-9.]*(?:l|z|ll)?[sdu]/, $shown, -1;
	my $re = join('.+?', map { quotemeta } @parts);
	like($ref, qr/$re/, "sql-reference.md documents the error \"$shown\"");
}

# --- relative links between the pages resolve --------------------------------

# GitHub's anchor of a heading
sub slug
{
	my ($h) = @_;
	$h = lc $h;
	$h =~ s/[^a-z0-9 _-]//g;
	$h =~ s/ /-/g;
	return $h;
}
my %anchors;
foreach my $path (@files)
{
	my $text = slurp_file($path);
	$text =~ s/^```.*?^```//msg;    # no headings inside code blocks
	$anchors{$path} = { map { slug($_) => 1 } ($text =~ /^#+\s+(.+?)\s*$/mg) };
}
foreach my $path (@files)
{
	my $file = File::Spec->abs2rel($path, $top);
	my $text = slurp_file($path);
	$text =~ s/^\s*```.*?^\s*```//msg;
	while ($text =~ /\]\(([^)\s]+)\)/g)
	{
		my $link = $1;
		next if $link =~ m{^[a-z]+://} || $link =~ /^mailto:/;
		my ($target, $anchor) = split /#/, $link, 2;
		my $dest = $target eq '' ? $path
		  : File::Spec->rel2abs($target, dirname($path));
		ok(-e $dest, "$file: link $link points to an existing file")
		  or next;
		next unless defined $anchor && $dest =~ /\.md$/;
		$anchors{$dest} //= do
		{
			my $t = slurp_file($dest);
			$t =~ s/^```.*?^```//msg;
			# +{: a hash reference, not a block returning the list
			+{ map { slug($_) => 1 } ($t =~ /^#+\s+(.+?)\s*$/mg) };
		};
		ok($anchors{$dest}->{$anchor}, "$file: link $link points to an existing heading");
	}
}

$node->stop;
done_testing();
