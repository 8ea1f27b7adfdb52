#!/usr/bin/env bash
# bench/relay_cost.sh: what the relay costs the database server it runs in,
# against the mock broker: CPU seconds of the worker (all its threads, from
# /proc) and WAL per event at a fixed enqueue rate, transaction ids and WAL
# of an idle relay, and how soon the first event of a new topic arrives.
#
#   bash bench/relay_cost.sh            (RATES="200 2000", SECONDS_PER_RATE=10)
#
# BENCH_PRODUCER_PROPERTIES: outbox_kafka.producer_properties of the relay
# (with a linger.ms there, set FLOOR_LINGER_MS alike: the floor then uses
# the same; bench/tradeoff.sh does both).
# BENCH_PROFILE=1: also record the worker (all its threads) with `perf record
# -g` at each rate and print where its CPU went, by thread and symbol
# (installs Debian's linux-perf if perf is missing); BENCH_PROFILE_DIR=/dir
# keeps the recordings (perf.RATE) for `perf report -i`.
#
# Needs root (installs what is missing, runs the server as $OUTBOX_TEST_USER).
# RDKAFKA_PREFIX=/path: the relay and the floor run that librdkafka.  The
# extension is rebuilt from clean every time: make alone does not notice a
# change of RDKAFKA_PREFIX and would install the previous run's build (so
# runs with two librdkafka versions can alternate in one sitting).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
run_user=${OUTBOX_TEST_USER:-postgres}
rates=${RATES:-200 2000}
secs=${SECONDS_PER_RATE:-10}
# shellcheck source=test/install_deps.sh
source "$here/test/install_deps.sh"
# shellcheck source=bench/perf_summary.sh
source "$here/bench/perf_summary.sh"
install_deps
need_perf
make -C "$here" -s clean >/dev/null
build_and_install "$here"
pgbin=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)

work=$(mktemp -d /tmp/outbox_kafka_cost.XXXXXX)
chown "$run_user" "$work"
build_rdkafka_program "$work/floor_producer" "$here/bench/floor_producer.c"
mock_pid=
trap 'remove_throwaway "$work"' EXIT

start_mock_broker "$work" --brokers 1 --topic cost:4 --auto-partitions 4
start_throwaway_server "$work" postgres "$bootstrap" "shared_buffers = '256MB'
outbox_kafka.poll_interval = '1h'
outbox_kafka.producer_properties = '${BENCH_PRODUCER_PROPERTIES:-}'"
psql() { as_user "$run_user" "$pgbin/psql" -X -q -h "$work" -p "$port" -U postgres -d postgres "$@"; }
psql -c 'CREATE EXTENSION outbox_kafka' 2>/dev/null

# wait_published N [saved]: until the relay has published N events and,
# with "saved", saved its progress (pending_events = 0; it saves at most
# every 100 ms); polls every 10 ms, deadline 60 s
wait_published() {
    local cond="events_published >= $1"
    [ "${2:-}" = saved ] && cond="$cond AND pending_events = 0"
    for _ in $(seq 6000); do
        [ "$(psql -Atc "SELECT $cond FROM outbox.status")" = t ] && return 0
        sleep 0.01
    done
    echo "relay did not publish $1 events" >&2; return 1
}

echo "# Relay cost, $(date -u +%F), $(nproc) cores, mock broker, the relay runs librdkafka $(psql -Atc 'SELECT outbox.librdkafka_version()'); command: \`${RDKAFKA_PREFIX:+RDKAFKA_PREFIX=$RDKAFKA_PREFIX }bash bench/relay_cost.sh\`"
echo
echo "## First event of a new topic (commit to acknowledged, polled from outbox.status every 10 ms)"
echo
echo "| topic | ms |"
echo "|---|---|"
n=0
for t in first second third; do
    n=$((n + 1))
    t0=$(date +%s%N)
    psql -c "SELECT outbox.enqueue('cost.$t', '{}'::jsonb)" >/dev/null
    wait_published $n
    echo "| cost.$t | $(( ($(date +%s%N) - t0) / 1000000 )) |"
done

