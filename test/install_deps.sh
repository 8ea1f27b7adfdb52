# test/install_deps.sh: sourced by test/run.sh, test/demo.sh and bench/run.sh.
# install_deps installs the Debian packages outbox_kafka needs for building,
# testing and the demo when they are missing (needs root, or only checks);
# build_and_install builds and installs the extension and the mock broker.

outbox_packages=(
    make gcc
    postgresql-15 postgresql-server-dev-15
    librdkafka-dev kcat
    libipc-run-perl
    openjdk-17-jre-headless maven   # the real Apache Kafka broker (test/kafka)
    openssl                         # test/t/103_real_tls.pl makes a throwaway CA
    prometheus-postgres-exporter    # test/t/051_prometheus.pl
    python3-confluent-kafka python3-psycopg   # test/t/094_docs_consumers.pl
)
# examples/nestjs-orders (test/t/050_nestjs_orders.pl) needs Node.js and npm:
# Debian's when the machine has no npm (one installed otherwise is used as is)
command -v npm >/dev/null 2>&1 || outbox_packages+=(nodejs npm)

# as_user USER COMMAND...: run COMMAND as the unprivileged USER, from /.
# runuser keeps the caller's working directory; when that is a clone in
# root's home, which USER cannot enter, every PostgreSQL program would
# print 'could not change directory to "<clone>": Permission denied'.
as_user() {
    local user=$1
    shift
    (cd / && exec runuser -u "$user" -- "$@")
}

# missing_packages PKG...: print those of the Debian packages that are not
# installed, one a line.
missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            echo "$p"
    done
}

# install_deps: apt-get install whatever of outbox_packages is missing.
install_deps() {
    local missing=()
    mapfile -t missing < <(missing_packages "${outbox_packages[@]}")
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
        return 1
    fi
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian's postgresql package starts a cluster we do not need
    if command -v pg_lsclusters >/dev/null && pg_lsclusters -h | grep -q '^15 *main .*online'; then
        pg_ctlcluster 15 main stop || true
    fi
    # nor the exporter's service (it would listen on every interface); the
    # tests start their own on loopback
    if pgrep -x prometheus-postgres-exporter >/dev/null 2>&1 ||
        pgrep -f '^/usr/bin/prometheus-postgres-exporter' >/dev/null 2>&1; then
        service prometheus-postgres-exporter stop >/dev/null 2>&1 || true
        pkill -f '^/usr/bin/prometheus-postgres-exporter' 2>/dev/null || true
    fi
    command -v systemctl >/dev/null 2>&1 &&
        systemctl disable prometheus-postgres-exporter >/dev/null 2>&1 || true
}

# fetch_promtool: Prometheus' promtool, which test/t/051_prometheus.pl uses
# to check and unit-test the example's alert rules, taken out of Debian's
# prometheus package into /var/cache/outbox_kafka/promtool (installing the
# package would also install and start a Prometheus server); nothing to do
# when it is there or on the PATH.  Needs root for the first time.
fetch_promtool() {
    local cache=/var/cache/outbox_kafka/promtool tmp
    command -v promtool >/dev/null 2>&1 && return 0
    [ -x "$cache/promtool" ] && return 0
    [ "$(id -u)" -eq 0 ] || return 0
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get download -qq prometheus >/dev/null; }) &&
        dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"; then
        mkdir -p "$cache"
        cp "$tmp/x/usr/bin/promtool" "$cache/promtool"
        echo "== promtool taken from Debian's prometheus package into $cache"
    else
        echo "== could not fetch Debian's prometheus package: 051 skips its promtool checks" >&2
    fi
    rm -rf "$tmp"
}

# build_and_install TOP: build and install the extension found in TOP, and
# build the mock Kafka broker helper and the admin client, all against the
# librdkafka under $RDKAFKA_PREFIX when set (else the system's).  The
# helpers are rebuilt every time (-B): a previous build may have linked
# another librdkafka.
build_and_install() {
    local top=$1 pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
    local rdk=(RDKAFKA_PREFIX="${RDKAFKA_PREFIX:-}")
    make -C "$top" -s PG_CONFIG="$pg_config" "${rdk[@]}"
    make -C "$top" -s PG_CONFIG="$pg_config" "${rdk[@]}" install
    make -C "$top/test/mock_kafka" -s -B "${rdk[@]}"
    make -C "$top/test/kafka" -s -B "${rdk[@]}" kafka_admin
    fetch_kafka "$top"
}

# build_rdkafka_program OUT SOURCE: compile a librdkafka program (the
# benchmarks' floor producer and consumer) against the same librdkafka as
# the relay: $RDKAFKA_PREFIX's (as in src/rdkafka.mk), else the system's
build_rdkafka_program() {
    local flags=()
    [ -z "${RDKAFKA_PREFIX:-}" ] ||
        flags=(-isystem "$RDKAFKA_PREFIX/include" -L"$RDKAFKA_PREFIX/lib" -Wl,-rpath,"$RDKAFKA_PREFIX/lib")
    gcc -O2 -Wall -Wextra -Werror "${flags[@]}" -o "$1" "$2" -lrdkafka
}

