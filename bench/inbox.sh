#!/usr/bin/env bash
# bench/inbox.sh: throughput of the inbox (docs/inbox.md) against its floor,
# measured in one run on this machine, on a single-node Apache Kafka
# (test/kafka) on loopback: BENCH_INBOX_N (default 200000) messages of
# 1 KB JSON over 8 partitions, produced before either consumer starts, then
#
#   floor  bench/inbox_floor.c: a bare librdkafka consumer that COPYs the
#          messages into a table and stores one offset row per partition
#          per batch of BENCH_INBOX_BATCH (1000), in one transaction;
#   inbox  outbox.subscribe with a PL/pgSQL handler doing one INSERT per
#          message (outbox_kafka.inbox_batch_size = BENCH_INBOX_BATCH),
#          on_poison => BENCH_INBOX_ON_POISON (default dead_letter; with
#          hold_key each batch also reads the held keys);
#   batch  then, in the same database, a second subscription to the same
#          topic with a batch handler (outbox.inbox_message[]) doing one
#          INSERT ... SELECT FROM unnest($1) per batch,
#
# each after a CHECKPOINT, with max_wal_size large enough that none starts
# during a case (the third case would otherwise pay for the WAL of the
# first two: a checkpoint, and full-page images after it); the
# checkpoints that did start during each case are printed.
# All with synchronous_commit = on, the floor and the inbox each into a
# database of its own on the same server.  The inbox's rates are taken
# from the commit timestamps of its effects (track_commit_timestamp = on,
# for the floor too).  Prints a Markdown table (docs/benchmarks.md keeps
# the latest).  Needs root (installs what is missing, runs the server as
# $OUTBOX_TEST_USER); PG_CONFIG picks the PostgreSQL.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
run_user=${OUTBOX_TEST_USER:-postgres}
n=${BENCH_INBOX_N:-200000}
batch=${BENCH_INBOX_BATCH:-1000}
on_poison=${BENCH_INBOX_ON_POISON:-dead_letter}
topic=bench.inbox
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pgbin=$("$PG_CONFIG" --bindir)
# shellcheck source=bench/inbox_common.sh
source "$here/bench/inbox_common.sh"
inbox_bench_setup inbox_bench

start_real_broker "$work" "$topic:8" >&2
start_throwaway_server "$work" "inbox" "$bootstrap" "synchronous_commit = on
track_commit_timestamp = on
outbox_kafka.inbox_batch_size = $batch
max_wal_size = '8GB'
checkpoint_timeout = '1h'
log_checkpoints = on
max_worker_processes = 16"
psql_() { as_user "$run_user" "$pgbin/psql" -h "$work" -p "$port" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# the messages: 1 KB of JSON each, keys spread over the partitions
pad=$(head -c 940 /dev/zero | tr '\0' 'x')
awk -v n="$n" -v pad="$pad" 'BEGIN { for (i = 1; i <= n; i++)
    printf "k%d|{\"seq\": %d, \"orderId\": %d, \"pad\": \"%s\"}\n", i % 1000, i, i, pad }' >"$work/messages"
t=$(date +%s.%N)
kcat -P -b "$bootstrap" -t "$topic" -K '|' -X linger.ms=50 -X batch.num.messages=10000 -l "$work/messages"
echo "produced $n messages in $(echo "$(date +%s.%N) - $t" | bc) s" >&2

# checkpoints: how many have started so far (log_checkpoints is on)
checkpoints() { grep -c 'checkpoint starting' "$work/server.log" || true; }
# fresh: a CHECKPOINT, then remember the count
fresh() { psql_ -d postgres -c CHECKPOINT; c0=$(checkpoints); }
# during NAME: say how many checkpoints started since fresh
during() { echo "$1: $(( $(checkpoints) - c0 )) checkpoints started during the case" >&2; }

# the floor
psql_ -d postgres -c 'CREATE DATABASE floor'
fresh
floor=$(as_user "$run_user" "$work/inbox_floor" "$bootstrap" "$topic" 8 "$n" "$batch" \
    "host=$work port=$port dbname=floor")
