#!/usr/bin/env bash
# bench/inbox_dedupe.sh: the inbox's de-duplication storage stays bounded
# (docs/inbox.md, Storage).  A steady BENCH_DEDUPE_RATE messages a second
# (default 1 000, each with an outbox-event-id of its own, so each leaves a
# record) for BENCH_DEDUPE_WINDOWS windows (6) of
# outbox_kafka.inbox_dedupe_window = BENCH_DEDUPE_WINDOW seconds (60, the
# setting's minimum), on a single-node Apache Kafka on loopback, applied by
# a handler that does nothing (so the worker's CPU is as small as it gets
# and the share of purging as large).  Every second it samples the rows and
# the size (pg_total_relation_size, indexes included) of
# outbox.inbox_dedupe_0 and _1; at the end it prints
#
#   - the largest number of records and bytes seen, against rate x window
#     (the floor: what one window of records is, measured in the same run
#     at the rate actually applied); the two tables bound it by 2 x rate x
#     window plus what arrives in the second between two checks;
#   - each rotation (rotated_at), to see that it happens once a window;
#   - the time spent purging -- the worker's TRUNCATE and the rotation's
#     check and update, from pg_stat_statements (track = all) -- against
#     the inbox worker's CPU time (utime + stime in /proc) over the run.
#
# Needs root (installs what is missing, runs the server as
# $OUTBOX_TEST_USER); PG_CONFIG picks the PostgreSQL.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
run_user=${OUTBOX_TEST_USER:-postgres}
rate=${BENCH_DEDUPE_RATE:-1000}
window=${BENCH_DEDUPE_WINDOW:-60}
windows=${BENCH_DEDUPE_WINDOWS:-6}
topic=bench.dedupe
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pgbin=$("$PG_CONFIG" --bindir)
# shellcheck source=test/install_deps.sh
source "$here/test/install_deps.sh"
install_deps
make -C "$here" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null
build_and_install "$here"
work=$(mktemp -d /tmp/outbox_kafka_dedupe_bench.XXXXXX)
chown "$run_user" "$work"
mock_pid=
producer_pid=
trap '[ -z "$producer_pid" ] || kill "$producer_pid" 2>/dev/null; remove_throwaway "$work"' EXIT

