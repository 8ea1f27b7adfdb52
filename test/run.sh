#!/usr/bin/env bash
# test/run.sh: install what is missing, build, install, and run the whole
# test suite of outbox_kafka (pg_regress, isolation, TAP end-to-end).
#
# Usage, on a fresh Debian 12 machine, as root:  bash test/run.sh
# Servers never run as root: the tests run as the unprivileged user
# $OUTBOX_TEST_USER (default postgres) on a private copy of the tree.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
test_user=${OUTBOX_TEST_USER:-postgres}
# shellcheck source=test/install_deps.sh
source "$here/test/install_deps.sh"

install_deps
fetch_promtool

# PG_CONFIG picks the PostgreSQL to build and test against (default: 15);
# RDKAFKA_PREFIX the librdkafka (default: the system's; test/librdkafka.sh
# builds others).  Both reach every make, and the tests (test 012 builds
# against the same librdkafka).
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG=$pg_config
export RDKAFKA_PREFIX=${RDKAFKA_PREFIX:-}
echo "== build and install"
make -C "$here" -s PG_CONFIG="$pg_config" clean >/dev/null
build_and_install "$here"
# the librdkafka the server will load with the extension, by the dynamic
# linker's own search (the relay logs the same at start)
rdkafka_so=$(ldd "$("$pg_config" --pkglibdir)/outbox_kafka.so" | awk '/librdkafka\.so/ {print $3}')
echo "== the relay runs librdkafka $("$here/test/kafka/kafka_admin" version) ($rdkafka_so)"

# A private copy the test user owns: pg_regress and the TAP tests write
# their temporary instances and results next to the tests.
work=$(mktemp -d /tmp/outbox_kafka_test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -a "$here/." "$work/"
# examples/nestjs-orders: Node.js dependencies from its package-lock.json,
# for test/t/050_nestjs_orders.pl, which runs the example's `npm test`
if [ -z "${OUTBOX_TESTS:-}" ] || [[ $OUTBOX_TESTS == *050_nestjs* ]]; then
    echo "== npm ci (examples/nestjs-orders)"
    npm ci --prefix "$work/examples/nestjs-orders" --no-audit --no-fund --loglevel=error
fi
chown -R "$test_user" "$work"

echo "== tests (as $test_user)"
status=0
# OUTBOX_TESTS="test/t/001_publish.pl ..." runs only those TAP files (for
# developers; CI and the README run everything)
only=()
if [ -n "${OUTBOX_TESTS:-}" ]; then
    only=(REGRESS= ISOLATION= "PROVE_TESTS=$OUTBOX_TESTS")
fi
as_user "$test_user" make -C "$work" -s PG_CONFIG="$pg_config" "${only[@]}" installcheck 2>&1 |
    tee "$work/installcheck.log" || status=$?

if [ "$status" -ne 0 ]; then
    for f in "$work"/test/regression.diffs "$work"/test/output_iso/regression.diffs; do
        [ -s "$f" ] && { echo "== $f"; cat "$f"; }
    done
    for f in "$work"/tmp_check/log/*; do
        [ -f "$f" ] && { echo "== $f (last 60 lines)"; tail -n 60 "$f"; }
    done
    echo "== test suite FAILED"
    exit "$status"
fi
# one closing line for CI: pg_regress and isolation tests, plus TAP assertions
# (pg_regress prints "All N tests passed." up to PG 15, "# All N ..." since 16)
sql_tests=$(sed -n 's/^[# ]*All \([0-9]*\) tests passed.*/\1/p' "$work/installcheck.log" | awk '{s += $1} END {print s + 0}')
tap_tests=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$work/installcheck.log")
echo "== test suite passed"
echo "$(( sql_tests + ${tap_tests:-0} )) passed, 0 failed"
