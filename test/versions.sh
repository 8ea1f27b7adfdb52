#!/usr/bin/env bash
# test/versions.sh: run the whole outbox_kafka test suite (pg_regress,
# isolation, TAP) against other PostgreSQL major versions, each built once
# from its source package.
#
# Usage, as root on Debian 12:
#
#   bash test/versions.sh [--build-only] [MAJOR ...]      (default: 16 17 18)
#
# For each MAJOR, once: fetch the source package postgresql-MAJOR with
# `apt-get source` through a private apt configuration (its own
# sources.list, state and cache under $OUTBOX_PG_CACHE/apt-*; the machine's
# apt configuration is never read for sources nor changed), configure it with
# --enable-tap-tests, build it and contrib under `nice -n 19` with `make -j2`,
# and install it to $OUTBOX_PG_CACHE/postgresql-MAJOR.  Then run
#   PG_CONFIG=$OUTBOX_PG_CACHE/postgresql-MAJOR/bin/pg_config bash test/run.sh
# and print one result line per version (logs in $OUTBOX_PG_CACHE/logs).
# Delete $OUTBOX_PG_CACHE/postgresql-MAJOR to rebuild it (e.g. after a new
# point release).
#
# Where the sources come from:
#   - Debian: bookworm(-security) (postgresql-15), trixie, trixie-updates,
#     trixie-security (postgresql-17),
#     forky and sid (postgresql-18).  apt picks the newest version on offer.
#   - postgresql-16 is in no current Debian suite (trixie shipped with 17;
#     sid dropped 16 in 2024).  When Debian has no postgresql-MAJOR, the
#     package comes from Ubuntu 24.04 LTS (noble-security, noble-updates),
#     which maintains Debian's postgresql-16 packaging with current point
#     releases; its signatures are checked with the Ubuntu archive keyring
#     from Debian's package ubuntu-keyring (bookworm-backports; unpacked into
#     the cache, not installed).
#
# Not run by CI: each build takes about 10 minutes on 2 cores.
#
# Environment: OUTBOX_PG_CACHE (default /var/cache/outbox_kafka),
# OUTBOX_PG_CONFIGURE (extra configure options, e.g. --enable-cassert; they
# only apply to a version not built yet), plus whatever test/run.sh takes.
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${OUTBOX_PG_CACHE:-/var/cache/outbox_kafka}
build_only=0
if [ "${1:-}" = "--build-only" ]; then
    build_only=1
    shift
fi
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(16 17 18)

# shellcheck source=test/debian_sources.sh
source "$here/test/debian_sources.sh"

# Uploads this suite was verified with, taken when the mirror no longer (or
# not yet) has the files of the version its index names: the .dsc is checked
# against its uploader's OpenPGP signature (debian-keyring), the tarballs
# against the .dsc.  OUTBOX_PG_DSC_17=<url> etc. override them.
declare -A known_dsc=(
    [17]=$debian_uri/pool/main/p/postgresql-17/postgresql-17_17.11-0+deb13u1.dsc
    [18]=$debian_uri/pool/main/p/postgresql-18/postgresql-18_18.6-3.dsc
)

# What building PostgreSQL from source needs, from Debian.
build_packages=(
    make gcc dpkg-dev xz-utils bison flex perl pkg-config
    libreadline-dev zlib1g-dev libssl-dev libicu-dev libipc-run-perl
)

