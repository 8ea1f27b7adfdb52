#!/usr/bin/env bash
# bench/run.sh: outbox_kafka benchmarks, measured side by side in one run on
# this machine on loopback, against librdkafka's mock broker (with
# TCP_NODELAY) and against a real single-node Apache Kafka (test/kafka).
# Prints a Markdown report (docs/benchmarks.md keeps the latest).
#
#   bash bench/run.sh [all|cost|enqueue|latency|drain|bloat ...]
#
# Several parts run in one go on one server and one broker pair, e.g.
# `bash bench/run.sh cost latency drain`.
#
# cost runs bench/relay_cost.sh (relay CPU and WAL per event, idle relay,
# first events) on a server of its own; all runs it first.
#
# Needs root (installs what is missing, runs servers as $OUTBOX_TEST_USER).
# RDKAFKA_PREFIX=/path: the relay and the floors run that librdkafka; the
# extension is rebuilt from clean (by bench/relay_cost.sh with all and
# cost), so runs with two librdkafka versions can alternate in one sitting:
#   bash bench/run.sh latency
#   RDKAFKA_PREFIX=/var/cache/outbox_kafka/librdkafka-2.14.2 bash bench/run.sh latency
# Settings: BENCH_SECONDS (default 20), BENCH_RATE (2000), BENCH_LATENCY_RATES
# ("200 $BENCH_RATE max": the latency runs; max is 8 clients with no rate
# limit), BENCH_DRAIN (1000000),
# BENCH_BLOAT_SECONDS (120), BENCH_PRODUCER_PROPERTIES (''), BENCH_EXTRA_CONF
# (lines added to postgresql.conf), BENCH_MOCK_RTT_MS (0: the mock broker's
# round trip setting, e.g. 2), BENCH_BROKERS ("mock kafka": latency and
# drain against each, in that order; each latency run is followed by the
# floor at the same rate: bench/floor_producer.c producing straight to the
# broker, read by the same consumer), BENCH_PROFILE (1: record the worker's
# threads with perf during each drain and print where its CPU went;
# BENCH_PROFILE_DIR=/dir keeps the recordings, perf.drain.BROKER),
# BENCH_PUSH_FLOOR (1: each latency run also runs the floor producer
# sending the relay's way: linger.ms=1, each message pushed at once).
# Each latency part also splits the delay at the message's create time
# (bench/latency_consumer.c): the relay's side against the broker's.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
what=${*:-all}
# wants PART: true when PART (or all) was asked for
wants() { [[ " $what " == *" all "* || " $what " == *" $1 "* ]]; }
if wants cost; then
    bash "$here/bench/relay_cost.sh"
    echo
    [ "$what" = cost ] && exit 0
fi
run_user=${OUTBOX_TEST_USER:-postgres}
pgbin=/usr/lib/postgresql/15/bin
seconds=${BENCH_SECONDS:-20}
rate=${BENCH_RATE:-2000}
drain_n=${BENCH_DRAIN:-1000000}
bloat_seconds=${BENCH_BLOAT_SECONDS:-120}
# shellcheck source=test/install_deps.sh
source "$here/test/install_deps.sh"
# shellcheck source=bench/perf_summary.sh
source "$here/bench/perf_summary.sh"

install_deps
need_perf
# make alone does not notice a change of RDKAFKA_PREFIX: build from clean
# unless bench/relay_cost.sh just did
wants cost || make -C "$here" -s clean >/dev/null
build_and_install "$here"

work=$(mktemp -d /tmp/outbox_kafka_bench.XXXXXX)
chown "$run_user" "$work"
build_rdkafka_program "$work/latency_consumer" "$here/bench/latency_consumer.c"
build_rdkafka_program "$work/floor_producer" "$here/bench/floor_producer.c"

mock_pid=
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null
    remove_throwaway "$work"
}
trap cleanup EXIT

