# bench/perf_summary.sh: sourced by the benchmarks that take a profile
# (BENCH_PROFILE=1): prints a perf recording of the relay worker's threads
# as two Markdown code blocks.

# need_perf: install Debian's linux-perf when BENCH_PROFILE is set and perf
# is missing
need_perf() {
    if [ -n "${BENCH_PROFILE:-}" ] && ! command -v perf >/dev/null; then
        apt-get install -y -q linux-perf >/dev/null
    fi
}
#
# perf_summary FILE: self time by thread and object, then the worker's own
# thread's functions with what they call (inclusive time, of all samples)
perf_summary() {
    echo "By thread and object (self time):"
    echo
    echo '```'
    perf report -i "$1" --no-children --sort comm,dso --percent-limit 1 \
        -g none --stdio 2>&1 | grep -v '^#' | grep -v '^$' | head -20 || true
    echo '```'
    echo
    echo "The worker's own thread, functions with what they call (inclusive time, of all samples):"
    echo
    echo '```'
    perf report -i "$1" --children --comm postgres --sort sym --percent-limit 2 \
        -g none --stdio 2>&1 | grep -v '^#' | grep -v '^$' | head -45 || true
    echo '```'
}
