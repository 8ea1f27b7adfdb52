# test/install_deps.sh: sourced by test/run.sh and the demo; installs the
# Debian packages outbox_kafka needs for building, testing and the demo,
# when they are missing.  Needs root (or does nothing but check).

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