floor_rate=$(sed -n 's/.*msg_per_s=\([0-9]*\).*/\1/p' <<<"$floor")
during floor

# the inbox: a per-message handler, then a batch handler
psql_ -d postgres -c 'CREATE DATABASE inbox'
psql_ -d inbox <<'SQL'
CREATE EXTENSION outbox_kafka;
CREATE TABLE effect (order_id bigint, key text, payload jsonb);
CREATE TABLE effect_batch (order_id bigint, key text, payload jsonb);
CREATE FUNCTION apply(m outbox.inbox_message) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO effect VALUES (m."offset", convert_from(m.key, 'UTF8'),
                               convert_from(m.value, 'UTF8')::jsonb);
END
$$;
CREATE FUNCTION apply_batch(ms outbox.inbox_message[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO effect_batch
    SELECT m."offset", convert_from(m.key, 'UTF8'), convert_from(m.value, 'UTF8')::jsonb
      FROM unnest(ms) m;
END
$$;
SQL
# rate SUBSCRIPTION HANDLER TABLE: subscribe, wait (polling the offsets
# table twice a second: a psql every few milliseconds would take CPU from
# the worker) until TABLE has every message, print the rate from the
# commit of the first batch to the commit of the last (commit timestamps:
# the worker notices a new subscription within a second, not counted)
rate() {
    local sub=$1 handler=$2 table=$3 applied
    applied="SELECT coalesce(sum(applied), 0) FROM outbox.inbox_offset WHERE subscription = '$sub'"
    psql_ -d inbox -c "SELECT outbox.subscribe('$sub', '$topic', '$handler', on_poison => '$on_poison')" >/dev/null
    while [ "$(psql_ -d inbox -c "$applied")" -lt "$n" ]; do sleep 0.5; done
    psql_ -d inbox -c "SELECT outbox.unsubscribe('$sub')" >/dev/null
    psql_ -d inbox -c "
WITH t AS (SELECT pg_xact_commit_timestamp(xmin) AS ts FROM $table),
     b AS (SELECT min(ts) AS t0, max(ts) AS t1, count(*) AS n FROM t)
SELECT CASE WHEN b.n <> $n THEN 'effects: ' || b.n
            ELSE round((SELECT count(*) FROM t WHERE ts > b.t0) /
                       extract(epoch FROM b.t1 - b.t0))::text END
  FROM b"
}
fresh
inbox_rate=$(rate bench 'apply(outbox.inbox_message)' effect)
during inbox
fresh
batch_rate=$(rate bench_batch 'apply_batch(outbox.inbox_message[])' effect_batch)
during batch
for r in "$inbox_rate" "$batch_rate"; do
    [[ $r =~ ^[0-9]+$ ]] || { echo "$r != $n" >&2; exit 1; }
done

echo "$(date -u +%F) on $(nproc) cores, PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), librdkafka $(psql_ -d inbox -c 'SELECT outbox.librdkafka_version()'), Apache Kafka $(bash "$here/test/kafka/kafka.sh" version) (one KRaft node); $n messages of 1 KB JSON, 8 partitions, batches of $batch, synchronous_commit = on, a CHECKPOINT before each case, on_poison = $on_poison; command: \`${PG_CONFIG:+PG_CONFIG=$PG_CONFIG }BENCH_INBOX_ON_POISON=$on_poison bash bench/inbox.sh\`"
echo
echo "| what | msg/s | of the floor |"
echo "|---|---|---|"
echo "| floor: bare consumer, COPY + one offset row per partition per batch | $floor_rate | 1.00 |"
echo "| inbox, per-message PL/pgSQL handler (one INSERT) | $inbox_rate | $(echo "scale=2; $inbox_rate / $floor_rate" | bc) |"
echo "| inbox, batch PL/pgSQL handler (one INSERT ... SELECT FROM unnest) | $batch_rate | $(echo "scale=2; $batch_rate / $floor_rate" | bc) |"
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
