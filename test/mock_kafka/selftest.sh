#!/usr/bin/env bash
#
# selftest.sh - quick self-test of the mock_kafka helper.
#
# Builds mock_kafka, runs it once as a coprocess (stdin/stdout protocol) and
# once in --control-fifo mode, produces/consumes 100 keyed messages with kcat
# and exercises the control commands.  Every step is bounded by a timeout and
# the whole script by an overall watchdog, so it never hangs.
#
# Usage: test/mock_kafka/selftest.sh        (exit status 0 on success)
#
set -u

# Re-run ourselves under an overall watchdog.
if [ -z "${MOCK_SELFTEST_INNER:-}" ]; then
	MOCK_SELFTEST_INNER=1 exec timeout -k 5 30 bash "$0" "$@"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
BIN="$HERE/mock_kafka"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mock_kafka_selftest.XXXXXX")
T=10			# per-step timeout in seconds
passed=0
failed=0
MOCK_PID_SAVED=""
BG_PID=""

# shellcheck disable=SC2317  # invoked via trap
cleanup()
{
	# Only ever signal the processes this script started.
	[ -n "$MOCK_PID_SAVED" ] && kill "$MOCK_PID_SAVED" 2>/dev/null
	[ -n "$BG_PID" ] && kill "$BG_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "not ok - $1${2:+: $2}"; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$3', got '$2'"; fi; }

# wait_exit PID: wait (bounded) for a child to exit and return its status;
# a child still running after $T seconds is killed and 124 returned.
wait_exit()
{
	timeout $T tail --pid="$1" -f /dev/null
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		return 124
	fi
	wait "$1"
}

finish()
{
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit $?
}

# --- build -----------------------------------------------------------------
if timeout $T make -s -C "$HERE" >"$TMP/build.log" 2>&1 && [ -x "$BIN" ]; then
	pass "build"
else
	fail "build" "$(cat "$TMP/build.log")"
	finish
fi

# --- coprocess (stdin/stdout) mode ------------------------------------------

# send CMD: write one command line to the coprocess and read its reply
# into $REPLY_LINE (empty on timeout/EOF).
send()
{
	REPLY_LINE=""
	echo "$1" >&"$TO_MOCK" || return 1
	IFS= read -r -t $T -u "$FROM_MOCK" REPLY_LINE
}

coproc MOCK { exec "$BIN" --topic t1:3 2>"$TMP/mock.err"; }
MOCK_PID_SAVED=$MOCK_PID
exec {TO_MOCK}>&"${MOCK[1]}" {FROM_MOCK}<&"${MOCK[0]}"

line=""
IFS= read -r -t $T -u "$FROM_MOCK" line
case "$line" in
	BOOTSTRAP=127.0.0.1:*) pass "bootstrap line ($line)" ;;
	*) fail "bootstrap line" "got '$line'; stderr: $(cat "$TMP/mock.err")"; finish ;;
