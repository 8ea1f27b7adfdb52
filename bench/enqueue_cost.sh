#!/usr/bin/env bash
# bench/enqueue_cost.sh: what one outbox.enqueue costs the application's
# backend, without a relay (nothing is published: only the enqueue path is
# measured).  pgbench with custom scripts on a throwaway server, one
# transaction per event, synchronous_commit = off so that the figure is the
# enqueue path and not the WAL flush.  Prints a Markdown table.
#
#   bash bench/enqueue_cost.sh            # the extension as installed
#
# Runs, alternating, BENCH_ROUNDS times each (the median is printed):
#   insert    a plain INSERT of the same row into a table like outbox.event_0
#   superuser outbox.enqueue as a superuser (no topic grant check)
#   granted   outbox.enqueue as a role with EXECUTE and, from 0.4, an exact
#             topic grant among 20 (the check with its per-backend cache)
# Needs root (runs the server as $OUTBOX_TEST_USER) and the extension
# installed; run it under the test lock when the installation is shared.
# Settings: BENCH_SECONDS (default 15), BENCH_ROUNDS (3), BENCH_CLIENTS (2).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
run_user=${OUTBOX_TEST_USER:-postgres}
pgbin=/usr/lib/postgresql/15/bin
seconds=${BENCH_SECONDS:-15}
rounds=${BENCH_ROUNDS:-3}
clients=${BENCH_CLIENTS:-2}
# shellcheck source=test/install_deps.sh
source "$here/test/install_deps.sh"

work=$(mktemp -d /tmp/outbox_kafka_enqueue.XXXXXX)
chown "$run_user" "$work"
trap 'remove_throwaway "$work"' EXIT
start_throwaway_server "$work" '' '' "synchronous_commit = off
shared_buffers = '256MB'
max_wal_size = '4GB'"
psql() { runuser -u "$run_user" -- "$pgbin/psql" -X -q -h "$work" -p "$port" -U postgres "$@"; }
pgbench() { runuser -u "$run_user" -- "$pgbin/pgbench" -h "$work" -p "$port" "$@"; }

psql -d postgres -c "CREATE DATABASE bench"
psql -d bench -c "SET client_min_messages = error" -c "CREATE EXTENSION outbox_kafka" \
    -c "CREATE TABLE plain_event (LIKE outbox.event_0 INCLUDING DEFAULTS INCLUDING INDEXES)" \
    -c "CREATE ROLE bench_app LOGIN" \
    -c "GRANT EXECUTE ON FUNCTION outbox.enqueue(text, jsonb, text, jsonb) TO bench_app" \
    -c "GRANT INSERT ON plain_event TO bench_app"
version=$(psql -d bench -Atc "SELECT extversion FROM pg_extension WHERE extname = 'outbox_kafka'")
if [ "$(psql -d bench -Atc "SELECT to_regproc('outbox.grant_topic') IS NOT NULL")" = t ]; then
    # the role's grant is one of twenty, none of them '*'
    psql -d bench -c "SELECT outbox.grant_topic('bench_app', 'other' || g || '.*') FROM generate_series(1, 19) g" \
        -c "SELECT outbox.grant_topic('bench_app', 'orders')" >/dev/null
fi

cat >"$work/enqueue.sql" <<'EOF'
\set k random(1, 1000)
SELECT outbox.enqueue('orders', '{"orderId": 42, "amount": 99.5}'::jsonb, key => :k::text);
EOF
cat >"$work/insert.sql" <<'EOF'
\set k random(1, 1000)
INSERT INTO plain_event (topic, key, payload, payload_kind) VALUES ('orders', :k, convert_to('{"orderId": 42, "amount": 99.5}', 'UTF8'), 'j');
EOF
chown "$run_user" "$work"/*.sql

# tps USER SCRIPT
tps() {
    psql -d bench -c "TRUNCATE plain_event, outbox.event_0, outbox.event_1, outbox.event_2" -c CHECKPOINT
    pgbench -U "$1" -n -f "$work/$2.sql" -T "$seconds" -c "$clients" -j "$clients" bench 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

declare -A runs
for _ in $(seq "$rounds"); do
    runs[insert]+="$(tps postgres insert) "
    runs[superuser]+="$(tps postgres enqueue) "
    runs[granted]+="$(tps bench_app enqueue) "
done

echo "## Enqueue cost, extension $version ($(nproc) cores, PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), pgbench $clients clients, ${seconds}s x $rounds alternating, synchronous_commit = off, no relay)"
echo
echo "| what | TPS (median) | runs | vs plain INSERT |"
echo "|---|---|---|---|"
base=$(echo "${runs[insert]}" | tr ' ' '\n' | grep . | median)
for what in insert superuser granted; do
    m=$(echo "${runs[$what]}" | tr ' ' '\n' | grep . | median)
    echo "| $what | $m | ${runs[$what]% } | $(awk -v a="$m" -v b="$base" 'BEGIN{printf "%.3f", a/b}') |"
done
