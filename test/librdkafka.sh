#!/usr/bin/env bash
# test/librdkafka.sh: run the whole outbox_kafka test suite against other
# librdkafka versions, each built once from its Debian (or Ubuntu) source
# package, and the real-broker tests against a matrix of Apache Kafka
# versions.
#
# Usage, as root on Debian 12:
#
#   bash test/librdkafka.sh [--build-only] [--print-prefix] [VERSION ...]
#
# VERSION is 2.3.0 (Ubuntu 24.04's), 2.8.0 (Debian 13's), newest (Debian
# sid's, 2.14.2 when written) or system (Debian 12's 2.0.2, the installed
# librdkafka-dev: nothing to build).  Default: 2.3.0 2.8.0 newest.
#
# For each VERSION but system, once: fetch its source package with
# `apt-get source` through the private apt configuration of
# test/debian_sources.sh (signed archives, the machine's apt configuration
# untouched), unpack it with `dpkg-source --skip-patches -x` (Debian's
# patches move include paths that upstream's configure then cannot find),
# and build it with upstream's
#   ./configure --prefix=$OUTBOX_PG_CACHE/librdkafka-X.Y.Z && make -j2 && make install
# (about 30 s on 2 cores).  --print-prefix prints the prefix of each version
# on stdout (for .ci/run); --build-only stops there.
#
# Then, for each VERSION:
#   RDKAFKA_PREFIX=$OUTBOX_PG_CACHE/librdkafka-X.Y.Z bash test/run.sh
# (the whole suite; real-broker tests on the newest Kafka 4.x), and the
# real-broker tests (test/t/10*.pl) again with OUTBOX_KAFKA_VERSION set to
# each of $OUTBOX_KAFKA_MATRIX (default: the newest 3.9.x and 4.1.x).  One
# result line per run; logs in $OUTBOX_PG_CACHE/logs.  Delete
# $OUTBOX_PG_CACHE/librdkafka-X.Y.Z to rebuild it.
#
# Environment: OUTBOX_PG_CACHE (default /var/cache/outbox_kafka),
# OUTBOX_KAFKA_MATRIX (empty: none), OUTBOX_TESTS (TAP files instead of the whole suite in
# the first run of each version, for developers), plus whatever test/run.sh
# takes.
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${OUTBOX_PG_CACHE:-/var/cache/outbox_kafka}
build_only=0
print_prefix=0
while [ $# -gt 0 ]; do
    case $1 in
        --build-only) build_only=1 ;;
        --print-prefix) print_prefix=1 ;;
        *) break ;;
    esac
    shift
done
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.3.0 2.8.0 newest)
kafka_matrix=(${OUTBOX_KAFKA_MATRIX-3.9.1 4.1.2})   # set and empty: no matrix

# shellcheck source=test/debian_sources.sh
source "$here/test/debian_sources.sh"

# Where each version's source package is: distribution and suite.  Ubuntu
# 24.04 has librdkafka in universe.
declare -A rdkafka_suite=(
    [2.3.0]=ubuntu:noble
    [2.8.0]=debian:trixie
    [newest]=debian:sid
)

# What building librdkafka with the features Debian enables needs.
build_packages=(
    make gcc g++ dpkg-dev xz-utils perl pkg-config python3
    libssl-dev libsasl2-dev zlib1g-dev liblz4-dev libzstd-dev libcurl4-openssl-dev
)

# fetch_source APT_CONF PACKAGE/SUITE DIR: download that source package's
# files into DIR, each checked against the hash in the signed index.  A
# mirror may lack the Debian packaging tarball of an older upload (Ubuntu's
# 2.3.0-1build2): only the .dsc and upstream's tarball are required, since
# Debian's patches are skipped.
fetch_source() {
    local conf=$1 pkg=$2 dir=$3 uri file size hash
    while read -r uri file size hash; do
        uri=${uri//\'/}
        if ! APT_CONFIG=$conf apt_helper download-file "$uri" "$dir/$file" "$hash"; then
            case $file in
                *.dsc | *.orig.tar.*) echo "cannot fetch $file" >&2; return 1 ;;
                *) echo "== the mirror lacks $file: unpacking upstream's tarball alone" >&2 ;;
            esac
        fi
    done < <(APT_CONFIG=$conf apt-get source --print-uris -qq --only-source "$pkg")
}

