#!/usr/bin/env bash
# bench/inbox_latency.sh: produce -> effect committed, for the inbox
# (docs/inbox.md) against its floor, measured in one run on this machine,
# on a single-node Apache Kafka (test/kafka) on loopback, 8 partitions.
#
# bench/floor_producer.c sends BENCH_LATENCY_RATE (default 2000) messages
# per second for BENCH_LATENCY_SECONDS (default 20), each a JSON object
# {"t": <wall-clock time just before rd_kafka_producev>} (the time
# librdkafka also stamps as the message's CreateTime, in microseconds
# rather than milliseconds), keys among 1000.  Consumers, each running
# while the messages are produced, into a database of its own:
#
#   floor  bench/inbox_floor.c: a bare librdkafka consumer that COPYs what
#          is ready into a table and stores one offset row per partition,
#          in one transaction per batch; consuming (a first message
#          committed) before the producer starts, as the inbox is;
#   inbox  outbox.subscribe with a PL/pgSQL handler doing one INSERT per
#          message;
#   poison (BENCH_LATENCY_POISON=1) the inbox again, with a handler that
#          fails on one message of partition 0, a second into the run
#          (retried with back-off, then dead-lettered after max_attempts,
#          5): the other partitions' latency meanwhile.
#
# Latency of a message = pg_xact_commit_timestamp(xmin) of its effect row
# (track_commit_timestamp = on) - its "t": the same machine's clock.
# synchronous_commit = on, a CHECKPOINT before each case.  Prints p50, p99 and max in ms, and the ratio
# to the floor; then each split in two: produce -> out of the floor's
# rd_kafka_consumer_poll() (its column r) or into the inbox's handler (a
# clock_timestamp() default of the effect row), and from there -> committed.  Needs root (installs what is missing, runs the server as
# $OUTBOX_TEST_USER); PG_CONFIG picks the PostgreSQL.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
run_user=${OUTBOX_TEST_USER:-postgres}
rate=${BENCH_LATENCY_RATE:-2000}
seconds=${BENCH_LATENCY_SECONDS:-20}
poison=${BENCH_LATENCY_POISON:-0}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pgbin=$("$PG_CONFIG" --bindir)
# shellcheck source=bench/inbox_common.sh
source "$here/bench/inbox_common.sh"
inbox_bench_setup inbox_latency
build_rdkafka_program "$work/floor_producer" "$here/bench/floor_producer.c"

start_real_broker "$work" lat.warm:8 lat.floor:8 lat.inbox:8 lat.poison:8 >&2
start_throwaway_server "$work" "inbox" "$bootstrap" "synchronous_commit = on
track_commit_timestamp = on
max_wal_size = '8GB'
checkpoint_timeout = '1h'
log_checkpoints = on
max_worker_processes = 16"
psql_() { as_user "$run_user" "$pgbin/psql" -h "$work" -p "$port" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
total=$(( rate * seconds ))

# percentiles DB TABLE WHERE [FROM [TO]]: p50|p99|max in ms of TO (default:
# the row's commit time) minus FROM (default: its "t"), and the row count,
# the warm-up messages ("t": 0) left out
t_col="(v ->> 't')::float8"
commit_col="extract(epoch FROM pg_xact_commit_timestamp(xmin))"
percentiles() {
    local from=${4:-$t_col} to=${5:-$commit_col}
    psql_ -d "$1" -c "
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY l)::numeric, 1) || '|' ||
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY l)::numeric, 1) || '|' ||
       round(max(l)::numeric, 1) || '|' || count(*)
  FROM (SELECT 1000 * ($to - $from) AS l
          FROM $2 WHERE (v ->> 't')::float8 > 0 $3) s"
}

# checkpoints: how many have started so far; fresh: a CHECKPOINT (before
# each case, so that none pays for another's WAL), then remember the
# count; during NAME: say how many started since
checkpoints() { grep -c 'checkpoint starting' "$work/server.log" || true; }
fresh() { psql_ -d postgres -c CHECKPOINT; c0=$(checkpoints); }
during() { echo "$1: $(( $(checkpoints) - c0 )) checkpoints started during the case" >&2; }

# a broker just started (a JVM) answers slowly at first: warm it up at
# the same rate, else the floor, measured first, would pay for it
"$work/floor_producer" "$bootstrap" lat.warm "$rate" "$(( seconds < 10 ? seconds : 10 ))" >/dev/null

# the floor, consuming (a first message committed, as the inbox below)
# before the producer starts: else the messages sent while it connects,
# looks its offsets up and fetches for the first time, half a second,
# would be its p99
psql_ -d postgres -c 'CREATE DATABASE floor'
fresh
as_user "$run_user" "$work/inbox_floor" "$bootstrap" lat.floor 8 $(( total + 2 )) 1000 \
    "host=$work port=$port dbname=floor" >"$work/floor.out" &
floor_pid=$!
echo '{"t": 0}' | kcat -P -b "$bootstrap" -t lat.floor -p 1
until [ "$(psql_ -d floor -c "SELECT to_regclass('floor_offset') IS NOT NULL")" = t ] &&
      [ "$(psql_ -d floor -c 'SELECT count(*) FROM floor_offset')" != 0 ]; do sleep 0.05; done
