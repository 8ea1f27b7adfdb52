#!/usr/bin/env bash
# bench/crash_duplicates.sh: the trade behind the relay's progress save
# interval (outbox_kafka.progress_save_interval, G4 in docs/reliability.md).
# For each interval it runs the relay with that setting and measures,
# against the mock broker at a steady enqueue rate (pgbench --rate):
#
#   - duplicates per SIGKILL of the relay worker (the postmaster then
#     crash-restarts every backend, as it does in production),
#   - duplicates per `pg_ctl restart -m immediate`,
#   - duplicates per SIGKILL of the worker with a slow broker (mock `rtt`),
#   - and, without faults, what saving costs: relay CPU per event (worker
#     process, all threads, from /proc), WAL per event (whole server),
#     relay_state saves per second (transaction ids of the relay: each save
#     is one) and commit-to-consumer latency.
#
# Every message is read back by test/mock_kafka/fs_consume; duplicates are
# messages minus distinct outbox-ids of a topic.  Each fault is counted on
# its own: load, fault, then wait until every committed event (recorded in
# the enqueuing transaction) has reached the consumer.  Rounds alternate the
# intervals (0 10 100 0 10 100 ...), so drifting load on the machine hits
# each alike.
#
#   bash bench/crash_duplicates.sh
#
# Needs root (installs what is missing, runs the servers as
# $OUTBOX_TEST_USER, default postgres; loopback and Unix sockets only).
# Settings: PG_CONFIG (default the system's PostgreSQL 15), RDKAFKA_PREFIX,
# SAVE_MS ("0 10 100"), ROUNDS (2), RATE (2000 events/s), CLIENTS (4),
# KILLS (5 per round), RESTARTS (3 per round), RTT_MS (200; 0 skips that
# part), RTT_KILLS (3 per round), COST_SECONDS (20), LOAD_MS (load before
# each fault, 2000 plus up to 2 s at random; at RTT_MS twice as long).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
run_user=${OUTBOX_TEST_USER:-postgres}
save_ms_list=${SAVE_MS:-0 10 100}
rounds=${ROUNDS:-2}
rate=${RATE:-2000}
clients=${CLIENTS:-4}
kills=${KILLS:-5}
restarts=${RESTARTS:-3}
rtt_ms=${RTT_MS:-200}
rtt_kills=${RTT_KILLS:-3}
cost_secs=${COST_SECONDS:-20}
load_ms=${LOAD_MS:-2000}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
rdk=(RDKAFKA_PREFIX="${RDKAFKA_PREFIX:-}")
# shellcheck source=test/install_deps.sh
source "$here/test/install_deps.sh"
install_deps
pgbin=$("$PG_CONFIG" --bindir)
make -C "$here/test/mock_kafka" -s -B "${rdk[@]}"

work=$(mktemp -d /tmp/outbox_kafka_dup.XXXXXX)
chown "$run_user" "$work"
results=$work/results    # lines: SAVE_MS KIND VALUE
: >"$results"
run=    # the directory of the current run: server, broker, consumer
mock_pid=
consumer_pid=
cleanup() {
    set +e
    stop_run
    rm -rf "$work"
}
trap cleanup EXIT

die() { echo "crash_duplicates.sh: $*" >&2; exit 1; }

psql() { as_user "$run_user" "$pgbin/psql" -X -q -h "$run" -p "$port" -U postgres -d postgres "$@"; }

# mock_cmd COMMAND: send COMMAND to this run's mock broker, wait for OK
mock_cmd() { mock_command "$run" "$1" || die "mock broker refused: $1"; }