esac
BS=${line#BOOTSTRAP=}

send "ping"; check "ping" "$REPLY_LINE" "OK"

for i in $(seq 1 100); do echo "key$i:value$i"; done >"$TMP/input"
if timeout $T kcat -P -b "$BS" -t t1 -K: -X enable.idempotence=true -X acks=all \
	<"$TMP/input" 2>"$TMP/produce.err"; then
	pass "produce 100 messages"
else
	fail "produce 100 messages" "$(cat "$TMP/produce.err")"
fi

timeout $T kcat -C -b "$BS" -t t1 -o beginning -e -J >"$TMP/consumed" 2>"$TMP/consume.err"
check "consume exits 0" "$?" "0"
check "consumed count" "$(grep -c '"key":"key' "$TMP/consumed")" "100"
check "distinct keys" "$(grep -o '"key":"key[0-9]*"' "$TMP/consumed" | sort -u | wc -l)" "100"
check "partitions used" "$(grep -o '"partition":[0-9]*' "$TMP/consumed" | sort -u | wc -l)" "3"
check "key/value pairing" \
	"$(grep -c '"key":"key\([0-9]*\)","payload":"value\1"' "$TMP/consumed")" "100"

send "broker_down 1"; check "broker_down 1" "$REPLY_LINE" "OK"
send "broker_up 1"; check "broker_up 1" "$REPLY_LINE" "OK"
send "broker_down 9"; check "broker_down unknown broker" "${REPLY_LINE%% *}" "ERR"
send "rtt 1 0"; check "rtt" "$REPLY_LINE" "OK"
send "leader t1 0 1"; check "leader" "$REPLY_LINE" "OK"
send "create_topic t2 2"; check "create_topic" "$REPLY_LINE" "OK"
send "create_topic t2 2"; check "create_topic duplicate" "${REPLY_LINE%% *}" "ERR"
send "produce_errors 2 MESSAGE_TOO_LARGE 10"; check "produce_errors" "$REPLY_LINE" "OK"
send "clear_produce_errors"; check "clear_produce_errors" "$REPLY_LINE" "OK"
send "produce_errors 1 NO_SUCH_ERROR"; check "produce_errors bad name" "${REPLY_LINE%% *}" "ERR"
send "request_errors InitProducerId PRODUCER_FENCED 47"; check "request_errors" "$REPLY_LINE" "OK"
send "clear_request_errors 22"; check "clear_request_errors" "$REPLY_LINE" "OK"
send "request_errors NoSuchApi 1"; check "request_errors bad apikey" "${REPLY_LINE%% *}" "ERR"
send "broker_request_errors 1 Produce NOT_LEADER_FOR_PARTITION@10 NONE@20"; check "broker_request_errors" "$REPLY_LINE" "OK"
send "broker_request_errors 7 Produce NONE"; check "broker_request_errors unknown broker" "${REPLY_LINE%% *}" "ERR"
send "topic_error t1 TOPIC_AUTHORIZATION_FAILED"; check "topic_error" "$REPLY_LINE" "OK"
send "topic_error t1 NONE"; check "topic_error cleared" "$REPLY_LINE" "OK"
send "frobnicate"; check "unknown command" "${REPLY_LINE%% *}" "ERR"
send "quit"; check "quit" "$REPLY_LINE" "OK"

exec {TO_MOCK}>&-
wait_exit "$MOCK_PID_SAVED"
check "exit status after quit" "$?" "0"
MOCK_PID_SAVED=""
exec {FROM_MOCK}<&-

# --- --control-fifo mode -----------------------------------------------------
# stdout goes to a FIFO we read from, so no polling is needed; stdin is
# /dev/null, which must not stop the process.
mkfifo "$TMP/out.fifo"
"$BIN" --control-fifo "$TMP/ctl.fifo" --pidfile "$TMP/mock.pid" \
	>"$TMP/out.fifo" </dev/null 2>"$TMP/mock2.err" &
BG_PID=$!
exec {OUT}<"$TMP/out.fifo"

line=""
IFS= read -r -t $T -u "$OUT" line
case "$line" in
	BOOTSTRAP=127.0.0.1:*) pass "fifo mode: bootstrap line" ;;
	*) fail "fifo mode: bootstrap line" "got '$line'; stderr: $(cat "$TMP/mock2.err")"; finish ;;
esac
check "fifo mode: pidfile" "$(cat "$TMP/mock.pid" 2>/dev/null)" "$BG_PID"

# Separate writers, one after the other.
for cmd in "ping" "broker_down 1" "broker_up 1"; do
	# shellcheck disable=SC2016  # expanded by the inner shell
	timeout $T bash -c 'echo "$1" > "$2"' _ "$cmd" "$TMP/ctl.fifo"
	line=""
	IFS= read -r -t $T -u "$OUT" line
	check "fifo mode: $cmd" "$line" "OK"
done

kill -TERM "$BG_PID"
wait_exit "$BG_PID"
check "fifo mode: exit status after SIGTERM" "$?" "0"
BG_PID=""
exec {OUT}<&-
[ ! -e "$TMP/ctl.fifo" ] && [ ! -e "$TMP/mock.pid" ]
check "fifo mode: fifo and pidfile removed" "$?" "0"

finish
