# Makefile for outbox_kafka (PGXS)
#
#   make && make install           build and install the extension
#   make RDKAFKA_PREFIX=/opt/librdkafka && make RDKAFKA_PREFIX=... install
#                                  the same against the librdkafka installed
#                                  under that prefix (default: the system's)
#   make installcheck              regression + isolation + TAP tests
#                                  (needs a temp instance; see test/run.sh)

MODULE_big = outbox_kafka
OBJS = \
	$(WIN32RES) \
	src/backoff.o \
	src/batch_sql.o \
	src/capture.o \
	src/chunk_produce.o \
	src/consumer_config.o \
	src/database_list.o \
	src/enqueue.o \
	src/error_class.o \
	src/event_verdict.o \
	src/event_scan.o \
	src/held_lane.o \
	src/inbox_apply.o \
	src/inbox_consumer.o \
	src/inbox_dedupe.o \
	src/inbox_dlq.o \
	src/inbox_held.o \
	src/inbox_held_retry.o \
	src/inbox_message.o \
	src/inbox_shmem.o \
	src/inbox_sql.o \
	src/inbox_storage.o \
	src/inbox_worker.o \
	src/kept_plan.o \
	src/launcher.o \
	src/librdkafka_version.o \
	src/module.o \
	src/producer.o \
	src/producer_config.o \
	src/publish.o \
	src/relay_batch.o \
	src/relay_context.o \
	src/relay_storage.o \
	src/secret_redaction.o \
	src/shmem.o \
	src/slot_error.o \
	src/database_guard.o \
	src/status.o \
	src/step_error.o \
	src/topic_grant.o \
	src/worker.o

EXTENSION = outbox_kafka
DATA = $(wildcard sql/outbox_kafka--*.sql)
PGFILEDESC = "outbox_kafka - transactional outbox published to Apache Kafka"

# the version of the SQL objects this library serves: the control file's
SCHEMA_VERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(dir $(lastword $(MAKEFILE_LIST)))outbox_kafka.control)
PG_CPPFLAGS = -I$(srcdir)/src -DOUTBOX_SCHEMA_VERSION='"$(SCHEMA_VERSION)"'

PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -Wno-cast-function-type
SHLIB_LINK = -lrdkafka

# RDKAFKA_PREFIX: build against the librdkafka installed under this prefix
# (test/librdkafka.sh builds them).  Its header is a system include, so that
# our -Werror does not trip on warnings in librdkafka's own header, and the
# rpath makes the server load that library, not the system's.
include $(dir $(firstword $(MAKEFILE_LIST)))src/rdkafka.mk
PG_CPPFLAGS += $(RDKAFKA_CPPFLAGS)
PG_LDFLAGS += $(RDKAFKA_LDFLAGS)

# pg_regress reads test/sql/<name>.sql (outputdir first) and compares with
# the top-level expected/<name>.out (inputdir); results go to test/results.
REGRESS = enqueue capture batching maintenance dead_letters status privileges extension
REGRESS_OPTS = --inputdir=. --outputdir=test \
	--temp-instance=test/tmp_check_regress --temp-config=test/regress.conf

ISOLATION = batch_visibility rollback_never_batched old_snapshot rotation_race
ISOLATION_OPTS = --inputdir=. --outputdir=test/output_iso \
	--temp-instance=test/tmp_check_iso --temp-config=test/regress.conf

# pg_isolation_regress reads <outputdir>/specs, then <inputdir>/specs: put
# a copy of test/specs where it looks.
REGRESS_PREP = isolation-specs

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = test/results test/output_iso test/tmp_check_regress test/tmp_check_iso \
	test/regression.diffs test/regression.out tmp_check

# no JIT bitcode: it would need clang at build time for nothing
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: isolation-specs
isolation-specs:
	rm -rf test/output_iso/specs
	mkdir -p test/output_iso
	cp -r test/specs test/output_iso/specs

# PGXS does not track header dependencies: rebuild everything when a shared
# header changes (a changed shared-memory layout must never be half-built).
$(filter src/%.o,$(OBJS)): outbox_kafka.control src/librdkafka_version.h src/outbox_kafka.h src/relay.h src/relay_worker.h src/error_class.h src/producer_config.h src/pg_compat.h src/inbox.h src/inbox_consumer.h src/consumer_config.h
