#!/usr/bin/env bash
# test/run_faults.sh: run only the fault suite (issue 7): the TAP files
# test/t/NNN_fault_*.pl, which drive a steady stream of enqueues through a
# fault each (most through test/t/FaultStream.pm), plus 004, 006 and 009,
# which run the stream through crashes, outages and fatal producer errors
# after their own checks, and the inbox's fault scenarios (poison
# messages, SIGKILLs, crashes and broker kills: test/t/11N_inbox_*.pl
# named below).  They are also part of `make installcheck`
# (PROVE_TESTS = test/t/*.pl) and so of test/run.sh.
#
# Usage, as root like test/run.sh:  bash test/run_faults.sh
# Environment: PG_CONFIG as for test/run.sh; FAULT_OUTAGE_SECONDS (default
# 30) is the length of the all-brokers-down outage in 006.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
OUTBOX_TESTS="test/t/004_restart.pl test/t/006_broker_outage.pl test/t/009_producer_fatal_error.pl $(ls test/t/[0-9][0-9][0-9]_fault_*.pl | tr '\n' ' ')"
OUTBOX_TESTS="$OUTBOX_TESTS test/t/112_inbox_poison.pl test/t/113_inbox_kill.pl test/t/114_inbox_real_kafka.pl"
export OUTBOX_TESTS
exec bash "$here/test/run.sh"
