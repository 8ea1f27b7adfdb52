#!/usr/bin/env bash
# bench/sick_partition.sh: does one sick partition slow down the others?
# (G6, issue 16: the other partitions' p99 within 100 ms of a run without
# the fault.)  Against the mock broker, at a fixed rate (pgbench --rate, 4
# clients, keyed events over the 4 partitions of a topic), two runs of
# BENCH_SECONDS each:
#   - no fault;
#   - partition 3 loses its leader a quarter into the run and gets it back
#     three quarters into it.
# The latency consumer reads partitions 0-2 only: the healthy ones.
#
#   bash bench/sick_partition.sh      (BENCH_SECONDS=20, BENCH_RATE=2000, BENCH_ROUNDS=2)
#
# Needs root (installs what is missing, runs the server as $OUTBOX_TEST_USER).
# PG_CONFIG picks the PostgreSQL, RDKAFKA_PREFIX the librdkafka (the
# extension is rebuilt from clean).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
run_user=${OUTBOX_TEST_USER:-postgres}
seconds=${BENCH_SECONDS:-20}
rate=${BENCH_RATE:-2000}
rounds=${BENCH_ROUNDS:-2}
# shellcheck source=test/install_deps.sh
source "$here/test/install_deps.sh"
install_deps
make -C "$here" -s clean >/dev/null
build_and_install "$here"
pgbin=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)

work=$(mktemp -d /tmp/outbox_kafka_sick.XXXXXX)
chown "$run_user" "$work"
build_rdkafka_program "$work/latency_consumer" "$here/bench/latency_consumer.c"
mock_pid=
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null
    remove_throwaway "$work"
}
trap cleanup EXIT

start_mock_broker "$work" --brokers 1
start_throwaway_server "$work" postgres "$bootstrap" "outbox_kafka.poll_interval = '1h'"
psql() { as_user "$run_user" "$pgbin/psql" -X -q -h "$work" -p "$port" -U postgres -d postgres "$@"; }
psql -c 'CREATE EXTENSION outbox_kafka'

# one_run TOPIC FAULT(yes|no): a run at $rate; prints the consumer's line
one_run() {
    local topic=$1 cpid ppid
    mock_command "$work" "create_topic $topic 4"
    printf "SELECT outbox.enqueue('%s', jsonb_build_object('t', extract(epoch from clock_timestamp())), key => (random()*1000)::int::text);\n" \
        "$topic" >"$work/latency.sql"
    chown "$run_user" "$work/latency.sql"
    "$work/latency_consumer" "$bootstrap" "$topic" 3 $(( rate * seconds )) $(( seconds + 5 )) >"$work/lat.out" &
    cpid=$!
    for _ in $(seq 100); do grep -q ready "$work/lat.out" && break; sleep 0.1; done
    as_user "$run_user" "$pgbin/pgbench" -n -h "$work" -p "$port" -U postgres \
        -f "$work/latency.sql" -R "$rate" -T "$seconds" -c 4 -j 2 postgres >/dev/null 2>&1 &
    ppid=$!
    if [ "$2" = yes ]; then
        # the fault's timing, not synchronisation: a quarter in, three quarters in
        sleep "$(echo "$seconds / 4" | bc -l)"
        mock_command "$work" "leader $topic 3 -1"
        sleep "$(echo "$seconds / 2" | bc -l)"
        mock_command "$work" "leader $topic 3 1"
    fi
    wait "$ppid"
    wait "$cpid" || true
    sed -n 's/^windows_p99_ms=//p' "$work/lat.out" >>"$work/windows"
    sed -n 's/^count=\([0-9]*\) p50_ms=\([0-9.]*\) p90_ms=\([0-9.]*\) p99_ms=\([0-9.]*\) max_ms=\([0-9.]*\)/\1 | \2 | \3 | \4 | \5/p' "$work/lat.out"
}

echo "# One sick partition, $(date -u +%F), $(nproc) cores, mock broker, the relay runs librdkafka $(psql -Atc 'SELECT outbox.librdkafka_version()'); command: \`${RDKAFKA_PREFIX:+RDKAFKA_PREFIX=$RDKAFKA_PREFIX }bash bench/sick_partition.sh\`"
echo
echo "Commit to consumer latency of partitions 0-2 at $rate ev/s, ${seconds} s per run; in the fault runs partition 3 has no leader from $(( seconds / 4 )) s to $(( seconds * 3 / 4 )) s."
echo
echo "| round | run | events (partitions 0-2) | p50 ms | p90 ms | p99 ms | max ms |"
echo "|---|---|---|---|---|---|---|"
for i in $(seq "$rounds"); do
    echo "| $i | no fault | $(one_run "sick.none.$i" no) |"
    echo "| $i | partition 3 without leader | $(one_run "sick.fault.$i" yes) |"
done
echo
echo "p99 ms of each window of arrivals, run by run (is the tail flat?):"
echo
sed 's/^/- /' "$work/windows"
echo
echo "Held partitions at the end (the sick one is released once it has its leader back):"
echo
psql -Atc "SELECT count(*) || ' held, ' || coalesce(sum(held_events), 0) || ' events' FROM outbox.held_topics"