pid=$(psql -Atc 'SELECT worker_pid FROM outbox.status')
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# main_ticks: CPU ticks of the worker's own thread (the rest is librdkafka's)
main_ticks() { awk '{print $14 + $15}' "/proc/$pid/task/$pid/stat"; }
# switches: context switches of every thread of the worker
switches() { cat /proc/"$pid"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
hz=$(getconf CLK_TCK)
cat >"$work/enqueue.sql" <<'SQL'
SELECT outbox.enqueue('cost', '{"orderId": 42, "amount": 99.5}'::jsonb, key => (random() * 1000)::int::text);
SQL
chmod a+r "$work/enqueue.sql"

echo
echo "## Relay CPU and WAL per event (pgbench --rate, 4 clients, ${secs} s; CPU of the worker process, all threads)"
echo
echo "| rate (ev/s) | events | relay CPU s | µs per event | of which the worker's thread / librdkafka's threads (µs) | context switches per event | transaction ids the relay used | WAL bytes per event (all of the server) | tps reached |"
echo "|---|---|---|---|---|---|---|---|---|"
for rate in $rates; do
    pub0=$(psql -Atc 'SELECT events_published FROM outbox.status')
    seq0=$(psql -Atc 'SELECT last_value FROM outbox.event_id_seq')
    lsn0=$(psql -Atc 'SELECT pg_current_wal_insert_lsn()')
    x0=$(psql -Atc 'SELECT pg_current_xact_id()')
    c0=$(ticks)
    m0=$(main_ticks)
    s0=$(switches)
    profiler=
    if [ -n "${BENCH_PROFILE:-}" ]; then
        perf record -q -F 2999 -g -p "$pid" -o "$work/perf.$rate" -- sleep "$secs" 2>/dev/null &
        profiler=$!
    fi
    tps=$(as_user "$run_user" "$pgbin/pgbench" -n -h "$work" -p "$port" -U postgres \
        -f "$work/enqueue.sql" -R "$rate" -T "$secs" -c 4 -j 2 postgres 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    events=$(( $(psql -Atc 'SELECT last_value FROM outbox.event_id_seq') - seq0 ))
    wait_published $((pub0 + events)) saved
    [ -z "$profiler" ] || wait "$profiler"
    c1=$(ticks)
    m1=$(main_ticks)
    s1=$(switches)
    # every enqueue used one; so did this script's two calls
    relay_xids=$(( $(psql -Atc 'SELECT pg_current_xact_id()') - x0 - events - 1 ))
    wal=$(psql -Atc "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0')")
    echo "| $rate | $events | $(echo "scale=2; ($c1 - $c0) / $hz" | bc) | $(echo "scale=1; ($c1 - $c0) * 1000000 / $hz / $events" | bc) | $(echo "scale=1; ($m1 - $m0) * 1000000 / $hz / $events" | bc) / $(echo "scale=1; ($c1 - $c0 - $m1 + $m0) * 1000000 / $hz / $events" | bc) | $(echo "scale=2; ($s1 - $s0) / $events" | bc) | $relay_xids | $(( ${wal%.*} / events )) | $tps |"
done

if [ -n "${BENCH_PROFILE:-}" ]; then
    for rate in $rates; do
        echo
        echo "## Where the worker's CPU went at $rate ev/s (perf record -g of all its threads, ${secs} s, which also slows it: the CPU figures of a profiled run are not comparable)"
        echo
        perf_summary "$work/perf.$rate"
    done
    [ -z "${BENCH_PROFILE_DIR:-}" ] || cp "$work"/perf.* "$BENCH_PROFILE_DIR"/
fi

echo
echo "## The floor: a bare librdkafka producer (bench/floor_producer.c, the relay's settings, no database) at the same rates to the same broker, ${secs} s"
echo
echo "| rate (msg/s) | messages | CPU s (all threads) | µs per message | context switches per message |"
echo "|---|---|---|---|---|"
for rate in $rates; do
    "$work/floor_producer" "$bootstrap" cost.floor "$rate" "$secs" |
        awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
             END {printf "| %s | %d | %.2f | %.1f | %.2f |\n", "'"$rate"'", v["messages"], v["cpu_s"], v["cpu_s"] * 1e6 / v["messages"], v["context_switches"] / v["messages"]}'
done

echo
echo "## First event after the worker starts (relay stopped and started by a reload; commit to acknowledged)"
echo
echo "| run | ms |"
echo "|---|---|"
for r in 1 2 3; do
    psql -c "ALTER SYSTEM SET outbox_kafka.databases = ''" -c 'SELECT pg_reload_conf()' >/dev/null
    until [ "$(psql -Atc 'SELECT worker_pid IS NULL FROM outbox.status')" = t ]; do sleep 0.01; done
    psql -c "ALTER SYSTEM RESET outbox_kafka.databases" -c 'SELECT pg_reload_conf()' >/dev/null
    until [ "$(psql -Atc "SELECT state = 'idle' FROM outbox.status")" = t ]; do sleep 0.01; done
    t0=$(date +%s%N)
    psql -c "SELECT outbox.enqueue('cost.cold.$r', '{}'::jsonb)" >/dev/null
    wait_published 1
    echo "| $r | $(( ($(date +%s%N) - t0) / 1000000 )) |"
done

echo
echo "## Idle relay (poll_interval = 50 ms, 10 s)"
echo
psql -c "ALTER SYSTEM SET outbox_kafka.poll_interval = '50ms'" -c 'SELECT pg_reload_conf()' >/dev/null
wait_published 1 saved    # the last event's progress is saved: idle from here
x0=$(psql -Atc 'SELECT pg_current_xact_id()'); l0=$(psql -Atc 'SELECT pg_current_wal_insert_lsn()')
sleep 10    # the measurement is what happens while nothing happens
x1=$(psql -Atc 'SELECT pg_current_xact_id()'); l1=$(psql -Atc 'SELECT pg_current_wal_insert_lsn()')
echo "transaction ids used by others than this script: $(( x1 - x0 - 1 )); WAL written by the whole server: $(psql -Atc "SELECT pg_wal_lsn_diff('$l1', '$l0')") bytes"
