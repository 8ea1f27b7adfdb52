#!/usr/bin/env bash
# test/kafka/kafka.sh: Apache Kafka (KRaft) for the tests, the demo and the
# benchmarks, fetched from Maven Central once and run on loopback.
#
#   kafka.sh fetch            fetch the broker's jars into the cache (once;
#                             later calls only check) and print their folder
#   kafka.sh format NODE_DIR CLUSTER_ID [StorageTool options...]
#                             format NODE_DIR/server.properties' log.dirs
#   kafka.sh run NODE_DIR     run the broker of NODE_DIR/server.properties in
#                             the foreground (exec java; log NODE_DIR/server.log)
#   kafka.sh start DIR [TOPIC:PARTITIONS]...
#                             a single combined broker+controller on free
#                             127.0.0.1 ports in DIR, in the background; waits
#                             until it answers metadata requests, creates the
#                             topics, prints BOOTSTRAP=host:port
#   kafka.sh stop DIR         stop it (SIGTERM, bounded wait, then SIGKILL)
#   kafka.sh version          the Apache Kafka version it runs
#
# OUTBOX_KAFKA_VERSION=X.Y.Z runs that Apache Kafka version instead of the one
# pom.xml pins.
#
# The cache is $OUTBOX_KAFKA_CACHE, else /var/cache/outbox_kafka when it is
# writable or already holds the jars, else ~/.cache/outbox_kafka.  A cache
# that holds the jars needs neither Maven nor the network.
set -euo pipefail

kafka_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# the version pom.xml pins, unless OUTBOX_KAFKA_VERSION names another one (a
# run against an older or newer broker: the jars go to a cache of their own)
kafka_version=${OUTBOX_KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$kafka_dir/pom.xml")}

# cache_dir: where the jars of this Kafka version live (or will)
cache_dir() {
    local base
    if [ -n "${OUTBOX_KAFKA_CACHE:-}" ]; then
        base=$OUTBOX_KAFKA_CACHE
    elif [ -f "/var/cache/outbox_kafka/kafka-$kafka_version/.complete" ] ||
         { mkdir -p /var/cache/outbox_kafka 2>/dev/null && [ -w /var/cache/outbox_kafka ]; }; then
        base=/var/cache/outbox_kafka
    else
        base=${XDG_CACHE_HOME:-$HOME/.cache}/outbox_kafka
    fi
    echo "$base/kafka-$kafka_version"
}

# fetch: copy kafka_2.13 and its dependencies from Maven Central into the
# cache, unless a complete copy is there
fetch() {
    local dir
    dir=$(cache_dir)
    if [ ! -f "$dir/.complete" ]; then
        command -v mvn >/dev/null || { echo "kafka.sh: mvn is missing (apt-get install maven)" >&2; return 1; }
        echo "kafka.sh: fetching Apache Kafka $kafka_version from Maven Central into $dir" >&2
        mkdir -p "$dir"
        rm -rf "$dir/libs.tmp"
        # the local Maven repository stays in the cache too: a second fetch
        # (another version, a wiped libs folder) needs no network
        mvn -B -q -Dstyle.color=never -f "$kafka_dir/pom.xml" -Dmaven.repo.local="${dir%/*}/m2" \
            -Dkafka.version="$kafka_version" dependency:copy-dependencies -DoutputDirectory="$dir/libs.tmp" >&2
        rm -rf "$dir/libs"
        mv "$dir/libs.tmp" "$dir/libs"
        chmod -R a+rX "${dir%/*}"
        touch "$dir/.complete"
    fi
    echo "$dir/libs"
}

# java_opts: heap, GC and JIT for a broker on a 2-core machine.
# KAFKA_JVM_PERFORMANCE_OPTS replaces the GC/JIT part: the TAP tests use
# "-XX:+UseSerialGC -XX:TieredStopAtLevel=1" (starts in about half the CPU
# time; throughput does not matter there), the benchmarks keep the default.
java_opts() {
    echo "-Xms128m -Xmx512m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true"
    echo "${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:ParallelGCThreads=1 -XX:ConcGCThreads=1 -XX:CICompilerCount=2}"
}

# format NODE_DIR CLUSTER_ID [options]: format the node's storage
format() {
    local node=$1 cid=$2 libs
    shift 2
    libs=$(fetch)
    java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="file:$kafka_dir/log4j2.properties" -Dkafka.logs.dir="$node" \
        -cp "$libs/*" kafka.tools.StorageTool format -t "$cid" -c "$node/server.properties" "$@" >"$node/format.log" 2>&1 ||
        { cat "$node/format.log" >&2; return 1; }
}

# run NODE_DIR: exec the broker in the foreground
run() {
    local node=$1 libs
    libs=$(fetch)
    # shellcheck disable=SC2046
    exec java $(java_opts) ${KAFKA_EXTRA_JAVA_OPTS:-} \
        -Dlog4j2.configurationFile="file:$kafka_dir/log4j2.properties" -Dkafka.logs.dir="$node" \
        -cp "$libs/*" kafka.Kafka "$node/server.properties"
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now
free_port() {
    perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die; print $s->sockport, "\n"'
}

# cluster_id: a random Kafka cluster id (16 bytes, base64url without
# padding; like Kafka's own, never starting with "-", which would read as an
# option)
cluster_id() {
    local id=-
    while [ "${id#-}" != "$id" ]; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    done
    echo "$id"
}

# start DIR [TOPIC:PARTITIONS]...: single node in the background
start() {
    local dir=$1 port cport cid pid t0 i
    shift
    mkdir -p "$dir/node1"
    dir=$(cd "$dir" && pwd)
    port=$(free_port)
    cport=$(free_port)
    while [ "$cport" = "$port" ]; do cport=$(free_port); done
    {
        cat "$kafka_dir/broker.properties"
        cat <<PROPS

process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/node1/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
PROPS
    } >"$dir/node1/server.properties"
    t0=$(date +%s%N)
    cid=$(cluster_id)
    format "$dir/node1" "$cid"
    "$0" run "$dir/node1" >"$dir/node1/stdout.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/node1/kafka.pid"
    for i in $(seq 600); do
        if kcat -L -b "127.0.0.1:$port" -m 1 2>/dev/null | grep -q ' 1 brokers:'; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || { echo "kafka.sh: the broker exited; see $dir/node1/server.log" >&2; tail -n 20 "$dir/node1/stdout.log" >&2; return 1; }
        sleep 0.1
    done
    [ "$i" -lt 600 ] || { echo "kafka.sh: the broker did not answer within 60 s" >&2; return 1; }
    echo "kafka.sh: broker ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms (format + start)" >&2
    local admin=$kafka_dir/kafka_admin
    [ -x "$admin" ] || make -s -C "$kafka_dir" kafka_admin >&2
    for t in "$@"; do
        "$admin" -b "127.0.0.1:$port" create-topic "${t%%:*}" "${t##*:}" 1
    done
    echo "127.0.0.1:$port" >"$dir/bootstrap"
    echo "BOOTSTRAP=127.0.0.1:$port"
}

# stop DIR: stop every node started in DIR
stop() {
    local dir=$1 f pid i
    for f in "$dir"/node*/kafka.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if kill -TERM "$pid" 2>/dev/null; then
            for i in $(seq 300); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        fi
        rm -f "$f"
    done
    return 0
}

cmd=${1:-}
shift || true
case "$cmd" in
    fetch) fetch ;;
    format) format "$@" ;;
    run) run "$@" ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    version) echo "$kafka_version" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
