#!/usr/bin/env bash
# test/demo.sh: see outbox_kafka publish events, from scratch, in well under a
# minute.  Installs what is missing, builds and installs the extension, starts
# a throwaway PostgreSQL server (as an unprivileged user) and a local Apache
# Kafka broker (fetched from Maven Central on first use, then cached), writes
# some orders, shows the events as Kafka has them and outbox.status, then
# cleans everything up.  It says which broker it used.
#
# Usage (fresh Debian 12, as root):   bash test/demo.sh
# With the quick mock broker:         OUTBOX_DEMO_BROKER=mock bash test/demo.sh
# With your own Kafka cluster:        KAFKA_BOOTSTRAP_SERVERS=host:9092 bash test/demo.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
run_user=${OUTBOX_TEST_USER:-postgres}
pgbin=/usr/lib/postgresql/15/bin
# shellcheck source=test/install_deps.sh
source "$here/test/install_deps.sh"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "installing what is missing and building"
install_deps
build_and_install "$here"

work=$(mktemp -d /tmp/outbox_kafka_demo.XXXXXX)
chown "$run_user" "$work"
mock_pid=
trap 'remove_throwaway "$work"' EXIT

if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    bootstrap=$KAFKA_BOOTSTRAP_SERVERS
    broker_used="your Kafka cluster at $bootstrap"
    step "using the Kafka cluster at $bootstrap"
elif [ "${OUTBOX_DEMO_BROKER:-kafka}" = mock ]; then
    step "starting the local mock Kafka broker (librdkafka's mock cluster)"
    start_mock_broker "$work" --brokers 1 --topic orders.changes:3 --topic order.created:3
    broker_used="the local mock broker (librdkafka's mock cluster) at $bootstrap"
    echo "mock broker at $bootstrap"
else
    step "starting Apache Kafka $(bash "$here/test/kafka/kafka.sh" version) (KRaft, one node, auto-create off)"
    # a quick start matters more than peak throughput here
    KAFKA_JVM_PERFORMANCE_OPTS="-XX:+UseSerialGC -XX:TieredStopAtLevel=1" start_real_broker "$work" orders.changes:3 order.created:3
    broker_used="Apache Kafka $(bash "$here/test/kafka/kafka.sh" version) (single node, local) at $bootstrap"
    echo "Apache Kafka at $bootstrap"
fi

step "starting a throwaway PostgreSQL server with outbox_kafka preloaded"
start_throwaway_server "$work" shop "$bootstrap"
psql() { as_user "$run_user" "$pgbin/psql" -X -q -h "$work" -p "$port" -U postgres "$@"; }
psql -d postgres -c "CREATE DATABASE shop"

step "creating the orders schema, the capture trigger and writing orders"
psql -d shop -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION outbox_kafka;
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2) NOT NULL,
                     status text NOT NULL DEFAULT 'new');
CREATE TRIGGER orders_outbox AFTER INSERT OR UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION outbox.capture('orders.changes', 'id');

-- the business write and its event, in one transaction
BEGIN;
INSERT INTO orders (id, customer_id, amount) VALUES (42, 7, 99.50);
SELECT outbox.enqueue('order.created', jsonb_build_object('orderId', 42, 'amount', 99.50),
                      key => '42', headers => '{"source": "demo"}') AS event_id \gset
COMMIT;

INSERT INTO orders (id, customer_id, amount) VALUES (43, 8, 12.00), (44, 7, 5.25);
UPDATE orders SET status = 'paid' WHERE id = 42;
DELETE FROM orders WHERE id = 44;

-- a rolled-back order is never published
BEGIN;
INSERT INTO orders (id, customer_id, amount) VALUES (99, 1, 1.00);
ROLLBACK;
SQL

step "waiting for the relay to publish"
for _ in $(seq 300); do
    left=$(psql -d shop -At -c "SELECT coalesce(events_published, 0) >= 6 AND pending_events = 0 FROM outbox.status")
    [ "$left" = t ] && break
    sleep 0.1
done
[ "$left" = t ] || { echo "events were not published in time"; tail -n 30 "$work/server.log"; exit 1; }

step "the events in Kafka (topic, partition, offset, key, headers, value)"
for topic in order.created orders.changes; do
    timeout 20 kcat -C -b "$bootstrap" -t "$topic" -o beginning -e -q \
        -f '%t [%p] @%o  key=%k\n  headers: %h\n  value:   %s\n\n'
done

step "outbox.status"
psql -d shop -x -c "SELECT database, state, worker_pid, pending_events, oldest_pending_age,
                           events_published, events_dead_lettered, dead_letters, last_error,
                           last_publish_at, current_table, problem FROM outbox.status"

step "done: server and broker are stopped and removed"
echo "broker used: $broker_used"