# build_rdkafka VERSION: fetch, build and install that librdkafka into
# $cache/librdkafka-X.Y.Z unless that is already done; sets prefix.
build_rdkafka() {
    local version=$1 where suite conf dl src log dsc upstream
    where=${rdkafka_suite[$version]:-}
    [ -n "$where" ] || { echo "unknown librdkafka version $version (known: ${!rdkafka_suite[*]} system)" >&2; return 1; }
    suite=${where#*:}
    # a version named by number is cached under that number: no network
    if [ "$version" != newest ] && [ -f "$cache/librdkafka-$version/.outbox_kafka_built" ]; then
        prefix=$cache/librdkafka-$version
        echo "== librdkafka $version: cached in $prefix" >&2
        return 0
    fi
    [ -n "${debian_conf:-}" ] || debian_conf=$(debian_apt)
    conf=$debian_conf
    if [ "${where%%:*}" = ubuntu ]; then
        [ -n "${ubuntu_conf:-}" ] || ubuntu_conf=$(ubuntu_apt "$debian_conf")
        conf=$ubuntu_conf
    fi
    # the upstream version the suite offers (Debian's 2.14.2-1 -> 2.14.2)
    upstream=$(APT_CONFIG=$conf apt-get source --print-uris -qq --only-source "librdkafka/$suite" 2>/dev/null |
        sed -n "s/.*librdkafka_\([0-9.]*\)[-+~].*\.dsc'.*/\1/p" | head -n 1)
    [ -n "$upstream" ] || { echo "no librdkafka source package in $where" >&2; return 1; }
    prefix=$cache/librdkafka-$upstream
    if [ -f "$prefix/.outbox_kafka_built" ]; then
        echo "== librdkafka $upstream ($where): cached in $prefix" >&2
        return 0
    fi

    dl=$cache/src-librdkafka-$upstream
    rm -rf "$dl" && mkdir -p "$dl"
    src=$dl/src
    fetch_source "$conf" "librdkafka/$suite" "$dl"
    dsc=$(ls "$dl"/librdkafka_*.dsc)
    if ls "$dl"/librdkafka_*.debian.tar.* >/dev/null 2>&1; then
        dpkg-source --no-check --skip-patches -x "$dsc" "$src" >/dev/null
    else
        # upstream's tarball alone is what --skip-patches unpacks anyway
        mkdir -p "$src" && tar -xf "$(ls "$dl"/librdkafka_*.orig.tar.*)" -C "$src" --strip-components=1
    fi
    log=$dl/build.log
    echo "== librdkafka $upstream: building $(basename "$dsc" .dsc) ($where) into $prefix (log: $log)" >&2
    (
        cd "$src" &&
        nice -n 19 ./configure --prefix="$prefix" >"$log" 2>&1 &&
        nice -n 19 make -j2 >>"$log" 2>&1 &&
        rm -rf "$prefix" &&
        nice -n 19 make install >>"$log" 2>&1
    ) || { echo "build of librdkafka $upstream failed; last lines of $log:" >&2; tail -n 40 "$log" >&2; return 1; }
    [ -f "$prefix/include/librdkafka/rdkafka.h" ] && ls "$prefix"/lib/librdkafka.so* >/dev/null ||
        { echo "librdkafka $upstream: nothing installed in $prefix" >&2; return 1; }
    chmod -R a+rX "$prefix"
    basename "$dsc" .dsc >"$prefix/.outbox_kafka_built"
    [ "$version" = newest ] || [ "$version" = "$upstream" ] ||
        echo "== note: $where has librdkafka $upstream, not $version" >&2
    rm -rf "$src"   # keep the downloaded package and the log, not the build tree
}

if [ "$(id -u)" -ne 0 ]; then
    echo "run as root: builds into $cache and tests as an unprivileged user" >&2
    exit 1
fi
need_packages "${build_packages[@]}" >&2
mkdir -p "$cache"

declare -A prefixes=()
for v in "${versions[@]}"; do
    prefix=
    [ "$v" = system ] || build_rdkafka "$v"
    prefixes[$v]=$prefix
    [ "$print_prefix" -eq 0 ] || echo "$prefix"
done
[ "$build_only" -eq 1 ] && exit 0

start_results
# run_suite LABEL PREFIX KAFKA TESTS: one test/run.sh, one result line
run_suite() {
    local label=$1 prefix=$2 kafka=$3 tests=$4 log status verdict loaded
    log=$cache/logs/librdkafka-$label-kafka-${kafka:-default}-$(date +%Y%m%d-%H%M%S).log
    echo "== librdkafka $label, Kafka ${kafka:-$(bash "$here/test/kafka/kafka.sh" version)}: ${tests:-whole suite} (log: $log)"
    status=0
    RDKAFKA_PREFIX=$prefix OUTBOX_KAFKA_VERSION=$kafka OUTBOX_TESTS=$tests \
        bash "$here/test/run.sh" >"$log" 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then verdict=PASS; else verdict=FAIL; failed=1; tail -n 60 "$log"; fi
    # what the server loaded, as the relay logged it at start
    loaded=$(sed -n 's/^== the relay runs \(librdkafka .*\)/\1/p' "$log" | head -n 1)
    results+=("librdkafka $label (${loaded:-?}) | Kafka ${kafka:-$(bash "$here/test/kafka/kafka.sh" version)} | $verdict | ${tests:-whole suite} | $(counts "$log") | commit $commit | $(date -u +%Y-%m-%d)")
}

for v in "${versions[@]}"; do
    run_suite "$v" "${prefixes[$v]}" "" "${OUTBOX_TESTS:-}"
    for k in "${kafka_matrix[@]}"; do
        run_suite "$v" "${prefixes[$v]}" "$k" "$(cd "$here" && echo test/t/10*.pl)"
    done
done

echo "== results"
printf '%s\n' "${results[@]}"
exit "$failed"
