#!/usr/bin/env bash
# bench/tradeoff.sh: the relay's latency against its CPU per event for
# several librdkafka linger.ms settings (the relay gathers commits for
# linger.ms between chunks), each beside its floors from the same run, on
# the mock broker: the trade-off curve of issue 19 ("the latency and CPU
# targets pull against each other").  For each setting it runs
#
#   bench/relay_cost.sh   relay CPU per event at 200 and 2 000 ev/s, and
#                         the CPU floor: a bare producer with the same
#                         linger.ms;
#   bench/run.sh latency  commit to consumer p50/p99 at the same rates, and
#                         the latency floor (a bare producer, linger.ms=0,
#                         plus one commit fsync);
#
# and prints one table.  BENCH_LINGERS (default "0 1 2 5"), BENCH_SECONDS
# (default 10).  Needs root, like the scripts it runs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
lingers=${BENCH_LINGERS:-0 1 2 5}
export BENCH_SECONDS=${BENCH_SECONDS:-10}
out=$(mktemp -d /tmp/outbox_kafka_tradeoff.XXXXXX)
trap 'rm -rf "$out"' EXIT

# cell FILE RATE COLUMN: column COLUMN of the Markdown row of FILE whose
# first cell is RATE (the relay cost table)
cell() { awk -F'|' -v r="$2" -v c="$3" '$2 + 0 == r && $2 ~ /[0-9]/ {gsub(/ /, "", $(c + 1)); print $(c + 1); exit}' "$1"; }
# against RATE FILE: "relay p50 / p99 | floor p50 / p99" of the latency summary
against() { awk -F'|' -v r="$1" '$3 + 0 == r && $2 ~ /mock/ && NF == 7 {printf "%s|%s", $4, $5; exit}' "$2"; }

echo "# The relay's latency against its CPU per event, by linger.ms ($(date -u +%F), $(nproc) cores, mock broker; command: \`bash bench/tradeoff.sh\`)"
echo
echo "| linger.ms | relay CPU µs/event at 200 / 2 000 ev/s | CPU floor (bare producer, same linger.ms) | relay p50 / p99 ms at 200 ev/s | latency floor at 200 | relay p50 / p99 ms at 2 000 ev/s | latency floor at 2 000 |"
echo "|---|---|---|---|---|---|---|"
for l in $lingers; do
    BENCH_PRODUCER_PROPERTIES="linger.ms=$l" FLOOR_LINGER_MS=$l SECONDS_PER_RATE=$BENCH_SECONDS \
        bash "$here/bench/relay_cost.sh" >"$out/cost.$l" 2>"$out/cost.$l.err"
    BENCH_PRODUCER_PROPERTIES="linger.ms=$l" BENCH_BROKERS=mock BENCH_LATENCY_RATES="200 2000" \
        bash "$here/bench/run.sh" latency >"$out/latency.$l" 2>"$out/latency.$l.err"
    # the relay table has the rate in column 1 and µs per event in 4; the
    # floor table the rate in 1 and µs per message in 4
    relay200=$(grep -m1 -A4 '^| rate (ev/s) | events' "$out/cost.$l" | cell /dev/stdin 200 4)
    relay2000=$(grep -m1 -A4 '^| rate (ev/s) | events' "$out/cost.$l" | cell /dev/stdin 2000 4)
    floor200=$(grep -m1 -A4 '^| rate (msg/s)' "$out/cost.$l" | cell /dev/stdin 200 4)
    floor2000=$(grep -m1 -A4 '^| rate (msg/s)' "$out/cost.$l" | cell /dev/stdin 2000 4)
    echo "| $l | $relay200 / $relay2000 | $floor200 / $floor2000 | $(against 200 "$out/latency.$l") | $(against 2000 "$out/latency.$l") |"
done