start_real_broker "$work" "$topic:8" >&2
start_throwaway_server "$work" "dedupe" "$bootstrap" "shared_preload_libraries = 'outbox_kafka,pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.track_utility = on
outbox_kafka.inbox_dedupe_window = ${window}s
synchronous_commit = on
max_worker_processes = 16"
psql_() { as_user "$run_user" "$pgbin/psql" -h "$work" -p "$port" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
psql_ -d postgres -c 'CREATE DATABASE dedupe'
psql_ -d dedupe <<'SQL'
CREATE EXTENSION outbox_kafka;
CREATE EXTENSION pg_stat_statements;
CREATE FUNCTION nothing(m outbox.inbox_message) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SQL
psql_ -d dedupe -c "SELECT outbox.subscribe('bench', '$topic', 'nothing(outbox.inbox_message)')"
until [ -n "$(psql_ -d dedupe -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'outbox_kafka inbox'")" ]; do sleep 0.2; done
worker=$(psql_ -d dedupe -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'outbox_kafka inbox'")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$worker/stat"; }
hz=$(getconf CLK_TCK)

# the producer: rate x window x windows messages, each its own event
total=$(( rate * window * windows ))
awk -v n="$total" 'BEGIN { for (i = 0; i < n; i++) printf "k%d\tdd-%d\t{\"seq\": %d}\n", i % 1000, i, i }' |
    "$here/test/kafka/kafka_admin" -b "$bootstrap" produce "$topic" "$rate" >"$work/producer.out" 2>&1 &
producer_pid=$!
psql_ -d dedupe -c 'SELECT pg_stat_statements_reset()' >/dev/null
cpu0=$(cpu_ticks)
t0=$(date +%s.%N)
applied0=$(psql_ -d dedupe -c 'SELECT coalesce(sum(applied), 0) FROM outbox.inbox_status')
echo "t_s,rows_0,rows_1,bytes_0,bytes_1,current,applied" >"$work/samples.csv"
while kill -0 "$producer_pid" 2>/dev/null; do
    t=$(echo "$(date +%s.%N) - $t0" | bc)
    psql_ -d dedupe -F, -c "SELECT round($t, 1), (SELECT count(*) FROM outbox.inbox_dedupe_0),
        (SELECT count(*) FROM outbox.inbox_dedupe_1),
        pg_total_relation_size('outbox.inbox_dedupe_0'), pg_total_relation_size('outbox.inbox_dedupe_1'),
        (SELECT current_table FROM outbox.inbox_dedupe_rotation),
        (SELECT coalesce(sum(applied), 0) FROM outbox.inbox_status)" >>"$work/samples.csv"
    sleep 1
done
wait "$producer_pid" || { cat "$work/producer.out"; exit 1; }
producer_pid=
t1=$(date +%s.%N)
cpu1=$(cpu_ticks)
applied1=$(psql_ -d dedupe -c 'SELECT coalesce(sum(applied), 0) FROM outbox.inbox_status')

applied_rate=$(echo "($applied1 - $applied0) / ($t1 - $t0)" | bc)
one_window=$(( applied_rate * window ))
read -r max_rows max_bytes < <(awk -F, 'NR > 1 { r = $2 + $3; b = $4 + $5; if (r > mr) mr = r; if (b > mb) mb = b }
    END { print mr + 0, mb + 0 }' "$work/samples.csv")
bytes_per_record=$(awk -F, 'NR > 1 && $2 + $3 > 10000 { r = $2 + $3; b = $4 + $5 } END { if (r) printf "%d", b / r; else print 0 }' "$work/samples.csv")
rotations=$(awk -F, 'NR > 2 && $6 != prev { n++ } { prev = $6 } END { print n + 0 }' "$work/samples.csv")
rotation_times=$(awk -F, 'NR > 2 && $6 != prev { printf "%s%s s", (n++ ? ", " : ""), $1 } { prev = $6 }' "$work/samples.csv")
# purging: the TRUNCATEs, and the rotation's check (once a second) and
# update; other statements naming inbox_dedupe_rotation are the batches'
# reads of the current table (inserting records, not purging)
pgss() { psql_ -d dedupe -F' ' -c "SELECT coalesce(sum(calls), 0), round(coalesce(sum(total_exec_time), 0)::numeric, 1)
    FROM pg_stat_statements WHERE query NOT ILIKE '%pg_total_relation_size%' AND ($1)"; }
truncate=$(pgss "query ILIKE 'TRUNCATE outbox.inbox_dedupe%'")
rotation=$(pgss "query ILIKE '%inbox_dedupe_rotation%' AND (query ILIKE '%make_interval%' OR query ILIKE 'UPDATE outbox.inbox_dedupe_rotation%')")
reads=$(pgss "query ILIKE '%inbox_dedupe_rotation%' AND query NOT ILIKE '%make_interval%' AND query NOT ILIKE 'UPDATE outbox.inbox_dedupe_rotation%'")
purge_ms=$(echo "${truncate#* } + ${rotation#* }" | bc)
# the real bound: the records of the messages applied in the last two
# windows (plus a second, the rotation is checked once a second)
read -r max_two_windows ratio_applied steady_max < <(awk -F, -v w="$window" 'NR > 1 {
        t[n] = $1; a[n] = $7; r[n] = $2 + $3
        while (t[n] - t[j] > 2 * w + 1) j++
        if (a[n] - a[j] > m2) m2 = a[n] - a[j]
        if (a[n] - a[j] > 0 && r[n] / (a[n] - a[j]) > q) q = r[n] / (a[n] - a[j])
        if (t[n] > 3 * w + 5 && r[n] > sm) sm = r[n]
        n++ }
    END { printf "%d %.2f %d\n", m2, q, sm }' "$work/samples.csv")
worker_ms=$(( (cpu1 - cpu0) * 1000 / hz ))
cp "$work/samples.csv" /tmp/outbox_kafka_dedupe_samples.csv

echo "$(date -u +%F) on $(nproc) cores, load $(uptime | sed 's/.*load average: //'), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), Apache Kafka $(bash "$here/test/kafka/kafka.sh" version) (one KRaft node); command: \`${PG_CONFIG:+PG_CONFIG=$PG_CONFIG }BENCH_DEDUPE_RATE=$rate BENCH_DEDUPE_WINDOW=$window BENCH_DEDUPE_WINDOWS=$windows bash bench/inbox_dedupe.sh\` (samples: /tmp/outbox_kafka_dedupe_samples.csv)"
echo
echo "| what | value |"
echo "|---|---|"
echo "| messages applied, rate | $((applied1 - applied0)) in $(printf %.0f "$(echo "$t1 - $t0" | bc)") s, $applied_rate msg/s |"
echo "| floor: one window of records, rate x window | $one_window |"
echo "| most records seen in inbox_dedupe_0 + _1 | $max_rows ($(echo "scale=2; $max_rows / $one_window" | bc) x rate x window) |"
echo "| the same after the first three windows | $steady_max ($(echo "scale=2; $steady_max / $one_window" | bc) x rate x window) |"
echo "| most messages applied within two windows + 1 s | $max_two_windows (records / messages applied in the two windows before: at most $ratio_applied) |"
echo "| most bytes seen (tables + indexes) | $max_bytes ($bytes_per_record bytes a record) |"
echo "| rotations seen (current table changed) | $rotations, at $rotation_times |"
echo "| TRUNCATEs: calls, time | ${truncate% *}, ${truncate#* } ms |"
echo "| the rotation's check and update: calls, time | ${rotation% *}, ${rotation#* } ms |"
echo "| (not purging: the batches' reads of the current table: calls, time) | ${reads% *}, ${reads#* } ms |"
echo "| the inbox worker's CPU over the run | $worker_ms ms |"
echo "| purging / worker CPU | $(echo "scale=2; 100 * $purge_ms / $worker_ms" | bc) % |"