# start_run SAVE_MS ROUND: a mock broker, a consumer of every topic, and a
# new server running the relay with progress_save_interval = SAVE_MS
start_run() {
    run=$work/run-$1-$2
    mkdir -p "$run"
    chown "$run_user" "$run"
    start_mock_broker "$run" --brokers 1 --topic dup.cost:4 --topic dup.kill:4 \
        --topic dup.immediate:4 --topic dup.rtt:4
    # fs_consume stops at EOF on stdin: hold a FIFO open for it
    mkfifo "$run/consumer.in"
    "$here/test/mock_kafka/fs_consume" -b "$bootstrap" -t dup.cost -t dup.kill \
        -t dup.immediate -t dup.rtt <"$run/consumer.in" >"$run/consumed" 2>"$run/consumer.err" &
    consumer_pid=$!
    exec {consumer_in}>"$run/consumer.in"
    start_throwaway_server "$run" postgres "$bootstrap" "shared_buffers = '256MB'
restart_after_crash = on
outbox_kafka.progress_save_interval = '${1}ms'"
    psql -c 'CREATE EXTENSION outbox_kafka' \
        -c 'CREATE TABLE committed (id bigint PRIMARY KEY, topic text NOT NULL)' >/dev/null
    # one script per topic: cost is the bare enqueue (as in relay_cost.sh),
    # the fault topics record what committed in the same transaction
    local t
    cat >"$run/cost.sql" <<'SQL'
SELECT outbox.enqueue('dup.cost', jsonb_build_object('t', (extract(epoch FROM clock_timestamp()) * 1e6)::bigint), key => (random() * 1000)::int::text);
SQL
    for t in kill immediate rtt; do
        cat >"$run/$t.sql" <<SQL
INSERT INTO committed SELECT outbox.enqueue('dup.$t', '{"orderId": 42, "amount": 99.5}'::jsonb, key => (random() * 1000)::int::text), 'dup.$t';
SQL
    done
    chmod a+r "$run"/*.sql
}

stop_run() {
    [ -n "$run" ] || return 0
    [ -f "$run/data/postmaster.pid" ] &&
        as_user "$run_user" "$pgbin/pg_ctl" -D "$run/data" -m fast -w stop >/dev/null 2>&1
    if [ -n "$consumer_pid" ]; then
        exec {consumer_in}>&-
        wait "$consumer_pid" 2>/dev/null
        consumer_pid=
    fi
    if [ -n "$mock_pid" ]; then
        kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
        mock_pid=
    fi
    return 0
}

# consumed TOPIC: "messages distinct-outbox-ids" the consumer has seen
consumed() {
    awk -v t="$1" '$1 == "M" && $3 == t {n++; if (!seen[$6]++) d++}
        END {print n + 0, d + 0}' "$run/consumed"
}

# wait_delivered TOPIC: until every committed event of TOPIC has reached
# the consumer (deadline 120 s: a miss is a lost event, which G1 forbids)
wait_delivered() {
    local want have
    want=$(psql -Atc "SELECT count(*) FROM committed WHERE topic = '$1'")
    for _ in $(seq 2400); do
        have=$(consumed "$1")
        [ "${have#* }" -ge "$want" ] && return 0
        sleep 0.05
    done
    die "$1: ${have#* } of $want committed events reached the consumer in 120 s"
}

# wait_server: until the server accepts connections again (deadline 60 s)
wait_server() {
    for _ in $(seq 1200); do
        psql -Atc 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    die "the server did not come back"
}

# worker_pid: the relay's process; checked by its title before a kill
worker_pid() {
    local pid
    for _ in $(seq 1000); do
        pid=$(psql -Atc 'SELECT worker_pid FROM outbox.status' 2>/dev/null || true)
        [ -n "$pid" ] && grep -q 'outbox_kafka worker' "/proc/$pid/cmdline" 2>/dev/null && {
            echo "$pid"; return 0; }
        sleep 0.01
    done
    die "no outbox_kafka worker"
}

# fault SAVE_MS KIND TOPIC ACTION WINDOW_MS: enqueue at the rate for
# WINDOW_MS, do ACTION (kill or immediate), wait until every committed event
# is delivered, record the duplicates that fault added
fault() {
    local n=$1 kind=$2 topic=$3 action=$4 window=$5 before after pgb pid
    before=$(consumed "$topic")
    as_user "$run_user" "$pgbin/pgbench" -n -h "$run" -p "$port" -U postgres \
        -f "$run/${topic#dup.}.sql" -R "$rate" -T 600 -c "$clients" -j 2 postgres \
        >>"$run/pgbench.log" 2>&1 &
    pgb=$!
    sleep "$(echo "scale=3; ($window + $RANDOM % $window) / 1000" | bc)"    # the load before the fault
    case $action in
    kill)
        pid=$(worker_pid)
        kill -9 "$pid"
        ;;
    immediate)
        as_user "$run_user" "$pgbin/pg_ctl" -D "$run/data" -l "$run/server.log" -m immediate -w restart >/dev/null
        ;;
    esac
    wait "$pgb" || true    # its sessions end with the server's
    wait_server
    wait_delivered "$topic"
    after=$(consumed "$topic")
    echo "$n $kind $(( (${after% *} - ${after#* }) - (${before% *} - ${before#* }) ))" >>"$results"
}

# cost SAVE_MS: no faults, COST_SECONDS at the rate: relay CPU, WAL, saves
cost() {
    local n=$1 pid hz seq0 lsn0 x0 c0 c1 events xids wal lat
    pid=$(worker_pid)
    hz=$(getconf CLK_TCK)
    psql -c 'CHECKPOINT' >/dev/null    # the same full-page writes in every run
    seq0=$(psql -Atc 'SELECT last_value FROM outbox.event_id_seq')
    lsn0=$(psql -Atc 'SELECT pg_current_wal_lsn()')
    x0=$(psql -Atc 'SELECT pg_current_xact_id()')
    c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    as_user "$run_user" "$pgbin/pgbench" -n -h "$run" -p "$port" -U postgres \
        -f "$run/cost.sql" -R "$rate" -T "$cost_secs" -c "$clients" -j 2 postgres >>"$run/pgbench.log" 2>&1
    events=$(( $(psql -Atc 'SELECT last_value FROM outbox.event_id_seq') - seq0 ))
    # until the consumer has every event and the relay has saved its progress
    for _ in $(seq 2400); do
        have=$(consumed dup.cost)
        [ "${have#* }" -ge "$events" ] &&
            [ "$(psql -Atc 'SELECT pending_events = 0 FROM outbox.status')" = t ] && break
        sleep 0.05
    done
    [ "${have#* }" -ge "$events" ] || die "dup.cost: ${have#* } of $events events delivered"
    c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    # every enqueue used a transaction id, and so did this script's two calls
    xids=$(( $(psql -Atc 'SELECT pg_current_xact_id()') - x0 - events - 1 ))
    wal=$(psql -Atc "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0')")
    lat=$(awk '$1 == "M" && $3 == "dup.cost" && match($0, /"t": [0-9]+/) {
            print $2 - substr($0, RSTART + 5, RLENGTH - 5)}' "$run/consumed" | sort -n |
        awk '{v[NR] = $1} END {printf "%.2f/%.2f", v[int(NR * 0.5) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000}')
    {
        echo "$n events $events"
        echo "$n cpu_us $(echo "scale=1; ($c1 - $c0) * 1000000 / $hz / $events" | bc)"
        echo "$n wal_b $(( ${wal%.*} / events ))"
        echo "$n saves_s $(echo "scale=1; $xids / $cost_secs" | bc)"
        echo "$n latency $lat"
    } >>"$results"
}

build_and_install "$here"
for r in $(seq "$rounds"); do
    for n in $save_ms_list; do
        echo "== round $r, progress_save_interval = ${n}ms" >&2
        start_run "$n" "$r"
        cost "$n"
        for _ in $(seq "$kills"); do fault "$n" kill dup.kill kill "$load_ms"; done
        for _ in $(seq "$restarts"); do fault "$n" immediate dup.immediate immediate "$load_ms"; done
        if [ "$rtt_ms" -gt 0 ]; then
            mock_cmd "rtt all $rtt_ms"
            for _ in $(seq "$rtt_kills"); do fault "$n" rtt dup.rtt kill $((2 * load_ms)); done
            mock_cmd "rtt all 0"
        fi
        stop_run
        run=
    done
done

# stats SAVE_MS KIND: "min / median / max (count)" of the values recorded
stats() {
    awk -v n="$1" -v k="$2" '$1 == n && $2 == k {print $3}' "$results" | sort -n |
        awk '{v[NR] = $1} END {
            if (NR == 0) {print "-"; exit}
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%s / %s / %s (%d)", v[1], m, v[NR], NR}'
}
# runs SAVE_MS KIND: the values of each run, comma-separated
runs() { awk -v n="$1" -v k="$2" '$1 == n && $2 == k {printf "%s%s", sep, $3; sep = ", "}' "$results"; }

echo "# Duplicates per crash against the progress save interval, $(date -u +%F), $(nproc) cores, mock broker"
echo
echo "Command: \`bash bench/crash_duplicates.sh\` (SAVE_MS=\"$save_ms_list\" ROUNDS=$rounds RATE=$rate CLIENTS=$clients KILLS=$kills RESTARTS=$restarts RTT_MS=$rtt_ms RTT_KILLS=$rtt_kills COST_SECONDS=$cost_secs LOAD_MS=$load_ms), PostgreSQL $("$PG_CONFIG" --version | awk '{print $2}'), librdkafka $(dpkg-query -W -f='${Version}' librdkafka1 2>/dev/null || echo '?')"
echo
echo "Duplicates: messages minus distinct outbox-ids, per fault, min / median / max (faults). Cost: without faults, ${cost_secs} s at $rate ev/s, one value per run."
echo
rtt_head= rtt_sep=
[ "$rtt_ms" -gt 0 ] && rtt_head=" dup. per SIGKILL, ${rtt_ms} ms broker RTT |" rtt_sep="---|"
echo "| progress_save_interval (ms) | dup. per relay SIGKILL | dup. per \`restart -m immediate\` |$rtt_head relay CPU µs per event | WAL bytes per event | relay_state saves per s (the relay's transaction ids) | commit → consumer p50/p99 ms |"
echo "|---|---|---|$rtt_sep---|---|---|---|"
for n in $save_ms_list; do
    rtt_col=
    [ "$rtt_ms" -gt 0 ] && rtt_col=" $(stats "$n" rtt) |"
    echo "| $n | $(stats "$n" kill) | $(stats "$n" immediate) |$rtt_col $(runs "$n" cpu_us) | $(runs "$n" wal_b) | $(runs "$n" saves_s) | $(runs "$n" latency) |"
done
echo
echo "Each fault, in order:"
echo
for n in $save_ms_list; do
    rtt_col=
    [ "$rtt_ms" -gt 0 ] && rtt_col="; SIGKILL at ${rtt_ms} ms RTT $(runs "$n" rtt)"
    echo "- $n ms: SIGKILL $(runs "$n" kill); immediate $(runs "$n" immediate)$rtt_col"
done
