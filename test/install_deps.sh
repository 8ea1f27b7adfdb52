# test/install_deps.sh: sourced by test/run.sh, test/demo.sh and bench/run.sh.
# install_deps installs the Debian packages outbox_kafka needs for building,
# testing and the demo when they are missing (needs root, or only checks);
# build_and_install builds and installs the extension and the mock broker.

outbox_packages=(
    make gcc
    postgresql-15 postgresql-server-dev-15
    librdkafka-dev kcat
    libipc-run-perl
)

# install_deps: apt-get install whatever of outbox_packages is missing.
install_deps() {
    local missing=() p
    for p in "${outbox_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
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
}

# build_and_install TOP: build and install the extension found in TOP, and
# build the mock Kafka broker helper.
build_and_install() {
    local top=$1 pg_config=/usr/lib/postgresql/15/bin/pg_config
    make -C "$top" -s PG_CONFIG="$pg_config"
    make -C "$top" -s PG_CONFIG="$pg_config" install
    make -C "$top/test/mock_kafka" -s
}