"$work/floor_producer" "$bootstrap" lat.floor "$rate" "$seconds" >/dev/null
wait "$floor_pid"
during floor
floor=$(percentiles floor floor_msg '')
# the two parts: produce -> out of rd_kafka_consumer_poll(), then -> committed
floor_kafka=$(percentiles floor floor_msg '' "$t_col" r)
floor_db=$(percentiles floor floor_msg '' r)

# the inbox: subscribed and applying (a first message applied) before the
# producer starts
psql_ -d postgres -c 'CREATE DATABASE inbox'
psql_ -d inbox <<'SQL'
CREATE EXTENSION outbox_kafka;
CREATE TABLE effect (p int, o bigint, v jsonb, h float8 DEFAULT extract(epoch FROM clock_timestamp()));
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO effect VALUES (m."partition", m."offset", convert_from(m.value, 'UTF8')::jsonb);
END
$$;
SQL
# inbox_run TOPIC HANDLER: subscribe, warm up, produce, wait for every
# message but those of partition 0 if it is poisoned
inbox_run() {
    local topic=$1 handler=$2 expect=$3 applied
    # the offsets table, not inbox_status: cheaper to poll
    applied="SELECT coalesce(sum(applied), 0) FROM outbox.inbox_offset WHERE subscription = '$topic'"
    psql_ -d inbox -c "SELECT outbox.subscribe('$topic', '$topic', '$handler')" >/dev/null
    echo '{"t": 0}' | kcat -P -b "$bootstrap" -t "$topic" -p 1
    while [ "$(psql_ -d inbox -c "$applied")" = 0 ]; do sleep 0.05; done
    fresh
    "$work/floor_producer" "$bootstrap" "$topic" "$rate" "$seconds" >/dev/null
    while [ "$(psql_ -d inbox -c "$applied")" -lt "$expect" ]; do sleep 0.5; done
    during "$topic"
}
inbox_run lat.inbox 'apply(outbox.inbox_message)' $(( total + 2 ))
inbox=$(percentiles inbox effect "AND o IS NOT NULL")
inbox_kafka=$(percentiles inbox effect "AND o IS NOT NULL" "$t_col" h)
inbox_db=$(percentiles inbox effect "AND o IS NOT NULL" h)
ratio() { echo "scale=2; $1 / $2" | bc; }
f50=$(cut -d'|' -f1 <<<"$floor"); f99=$(cut -d'|' -f2 <<<"$floor")
i50=$(cut -d'|' -f1 <<<"$inbox"); i99=$(cut -d'|' -f2 <<<"$inbox")

if [ "$poison" = 1 ]; then
    psql_ -d inbox -c 'TRUNCATE effect'
    # the message of partition 0 a second into the run (of 8) fails; the
    # rest is applied
    psql_ -d inbox <<SQL
CREATE FUNCTION apply_or_fail(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS \$\$
BEGIN
    IF m."partition" = 0 AND m."offset" = $(( rate / 8 )) THEN
        RAISE EXCEPTION 'poison message at offset %', m."offset";
    END IF;
    INSERT INTO effect VALUES (m."partition", m."offset", convert_from(m.value, 'UTF8')::jsonb);
END
\$\$;
SQL
    inbox_run lat.poison 'apply_or_fail(outbox.inbox_message)' $(( total + 1 ))
    [ "$(psql_ -d inbox -c 'SELECT count(*) FROM outbox.inbox_dead_letter')" = 1 ] ||
        { echo "no dead letter" >&2; exit 1; }
    pois=$(percentiles inbox effect "AND p <> 0")
fi

echo "$(date -u +%F) on $(nproc) cores, PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), librdkafka $(psql_ -d inbox -c 'SELECT outbox.librdkafka_version()'), Apache Kafka $(bash "$here/test/kafka/kafka.sh" version) (one KRaft node); $rate msg/s for $seconds s, 8 partitions, synchronous_commit = on, a CHECKPOINT before each case; produce -> effect committed; command: \`${PG_CONFIG:+PG_CONFIG=$PG_CONFIG }BENCH_LATENCY_POISON=$poison bash bench/inbox_latency.sh\`"
echo
echo "| what | p50 ms | p99 ms | max ms | messages | p50, p99 of the floor |"
echo "|---|---|---|---|---|---|"
echo "| floor: bare consumer, COPY + one offset row per partition per batch | ${floor//|/ | } | 1.00, 1.00 |"
echo "| inbox, per-message PL/pgSQL handler (one INSERT) | ${inbox//|/ | } | $(ratio "$i50" "$f50"), $(ratio "$i99" "$f99") |"
echo "| floor, produce -> out of the consumer's poll | ${floor_kafka//|/ | } | |"
echo "| floor, out of the poll -> committed | ${floor_db//|/ | } | |"
echo "| inbox, produce -> in the handler | ${inbox_kafka//|/ | } | |"
echo "| inbox, in the handler -> committed | ${inbox_db//|/ | } | |"
if [ "$poison" = 1 ]; then
    p50=$(cut -d'|' -f1 <<<"$pois"); p99=$(cut -d'|' -f2 <<<"$pois")
    echo "| inbox, one poison message in partition 0 (dead-lettered after 5 attempts): the other 7 partitions | ${pois//|/ | } | $(ratio "$p50" "$f50"), $(ratio "$p99" "$f99") |"
fi
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