brokers=${BENCH_BROKERS:-mock kafka}
start_mock_broker "$work" --brokers 1 --topic bench.latency:4 --topic bench.drain:4 --topic bench.load:4
mock_bootstrap=$bootstrap
# BENCH_MOCK_RTT_MS: the mock answers every request that much later (its
# RTT setting), for the relay and the floor alike: a broker across a network
if [ "${BENCH_MOCK_RTT_MS:-0}" != 0 ]; then
    echo "rtt 1 $BENCH_MOCK_RTT_MS" >"$work/mock.fifo"
fi
kafka_bootstrap=
if [[ " $brokers " == *" kafka "* ]] && { wants latency || wants drain; }; then
    start_real_broker "$work" >&2
    kafka_bootstrap=$bootstrap
    bootstrap=$mock_bootstrap
fi
# create_topic NAME PARTITIONS: on the broker in use
create_topic() {
    if [ "$bootstrap" = "$mock_bootstrap" ]; then
        echo "create_topic $1 $2" >"$work/mock.fifo"
    else
        "$here/test/kafka/kafka_admin" -b "$bootstrap" create-topic "$1" "$2" 1
    fi
}
# use_broker mock|kafka: point the relay at that broker (reload)
use_broker() {
    if [ "$1" = mock ]; then bootstrap=$mock_bootstrap; else bootstrap=$kafka_bootstrap; fi
    psql -d postgres -c "ALTER SYSTEM SET outbox_kafka.bootstrap_servers = '$bootstrap'" -c "SELECT pg_reload_conf()" >/dev/null
}
start_throwaway_server "$work" bench "$bootstrap" "outbox_kafka.producer_properties = '${BENCH_PRODUCER_PROPERTIES:-}'
shared_buffers = '512MB'
max_wal_size = '4GB'
${BENCH_EXTRA_CONF:-}"
psql() { as_user "$run_user" "$pgbin/psql" -X -q -h "$work" -p "$port" -U postgres "$@"; }
pgbench() { as_user "$run_user" "$pgbin/pgbench" -h "$work" -p "$port" -U postgres "$@"; }
set_relay() {   # set_relay 'bench' | ''  -- start or stop the relay, wait for it
    psql -d postgres -c "ALTER SYSTEM SET outbox_kafka.databases = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
    local want=t; [ -z "$1" ] && want=f
    for _ in $(seq 200); do
        [ "$(psql -d bench -Atc "SELECT state IS NOT NULL FROM outbox.status")" = "$want" ] && return 0
        sleep 0.1
    done
    echo "relay did not change state" >&2; return 1
}
# tps_of SCRIPT: tps of SCRIPT.sql, 8 clients, $seconds, after a checkpoint
tps_of() {
    psql -d bench -c CHECKPOINT
    pgbench -n -f "$work/$1.sql" -T "$seconds" -c 8 -j 2 bench 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # cpu_ticks PID: all threads
ticks_s() { awk -v c="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", c/hz}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b + 0 == 0) print "n/a"; else printf "%.3f", a/b}'; }
wait_drained() {
    for _ in $(seq 6000); do
        [ "$(psql -d bench -Atc "SELECT pending_events = 0 FROM outbox.status")" = t ] && return 0
        sleep 0.05
    done
    echo "relay did not drain" >&2; return 1
}
psql -d postgres -c "CREATE DATABASE bench"
psql -d bench -c "SET client_min_messages = error" -c "CREATE EXTENSION outbox_kafka" \
    -c "CREATE TABLE plain_event (LIKE outbox.event_0 INCLUDING DEFAULTS INCLUDING INDEXES)" \
    -c "CREATE TABLE orders (id bigserial PRIMARY KEY, customer int NOT NULL, amount numeric NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
set_relay bench

echo "# outbox_kafka benchmarks"
echo
echo "$(date -u +%F) on $(nproc) cores, PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), librdkafka $(psql -d bench -Atc 'SELECT outbox.librdkafka_version()') (what the relay runs), brokers: mock (librdkafka's mock cluster with TCP_NODELAY)$([ -n "$kafka_bootstrap" ] && echo ", kafka (Apache Kafka $(bash "$here/test/kafka/kafka.sh" version), one KRaft node, G1, -Xmx512m)"); command: \`${RDKAFKA_PREFIX:+RDKAFKA_PREFIX=$RDKAFKA_PREFIX }bash bench/run.sh $what\`"
echo

