# test/debian_sources.sh: sourced by test/versions.sh and test/librdkafka.sh
# (after they set here and cache).
# Source packages from Debian's (and Ubuntu's) signed archives through a
# private apt configuration: its own sources.list, state and cache under
# $cache/apt-*; the machine's apt configuration is never read for sources
# nor changed.  The caller sets cache (the folder the builds go to).
#
# Environment: OUTBOX_DEBIAN_ARCHIVE, OUTBOX_DEBIAN_SECURITY_ARCHIVE (the
# archives to use; default: those of this machine's own apt sources).

# shellcheck source=test/install_deps.sh
source "$here/test/install_deps.sh"   # missing_packages

debian_keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# machine_apt_uri SUFFIX: the Debian archive this machine's own apt uses
# (its sources ending in /debian, or /debian-security), so that the private
# configuration below reaches the same archive the same way
machine_apt_uri() {
    local suffix=$1 uri
    uri=$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true) |
        grep -oE "https?://[^ ]+/${suffix}/?( |$)" | head -n 1 | tr -d ' ' || true)
    echo "${uri%/}"
}
debian_uri=${OUTBOX_DEBIAN_ARCHIVE:-$(machine_apt_uri debian)}
debian_security_uri=${OUTBOX_DEBIAN_SECURITY_ARCHIVE:-$(machine_apt_uri debian-security)}
[ -n "$debian_security_uri" ] || debian_security_uri=${debian_uri}-security
if [ -z "$debian_uri" ]; then
    echo "no Debian archive in this machine's apt sources: set OUTBOX_DEBIAN_ARCHIVE" >&2
    exit 1
fi
debian_suites=(bookworm trixie trixie-updates forky sid)
debian_security_suites=(bookworm-security trixie-security)
ubuntu_suites=(noble noble-updates noble-security)

# need_packages PKG...: apt-get install the ones that are missing.
need_packages() {
    local missing=()
    mapfile -t missing < <(missing_packages "$@")
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing ${missing[*]}"
    # a fresh machine has no package lists yet
    apt-cache show "${missing[0]}" >/dev/null 2>&1 || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# apt_root NAME SOURCES_LINE...: create (or refresh) a private apt
# configuration in $cache/apt-NAME with these sources.list lines, run
# apt-get update there, and print the path of its apt.conf.  Only the
# machine's network settings (proxy, release-file date checks) are copied.
apt_root() {
    local name=$1 root=$cache/apt-$1
    shift
    mkdir -p "$root"/etc/apt.conf.d "$root"/etc/sources.list.d "$root"/etc/preferences.d \
        "$root"/etc/trusted.gpg.d "$root"/state/lists/partial "$root"/cache/archives/partial
    : >"$root/status"
    printf '%s\n' "$@" >"$root/etc/sources.list"
    {
        echo "Dir::Etc \"$root/etc\";"
        echo "Dir::Etc::Parts \"$root/etc/apt.conf.d\";"
        echo "Dir::Etc::SourceList \"$root/etc/sources.list\";"
        echo "Dir::Etc::SourceParts \"$root/etc/sources.list.d\";"
        echo "Dir::Etc::PreferencesParts \"$root/etc/preferences.d\";"
        echo "Dir::State \"$root/state\";"
        echo "Dir::State::status \"$root/status\";"
        echo "Dir::Cache \"$root/cache\";"
        echo 'APT::Sandbox::User "root";'
        echo 'Acquire::Languages "none";'
        apt-config dump | grep -E '^Acquire::(https?::Proxy|Check-Valid-Until|Check-Date|Retries)' || true
    } >"$root/apt.conf"
    APT_CONFIG=$root/apt.conf apt-get update -qq >&2
    echo "$root/apt.conf"
}

# debian_apt: the private apt configuration naming Debian's newer suites.
debian_apt() {
    local lines=() s
    for s in "${debian_suites[@]}"; do
        lines+=("deb-src [signed-by=$debian_keyring] $debian_uri $s main")
    done
    for s in "${debian_security_suites[@]}"; do
        lines+=("deb-src [signed-by=$debian_keyring] $debian_security_uri $s main")
    done
    # binary index for ubuntu-keyring only
    lines+=("deb [signed-by=$debian_keyring] $debian_uri bookworm-backports main")
    apt_root debian "${lines[@]}"
}

# ubuntu_apt DEBIAN_APT_CONF: the private apt configuration naming Ubuntu
# 24.04's suites (main: postgresql-16; universe: librdkafka), trusted
# through Debian's ubuntu-keyring package (its ubuntu-archive-keyring.gpg;
# unpacked into the cache, not installed).
ubuntu_apt() {
    local debian_conf=$1 keydir=$cache/apt-ubuntu/keyring lines=() s
    if [ ! -s "$keydir/usr/share/keyrings/ubuntu-archive-keyring.gpg" ]; then
        rm -rf "$keydir.tmp" && mkdir -p "$keydir.tmp"
        (cd "$keydir.tmp" && APT_CONFIG=$debian_conf apt-get download -qq ubuntu-keyring >&2)
        dpkg-deb -x "$keydir.tmp"/ubuntu-keyring_*.deb "$keydir.tmp/x"
        rm -rf "$keydir" && mv "$keydir.tmp/x" "$keydir" && rm -rf "$keydir.tmp"
    fi
    for s in "${ubuntu_suites[@]}"; do
        lines+=("deb-src [signed-by=$keydir/usr/share/keyrings/ubuntu-archive-keyring.gpg] http://archive.ubuntu.com/ubuntu $s main universe")
    done
    apt_root ubuntu "${lines[@]}"
}

# fetch_dsc URL DIR: download a source package's .dsc and the files it lists.
fetch_dsc() {
    local url=$1 dir=$2 f
    apt_helper download-file "$url" "$dir/${url##*/}"
    for f in $(awk '/^Files:/ {p = 1; next} /^[^ ]/ {p = 0} p {print $3}' "$dir/${url##*/}"); do
        apt_helper download-file "${url%/*}/$f" "$dir/$f"
    done
}

apt_helper() {
    /usr/lib/apt/apt-helper -o APT::Sandbox::User=root "$@" >/dev/null
}

# has_source APT_CONF PACKAGE: true if that apt configuration offers it.
has_source() {
    local found
    found=$(APT_CONFIG=$1 apt-cache showsrc --only-source "$2" 2>/dev/null || true)
    [[ $found == *"Package: $2"* ]]
}

# counts LOG: "pg_regress isolation TAP" as passed/total from a test/run.sh log.
counts() {
    local log=$1 sql tap
    # pg_regress prints "All N tests passed." (15) or "# All N tests passed."
    # (16+), or "N of M tests failed."; regress runs first, then isolation.
    sql=$(sed -n -e 's/^[# ]*All \([0-9]*\) tests passed.*/\1\/\1/p' \
        -e 's/^[# ]*\([0-9]*\) of \([0-9]*\) tests failed.*/-\/\2/p' "$log" | tr '\n' ' ')
    tap=$(sed -n 's/^Files=\([0-9]*\), Tests=\([0-9]*\),.*/\2 in \1 files/p' "$log")
    echo "pg_regress ${sql%% *} | isolation $(echo "$sql" | awk '{print $2}') | TAP ${tap:-none}"
}

# start_results: before the test runs: commit (the tree's, "+changes" when
# it has uncommitted changes), an empty results list, failed=0, and the log
# folder $cache/logs.
start_results() {
    commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$here" diff --quiet HEAD 2>/dev/null || commit="$commit+changes"
    results=()
    failed=0
    mkdir -p "$cache/logs"
}
