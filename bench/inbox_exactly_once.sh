#!/usr/bin/env bash
# bench/inbox_exactly_once.sh: the inbox's exactly-once effects under
# faults, on Apache Kafka 4.4.0 (one KRaft node on loopback), at scale.
# It runs test/t/115_inbox_exactly_once_real.pl -- the suite's test, whose
# header says what it does -- in its long mode: BENCH_EO_N keyed messages
# (default 1 000 000) over BENCH_EO_KEYS keys (1 000), each carrying its
# per-key sequence number, produced at BENCH_EO_RATE a second (5 000; 0 =
# as fast as the producer can) with about 3.4 % copies injected (the same
# outbox-event-id header), while two databases apply them and, in
# BENCH_EO_CYCLES rounds (5), the inbox worker is SIGKILLed, the server
# stopped in immediate mode and the broker killed with kill -9, each then
# restarted.  Batches of BENCH_EO_BATCH (1 000).
#
# Prints the test's summary (missing, doubled, out-of-order effects per
# database, faults injected, times) with the load and the command; exits
# non-zero on any violation.  Needs root, like test/run.sh; PG_CONFIG
# picks the PostgreSQL.  The floor of this benchmark is the expectation
# itself: 0 missing, 0 doubled, 0 out of order.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export INBOX_EO_N=${BENCH_EO_N:-1000000}
export INBOX_EO_KEYS=${BENCH_EO_KEYS:-1000}
export INBOX_EO_RATE=${BENCH_EO_RATE:-5000}
export INBOX_EO_CYCLES=${BENCH_EO_CYCLES:-5}
export INBOX_EO_BATCH=${BENCH_EO_BATCH:-1000}
log=$(mktemp /tmp/outbox_kafka_eo_bench.XXXXXX)
echo "load before: $(uptime)"
t0=$(date +%s)
status=0
OUTBOX_TESTS=test/t/115_inbox_exactly_once_real.pl bash "$here/test/run.sh" >"$log" 2>&1 || status=$?
t1=$(date +%s)
echo "load after:  $(uptime)"
echo "$(date -u +%F) on $(nproc) cores, command: \`${PG_CONFIG:+PG_CONFIG=$PG_CONFIG }BENCH_EO_N=$INBOX_EO_N BENCH_EO_KEYS=$INBOX_EO_KEYS BENCH_EO_RATE=$INBOX_EO_RATE BENCH_EO_CYCLES=$INBOX_EO_CYCLES BENCH_EO_BATCH=$INBOX_EO_BATCH bash bench/inbox_exactly_once.sh\`, $((t1 - t0)) s in all (build, broker start, run, checks)"
grep -o 'exactly-once summary: .*' "$log" || echo "no summary: the run did not finish"
grep -E '^(not ok|Result:|Files=)' "$log" || true
if [ "$status" -ne 0 ]; then
    echo "FAILED (exit $status); the whole log: $log"
    exit "$status"
fi
rm -f "$log"