if wants enqueue; then
    # the application's transaction: an order and its event, three ways
    cat >"$work/order_enqueue.sql" <<'EOF'
\set k random(1, 1000)
BEGIN;
INSERT INTO orders (customer, amount) VALUES (:k, 99.5);
SELECT outbox.enqueue('orders', '{"orderId": 42, "amount": 99.5}'::jsonb, key => :k::text);
END;
EOF
    cat >"$work/order_plain.sql" <<'EOF'
\set k random(1, 1000)
BEGIN;
INSERT INTO orders (customer, amount) VALUES (:k, 99.5);
INSERT INTO plain_event (topic, key, payload, payload_kind) VALUES ('orders', :k, convert_to('{"orderId": 42, "amount": 99.5}', 'UTF8'), 'j');
END;
EOF
    cat >"$work/order_only.sql" <<'EOF'
\set k random(1, 1000)
INSERT INTO orders (customer, amount) VALUES (:k, 99.5);
EOF
    chown "$run_user" "$work"/*.sql
    echo "## Application throughput (pgbench, 8 clients, no rate limit, ${seconds}s per run, alternating, a CHECKPOINT before each; the relay publishes every enqueued event to the mock broker, which runs on the same two cores)"
    echo
    echo "The floor column runs the plain workload while bench/floor_producer (a bare librdkafka producer, no database) sends as many messages per second as the enqueue run published to the same mock broker: what publishing that rate costs the application on these two cores, whoever publishes."
    echo
    echo "| run | order + enqueue, relay publishing (tps) | order + INSERT into an ordinary event table, no relay (tps) | order alone (tps) | floor: plain event while a bare producer publishes the enqueue run's rate (tps) | enqueue / plain event | floor / plain event | enqueue / order alone | relay CPU s during the enqueue run | mock broker CPU s during the enqueue run | bare producer CPU s |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    create_topic bench.floor.load 4
    for r in 1 2 3; do
        set_relay ''
        p=$(tps_of order_plain)
        o=$(tps_of order_only)
        set_relay bench
        wpid=$(psql -d bench -Atc 'SELECT worker_pid FROM outbox.status')
        c0=$(cpu_ticks "$wpid")
        b0=$(cpu_ticks "$mock_pid")
        e=$(tps_of order_enqueue)
        c1=$(cpu_ticks "$wpid")
        b1=$(cpu_ticks "$mock_pid")
        wait_drained
        set_relay ''
        "$work/floor_producer" "$mock_bootstrap" bench.floor.load "${e%.*}" "$seconds" >"$work/floor.out" &
        fpid=$!
        f=$(tps_of order_plain)
        wait "$fpid"
        echo "| $r | ${e%.*} | ${p%.*} | ${o%.*} | ${f%.*} | $(ratio "$e" "$p") | $(ratio "$f" "$p") | $(ratio "$e" "$o") | $(ticks_s $((c1 - c0))) | $(ticks_s $((b1 - b0))) | $(sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' "$work/floor.out") |"
    done
    set_relay bench
    echo
fi

# latency_line BROKER PATH RATE: the consumer's figures as a table row
latency_line() {
    sed -n 's/^count=\([0-9]*\) p50_ms=\([0-9.]*\) p90_ms=\([0-9.]*\) p99_ms=\([0-9.]*\) max_ms=\([0-9.]*\)/| '"$1"' | '"$2"' | '"$3"' | \1 | \2 | \3 | \4 | \5 |/p' "$work/lat.out"
}

# split_line BROKER PATH RATE: the consumer's split of the delay at the
# message's create time (librdkafka's hand-over) as a table row
split_line() {
    sed -n 's/^split_ms to_produce_p50=\([-0-9.]*\) to_produce_mean=\([-0-9.]*\) after_produce_p50=\([-0-9.]*\) after_produce_mean=\([-0-9.]*\)/| '"$1"' | '"$3"' | '"$2"' | \1 \/ \2 | \3 \/ \4 |/p' "$work/lat.out"
}

# start_consumer TOPIC COUNT [TIMEOUT_S]: the latency consumer, reading from
# the end, until COUNT messages or the timeout (default: the run + 20 s)
start_consumer() {
    "$work/latency_consumer" "$bootstrap" "$1" 4 "$2" "${3:-$(( seconds + 20 ))}" >"$work/lat.out" &
    cpid=$!
    for _ in $(seq 100); do grep -q ready "$work/lat.out" && break; sleep 0.1; done
}

# with_fsync p50|p99: that figure of the last consumer run plus one
# commit's fsync (fsync_ms), as every relay figure contains it
with_fsync() {
    awk -v f="$fsync_ms" -v k="$1_ms" '/^count=/ {for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) {sub(k "=", "", $i); printf "%.2f", $i + f}}' "$work/lat.out"
}

# floor_run BROKER RATE: the latency floor: a plain librdkafka producer
# with the relay's delivery settings (bench/floor_producer.c) but sending
# each message as it comes (linger.ms=0) produces straight to the broker
# at RATE, and the same consumer reads; then the same figures plus one
# commit's fsync (fsync_ms), which every relay figure contains
floor_run() {
    create_topic "bench.floor.$1.$2" 4
    start_consumer "bench.floor.$1.$2" $(( $2 * seconds * 98 / 100 ))
    FLOOR_LINGER_MS=0 "$work/floor_producer" "$bootstrap" "bench.floor.$1.$2" "$2" "$seconds" >/dev/null
    wait "$cpid" || true
    latency_line "$1" "floor: librdkafka producer (linger.ms=0), broker, consumer" "$2"
    splits="$splits
| $1 | $2 | floor: its send is its hand-over | 0 | $(sed -n 's/^count=.* p50_ms=\([0-9.]*\).*/\1/p' "$work/lat.out") (its whole delay) |"
    floor_p50=$(with_fsync p50)
    floor_p99=$(with_fsync p99)
    echo "| $1 | latency floor: the floor + one commit fsync ($fsync_ms ms) | $2 | | $floor_p50 | | $floor_p99 | |"
    windows="$windows