# fetch_kafka TOP: the Apache Kafka jars, from Maven Central on first use
# (a few seconds), from the cache afterwards (nothing to do)
fetch_kafka() {
    local top=$1 t0
    t0=$(date +%s)
    bash "$top/test/kafka/kafka.sh" fetch >/dev/null
    # librdkafka before 2.6.1 cannot log in to Kafka 4 with SCRAM: the SASL
    # test (test/t/104) then runs Kafka 3.9.1 (see test/t/RealKafka.pm);
    # the admin client runs the librdkafka the relay was built with
    if dpkg --compare-versions "$("$top/test/kafka/kafka_admin" version 2>/dev/null || echo 0)" lt 2.6.1; then
        OUTBOX_KAFKA_VERSION=3.9.1 bash "$top/test/kafka/kafka.sh" fetch >/dev/null
    fi
    [ $(( $(date +%s) - t0 )) -lt 2 ] || echo "== Apache Kafka fetched in $(( $(date +%s) - t0 )) s"
}

# start_real_broker DIR TOPIC:PARTITIONS...: a single-node Apache Kafka
# (KRaft, auto-create off) on free loopback ports, like the mock broker run
# by the invoking user (the checkout may not be readable by $run_user), with
# those topics; sets bootstrap.  stop_real_broker DIR stops it.
start_real_broker() {
    local dir=$1
    shift
    mkdir -p "$dir/kafka"
    bash "$here/test/kafka/kafka.sh" start "$dir/kafka" "$@" >"$dir/kafka.out" 2>&1 ||
        { echo "the Kafka broker did not start"; cat "$dir/kafka.out"; tail -n 30 "$dir/kafka/node1/server.log" 2>/dev/null; return 1; }
    bootstrap=$(sed -n 's/^BOOTSTRAP=//p' "$dir/kafka.out")
    sed -n 's/^kafka.sh: //p' "$dir/kafka.out"
}

stop_real_broker() {
    bash "$here/test/kafka/kafka.sh" stop "$1/kafka"
}

# start_mock_broker DIR ARGS...: start the mock Kafka broker in the
# background (commands through the FIFO DIR/mock.fifo); sets mock_pid and
# bootstrap.
start_mock_broker() {
    local dir=$1
    shift
    "$here/test/mock_kafka/mock_kafka" "$@" --control-fifo "$dir/mock.fifo" >"$dir/mock.out" 2>&1 &
    mock_pid=$!
    for _ in $(seq 100); do
        grep -q '^BOOTSTRAP=' "$dir/mock.out" 2>/dev/null && break
        sleep 0.1
    done
    bootstrap=$(sed -n 's/^BOOTSTRAP=//p' "$dir/mock.out")
    [ -n "$bootstrap" ] || { echo "mock broker did not start"; cat "$dir/mock.out"; return 1; }
}

# mock_command DIR COMMAND: send COMMAND to the mock broker of
# start_mock_broker DIR and wait for its reply; fails unless it is OK
mock_command() {
    local dir=$1 n0
    n0=$(grep -Ec '^(OK|ERR)' "$dir/mock.out" || true)
    echo "$2" >"$dir/mock.fifo"
    for _ in $(seq 1000); do
        [ "$(grep -Ec '^(OK|ERR)' "$dir/mock.out" || true)" -gt "$n0" ] && break
        sleep 0.01
    done
    [ "$(grep -E '^(OK|ERR)' "$dir/mock.out" | tail -n 1)" = OK ] ||
        { echo "the mock broker refused: $2" >&2; return 1; }
}

# remove_throwaway DIR: for an EXIT trap: stop the server of
# start_throwaway_server, the mock broker of start_mock_broker ($mock_pid)
# and the real broker of start_real_broker in DIR, then delete DIR
remove_throwaway() {
    local dir=$1 pgbin
    set +e
    pgbin=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)
    [ -f "$dir/data/postmaster.pid" ] &&
        as_user "$run_user" "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
    [ -n "${mock_pid:-}" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
    [ -d "$dir/kafka" ] && stop_real_broker "$dir"
    rm -rf "$dir"
}

# start_throwaway_server DIR DATABASES BOOTSTRAP [EXTRA_CONF]: a new cluster
# in DIR/data, owned by $run_user, with outbox_kafka preloaded and listening
# only on a socket in DIR; sets port.
start_throwaway_server() {
    local dir=$1 dbs=$2 servers=$3 extra=${4:-} pgbin
    pgbin=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)
    port=$(( 20000 + RANDOM % 20000 ))
    as_user "$run_user" "$pgbin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$dir'
shared_preload_libraries = 'outbox_kafka'
outbox_kafka.databases = '$dbs'
outbox_kafka.bootstrap_servers = '$servers'
$extra
CONF
    as_user "$run_user" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}