# build_pg MAJOR: fetch, configure, build and install PostgreSQL MAJOR into
# $cache/postgresql-MAJOR unless that is already done.
build_pg() {
    # The prefix must contain "postgres": otherwise Debian's
    # 50-per-version-dirs.patch sets pkglibdir to /usr/lib/postgresql/MAJOR/lib,
    # outside the prefix, and `make install` would write into the system.
    local major=$1 prefix=$cache/postgresql-$1 conf dl src log dsc url check=--no-check
    # "with contrib": builds of an earlier version of this script lacked it
    if [ -x "$prefix/bin/pg_config" ] && grep -qs 'with contrib' "$prefix/.outbox_kafka_built"; then
        echo "== PostgreSQL $major: cached in $prefix ($(cat "$prefix/.outbox_kafka_built"))"
        return 0
    fi
    [ -n "${debian_conf:-}" ] || debian_conf=$(debian_apt)
    conf=$debian_conf
    if ! has_source "$conf" "postgresql-$major"; then
        echo "== postgresql-$major is in no Debian suite named here; using Ubuntu 24.04's source package"
        [ -n "${ubuntu_conf:-}" ] || ubuntu_conf=$(ubuntu_apt "$debian_conf")
        conf=$ubuntu_conf
        has_source "$conf" "postgresql-$major" \
            || { echo "no source package postgresql-$major found" >&2; return 1; }
    fi

    dl=$cache/src-$major
    rm -rf "$dl" && mkdir -p "$dl"
    # apt checks the files against the signed index: no second check needed
    if ! (cd "$dl" && APT_CONFIG=$conf apt-get source -qq --download-only --only-source "postgresql-$major"); then
        url=$(eval echo "\${OUTBOX_PG_DSC_$major:-${known_dsc[$major]:-}}")
        [ -n "$url" ] || { echo "cannot fetch postgresql-$major" >&2; return 1; }
        echo "== the mirror lacks those files; taking ${url##*/}, checked with debian-keyring"
        need_packages debian-keyring
        rm -rf "$dl" && mkdir -p "$dl"
        fetch_dsc "$url" "$dl"
        check=--require-valid-signature
    fi
    dsc=$(ls "$dl"/postgresql-"$major"_*.dsc)
    src=$dl/src
    dpkg-source "$check" -x "$dsc" "$src" >/dev/null
    echo "== PostgreSQL $major: building $(basename "$dsc" .dsc) into $prefix (log: $dl/build.log)"

    log=$dl/build.log
    # Debian's own configure options for the libraries our tests touch;
    # nothing else (no LLVM, PL languages, LDAP ...) is needed here.
    # (&&, not set -e: errexit does not apply on the left of ||)
    (
        cd "$src" &&
        # shellcheck disable=SC2086
        nice -n 19 ./configure --prefix="$prefix" --enable-tap-tests --enable-debug \
            --with-openssl --with-icu --with-readline --with-zlib \
            ${OUTBOX_PG_CONFIGURE:-} >"$log" 2>&1 &&
        # contrib too: the tests use pg_stat_statements, and like an installed
        # Debian PostgreSQL any contrib module may be used
        nice -n 19 make -j2 -s >>"$log" 2>&1 &&
        nice -n 19 make -C contrib -j2 -s >>"$log" 2>&1 &&
        rm -rf "$prefix" &&
        nice -n 19 make -s install >>"$log" 2>&1 &&
        nice -n 19 make -C contrib -s install >>"$log" 2>&1 &&
        case $("$prefix/bin/pg_config" --pkglibdir) in
            "$prefix"/*) ;;
            *) echo "pkglibdir outside $prefix" >>"$log"; exit 1 ;;
        esac
    ) || { echo "build of PostgreSQL $major failed; last lines of $log:" >&2; tail -n 40 "$log" >&2; return 1; }
    chmod -R a+rX "$prefix"
    echo "$(basename "$dsc" .dsc) with contrib ${OUTBOX_PG_CONFIGURE:-}" >"$prefix/.outbox_kafka_built"
    rm -rf "$src"   # keep the downloaded package and the log, not the build tree
}

if [ "$(id -u)" -ne 0 ]; then
    echo "run as root: builds into $cache and tests as an unprivileged user" >&2
    exit 1
fi
need_packages "${build_packages[@]}"
mkdir -p "$cache"

for major in "${majors[@]}"; do
    build_pg "$major"
done
[ "$build_only" -eq 1 ] && exit 0

start_results
for major in "${majors[@]}"; do
    log=$cache/logs/pg-$major-$(date +%Y%m%d-%H%M%S).log
    pgc=$cache/postgresql-$major/bin/pg_config
    echo "== PostgreSQL $("$pgc" --version | awk '{print $2}'): whole suite (log: $log)"
    status=0
    PG_CONFIG=$pgc bash "$here/test/run.sh" >"$log" 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then verdict=PASS; else verdict=FAIL; failed=1; tail -n 60 "$log"; fi
    results+=("$("$pgc" --version | awk '{print $2}') | $verdict | $(counts "$log") | commit $commit | $(date -u +%Y-%m-%d)")
done

echo "== results"
printf '%s\n' "${results[@]}"
exit "$failed"