- $1, floor at $2 ev/s: $(sed -n 's/^windows_p99_ms=//p' "$work/lat.out")"
    # the same floor again while the application's load runs beside it:
    # pgbench inserting as many rows a second into an ordinary table (the
    # relay's figures contain the broker's and the consumer's share of two
    # cores that the application's transactions also use)
    create_topic "bench.floor.$1.$2.load" 4
    start_consumer "bench.floor.$1.$2.load" $(( $2 * seconds * 98 / 100 ))
    pgbench -n -f "$work/latency_plain.sql" -R "$2" -T "$seconds" -c 4 -j 2 bench >/dev/null 2>&1 &
    local lpid=$!
    FLOOR_LINGER_MS=0 "$work/floor_producer" "$bootstrap" "bench.floor.$1.$2.load" "$2" "$seconds" >/dev/null
    wait "$lpid" || true
    wait "$cpid" || true
    latency_line "$1" "floor beside the application's load (pgbench inserting $2 rows a second into an ordinary table)" "$2"
    local load_p50 load_p99
    load_p50=$(with_fsync p50)
    load_p99=$(with_fsync p99)
    summary="$summary
| $1 | $2 | $relay_p50 / $relay_p99 | $floor_p50 / $floor_p99 | $(ratio "$relay_p50" "$floor_p50") / $(ratio "$relay_p99" "$floor_p99") | $load_p50 / $load_p99 | $(ratio "$relay_p50" "$load_p50") / $(ratio "$relay_p99" "$load_p99") |"
    if [ "${BENCH_PUSH_FLOOR:-0}" = 1 ]; then
        # the relay's way of sending without the relay: linger.ms=1 and
        # each message pushed with a 1 ms flush (bench/floor_producer.c)
        create_topic "bench.floor.$1.$2.push" 4
        start_consumer "bench.floor.$1.$2.push" $(( $2 * seconds * 98 / 100 ))
        FLOOR_LINGER_MS=1 FLOOR_PUSH=1 "$work/floor_producer" "$bootstrap" "bench.floor.$1.$2.push" "$2" "$seconds" >/dev/null
        wait "$cpid" || true
        latency_line "$1" "floor sending the relay's way (linger.ms=1, each message pushed with a 1 ms flush)" "$2"
    fi
}

