# bench/inbox_common.sh: sourced by bench/inbox.sh and bench/inbox_latency.sh
# (which set here, run_user and PG_CONFIG first).
#
# inbox_bench_setup NAME: install whatever Debian package is missing, build
# and install the extension (and the test brokers' tools), make $work
# (/tmp/outbox_kafka_NAME.*, removed on exit with whatever runs in it) and
# compile bench/inbox_floor.c into $work/inbox_floor.
# shellcheck source=test/install_deps.sh
source "$here/test/install_deps.sh"

inbox_bench_setup() {
    local flags=()
    install_deps
    make -C "$here" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null
    build_and_install "$here"
    work=$(mktemp -d "/tmp/outbox_kafka_$1.XXXXXX")
    chown "$run_user" "$work"
    mock_pid=
    trap 'remove_throwaway "$work"' EXIT
    [ -z "${RDKAFKA_PREFIX:-}" ] ||
        flags=(-isystem "$RDKAFKA_PREFIX/include" -L"$RDKAFKA_PREFIX/lib" -Wl,-rpath,"$RDKAFKA_PREFIX/lib")
    gcc -O2 -Wall -Wextra -Werror "${flags[@]}" -I"$("$PG_CONFIG" --includedir)" \
        -o "$work/inbox_floor" "$here/bench/inbox_floor.c" -lrdkafka -lpq
}