# the commit's fsync: pg_test_fsync's one 8 kB write with fdatasync (the
# default wal_sync_method on Linux), in ms, on the server's disk
fsync_ms=$(as_user "$run_user" "$pgbin/pg_test_fsync" -s 1 -f "$work/fsync.test" 2>/dev/null |
    awk '/one 8kB write/ {one = 1} one && $1 == "fdatasync" {printf "%.3f", $(NF - 1) / 1000; exit}')
rm -f "$work/fsync.test"

latency_runs() {   # latency_runs BROKER
    local r n t
    windows=
    local rtt_note=
    [ "$1" = mock ] && [ "${BENCH_MOCK_RTT_MS:-0}" != 0 ] && rtt_note=" with a ${BENCH_MOCK_RTT_MS} ms round trip (its rtt setting)"
    summary=
    splits=
    echo "## Commit to consumer latency, $1 broker$rtt_note (pgbench --rate, 4 clients, then 8 clients with no rate limit, ${seconds}s each; consumer fetch.wait.max.ms=1; the latency floor is a plain librdkafka producer sending each message as it comes, at the same rate, plus one commit fsync)"
    echo
    echo "| broker | path | rate (ev/s) | events | p50 ms | p90 ms | p99 ms | max ms |"
    echo "|---|---|---|---|---|---|---|---|"
    cat >"$work/latency_plain.sql" <<'EOF'
\set k random(1, 1000)
INSERT INTO plain_event (topic, key, payload, payload_kind) VALUES ('bench.plain', :k, convert_to(jsonb_build_object('t', extract(epoch from clock_timestamp()))::text, 'UTF8'), 'j');
EOF
    chown "$run_user" "$work/latency_plain.sql"
    for r in ${BENCH_LATENCY_RATES:-200 $rate max}; do
        # a fresh topic per run: the mock broker's fetches slow down as a
        # partition log grows, which would measure the mock, not the relay
        t="bench.latency.$1.$r"
        printf "SELECT outbox.enqueue('%s', jsonb_build_object('t', extract(epoch from clock_timestamp())), key => (random()*1000)::int::text);\n" "$t" >"$work/latency.sql"
        chown "$run_user" "$work/latency.sql"
        create_topic "$t" 4
        psql -d bench -c "SELECT outbox.enqueue('$t', '{\"t\": 0}'::jsonb)" >/dev/null
        wait_drained
        if [ "$r" = max ]; then
            # as many as come: the run, and 3 s for the last ones
            start_consumer "$t" $(( 20000 * seconds )) $(( seconds + 3 ))
            n=$(pgbench -n -f "$work/latency.sql" -T "$seconds" -c 8 -j 2 bench 2>/dev/null |
                sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
            r=$(( n / seconds ))
        else
            start_consumer "$t" $(( r * seconds * 98 / 100 ))
            pgbench -n -f "$work/latency.sql" -R "$r" -T "$seconds" -c 4 -j 2 bench >/dev/null 2>&1
        fi
        wait "$cpid" || true
        latency_line "$1" "commit, relay, broker, consumer" "$r"
        splits="$splits
$(split_line "$1" relay "$r")"
        relay_p50=$(sed -n 's/^count=.* p50_ms=\([0-9.]*\).*/\1/p' "$work/lat.out")
        relay_p99=$(sed -n 's/^count=.* p99_ms=\([0-9.]*\).*/\1/p' "$work/lat.out")
        windows="$windows
- $1, relay at $r ev/s: $(sed -n 's/^windows_p99_ms=//p' "$work/lat.out")"
        # the floor at the same rate, on the same broker
        floor_run "$1" "$r"
    done
    echo
    echo "Against the latency floor (targets of issue 19: p50 ≤ 1.5×, p99 ≤ 1.3×):"
    echo
    echo "| broker | rate (ev/s) | relay p50 / p99 ms | latency floor p50 / p99 ms | relay / floor | the same floor beside the application's load (+ fsync) | relay / that floor |"
    echo "|---|---|---|---|---|---|---|$summary"
    echo
    echo "Where the delay goes: split at each message's create time, which librdkafka stamps when the message is handed to it (rd_kafka_producev); whole milliseconds, each taken as its millisecond + 0.5 ms, so a p50 is good to ±0.5 ms and a mean is right over many messages (the floor's own split is not shown: it sends on a fixed schedule, so its sends keep one phase against the millisecond and the correction does not average out):"
    echo
    echo "| broker | rate (ev/s) | path | enqueue → hand-over p50 / mean ms (relay: commit, wake-up, read) | hand-over → consumer p50 / mean ms (gathering, broker, fetch) |"
    echo "|---|---|---|---|---|$splits"
    echo
    echo "p99 ms of each 10 s of arrivals (a flat tail keeps these alike):$windows"
    echo
}

drain_run() {   # drain_run BROKER
    local per pids s before after t0 t1 t2 total_ms ms wpid c0 c1 profiler=
    create_topic "bench.drain.$1" 4
    echo "## Backlog drain, $1 broker ($drain_n events enqueued while the relay is stopped)"
    echo
    set_relay ''
    per=$(( drain_n / 4 ))
    pids=()
    for s in 1 2 3 4; do
        psql -d bench -c "SELECT count(outbox.enqueue('bench.drain.$1', jsonb_build_object('orderId', g, 'amount', 99.5), key => (g % 1000)::text)) FROM generate_series(1, $per) g" >/dev/null &
        pids+=($!)
    done
    wait "${pids[@]}"
    before=$(for p in 0 1 2 3; do kcat -C -b "$bootstrap" -t "bench.drain.$1" -p "$p" -o -1 -e -q -f '%o\n' 2>/dev/null | tail -1; done | awk '{s += $1 + 1} END {print s + 0}')
    t0=$(date +%s%N)
    set_relay bench
    wpid=$(psql -d bench -Atc 'SELECT worker_pid FROM outbox.status')
    c0=$(cpu_ticks "$wpid")
    if [ -n "${BENCH_PROFILE:-}" ]; then
        perf record -q -F 2999 -g -p "$wpid" -o "$work/perf.drain.$1" 2>/dev/null &
        profiler=$!
    fi
    for _ in $(seq 2000); do
        [ "$(psql -d bench -Atc "SELECT coalesce(events_published, 0) > 0 FROM outbox.status")" = t ] && break
        sleep 0.01
    done
    t1=$(date +%s%N)
    wait_drained
    t2=$(date +%s%N)
    c1=$(cpu_ticks "$wpid")
    if [ -n "$profiler" ]; then kill -INT "$profiler"; wait "$profiler" || true; fi
    # the read floor: the database reads the same events in id order, the
    # columns the relay sends, and nothing else (after the drain: the
    # events are still there until a rotation, and the relay's first read
    # paid for setting their hint bits)
    local r0 r1 copied
    r0=$(date +%s%N)
    psql -d bench -c "COPY (SELECT id, topic, key, payload, headers, created_at, event_uuid FROM outbox.event WHERE topic = 'bench.drain.$1' ORDER BY id) TO '/dev/null'"
    r1=$(date +%s%N)
    copied=$(psql -d bench -Atc "SELECT count(*) FROM outbox.event WHERE topic = 'bench.drain.$1'")
    after=$(for p in 0 1 2 3; do kcat -C -b "$bootstrap" -t "bench.drain.$1" -p "$p" -o -1 -e -q -f '%o\n' 2>/dev/null | tail -1; done | awk '{s += $1 + 1} END {print s + 0}')
    total_ms=$(( (t2 - t0) / 1000000 ))
    ms=$(( (t2 - t1) / 1000000 ))
    # the floor: a bare librdkafka producer sends as many messages, no database
    create_topic "bench.drain.floor.$1" 4
    "$work/floor_producer" "$bootstrap" "bench.drain.floor.$1" backlog $(( per * 4 )) >"$work/floor.out"
    echo "| broker | events | messages added to the topic (high watermarks) | s, relay start to first ack | s, first ack to empty backlog | s in all | events/s (drain) | CPU s (worker, all threads, from its start) |"
    echo "|---|---|---|---|---|---|---|---|"
    echo "| $1 | $(( per * 4 )) | $(( after - before )) | $(awk -v m="$(( total_ms - ms ))" 'BEGIN{printf "%.2f", m/1000}') | $(awk -v m="$ms" 'BEGIN{printf "%.2f", m/1000}') | $(awk -v m="$total_ms" 'BEGIN{printf "%.2f", m/1000}') | $(( per * 4 * 1000 / ms )) | $(ticks_s $((c1 - c0))) |"
    sed -n 's/^messages=\([0-9]*\) seconds=\([0-9.]*\) cpu_s=\([0-9.]*\).*/| floor: a bare librdkafka producer sends as many messages (no database) | \1 | | | | \2 | | \3 |/p' "$work/floor.out"
    echo "| read floor: the database alone reads the same events in id order (COPY ... ORDER BY id TO '/dev/null', no Kafka) | ${copied:-?} | | | | $(awk -v n="$(( (r1 - r0) / 1000000 ))" 'BEGIN{printf "%.2f", n/1000}') | | |"
    echo
    if [ -n "$profiler" ]; then
        echo "Where the worker's CPU went during the drain (perf record -g of all its threads, which also slows it):"
        echo
        perf_summary "$work/perf.drain.$1"
        echo
        [ -z "${BENCH_PROFILE_DIR:-}" ] || cp "$work/perf.drain.$1" "$BENCH_PROFILE_DIR"/
    fi
}

for b in $brokers; do
    [ "$b" = kafka ] && [ -z "$kafka_bootstrap" ] && continue
    use_broker "$b"
    if wants latency; then latency_runs "$b"; fi
    if wants drain; then drain_run "$b"; fi
done
use_broker mock

if wants bloat; then
    echo "## Storage under sustained load with an old snapshot held (${bloat_seconds}s at $rate ev/s, rotation_interval 10s)"
    echo
    psql -d postgres -c "ALTER SYSTEM SET outbox_kafka.rotation_interval = '10s'" -c "SELECT pg_reload_conf()" >/dev/null
    cat >"$work/load.sql" <<'EOF'
SELECT outbox.enqueue('bench.load', '{"orderId": 42, "amount": 99.5}'::jsonb, key => (random()*1000)::int::text);
EOF
    chown "$run_user" "$work/load.sql"
    size_q="SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) || ' / ' || coalesce(sum(s.n_dead_tup), 0) FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relnamespace = 'outbox'::regnamespace AND c.relkind = 'r'"
    # a long report query: REPEATABLE READ snapshot held for the whole run
    psql -d bench -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM pg_class" \
         -c "SELECT pg_sleep($bloat_seconds + 15)" -c "COMMIT" >/dev/null 2>&1 &
    echo "| elapsed s | outbox tables: total size / dead tuples |"
    echo "|---|---|"
    echo "| 0 | $(psql -d bench -Atc "$size_q") |"
    pgbench -n -f "$work/load.sql" -R "$rate" -T "$bloat_seconds" -c 4 -j 2 bench >/dev/null 2>&1 &
    lpid=$!
    step=$(( bloat_seconds / 4 ))
    for i in 1 2 3 4; do
        sleep "$step"
        echo "| $(( i * step )) | $(psql -d bench -Atc "$size_q") |"
    done
    wait "$lpid" || true
    echo
fi
