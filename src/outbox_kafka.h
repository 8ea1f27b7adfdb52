/*-------------------------------------------------------------------------
 *
 * outbox_kafka.h
 *	  Declarations shared by the modules of the outbox_kafka extension.
 *
 * The extension is split by responsibility: settings and module start-up
 * (module.c, database_list.c), keeping credentials secret
 * (secret_redaction.c), shared memory (shmem.c), the enqueue path
 * (enqueue.c, capture.c, topic_grant.c), the status functions (status.c,
 * librdkafka_version.c), and the relay (relay.h, relay_worker.h): the
 * launcher (launcher.c); the driver of a database's worker (worker.c)
 * over its batch's chunks (publish.c), held topics and partitions
 * (held_lane.c), the services they share (relay_context.c,
 * chunk_produce.c) and the verdict on a reported event
 * (event_verdict.c); the relay's storage: the batch (relay_batch.c), the
 * event scan (event_scan.c, and its SQL face batch_sql.c), its tables
 * (relay_storage.c, kept_plan.c); and the Kafka producer (producer.c,
 * producer_config.c, error_class.c).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/outbox_kafka.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_KAFKA_H
#define OUTBOX_KAFKA_H

#include "postgres.h"

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/jsonb.h"

/* Kafka's hard limit on topic name length. */
#define OUTBOX_MAX_TOPIC_LEN	249

/* Header names starting with this prefix are reserved for the relay. */
#define OUTBOX_RESERVED_HEADER_PREFIX "outbox-"

/*
 * Bytes a Kafka record header takes on the wire besides its name and value:
 * the name and value lengths as zig-zag varints (record format v2), sized
 * as librdkafka 2.0.2 counts them (rd_kafka_header_add()).
 */
#define OUTBOX_VARINT_BYTES(n) \
	((n) < 64 ? 1 : (n) < 8192 ? 2 : (n) < 1048576 ? 3 : (n) < 134217728 ? 4 : 5)
#define OUTBOX_HEADER_WIRE_BYTES(name_len, value_len) \
	(OUTBOX_VARINT_BYTES(name_len) + (name_len) + \
	 OUTBOX_VARINT_BYTES(value_len) + (value_len))

/*
 * Worst case of the headers the relay adds to every message (producer.c),
 * framing included: outbox-id (an int8 in decimal, at most 20 characters),
 * outbox-event-id (a UUID, 36 characters), outbox-created-at (ISO 8601 with zone; 32 characters today, 48 allowed
 * for years past 9999 and offsets with seconds), content-type:
 * application/json, and outbox-requeued-from (an int8) for re-queued dead
 * letters.  Every header the relay adds must be counted here, so that an
 * event outbox.enqueue accepts is never refused for size later.
 */
#define OUTBOX_RELAY_HEADER_BYTES \
	(OUTBOX_HEADER_WIRE_BYTES(9, 20) +		/* outbox-id */ \
	 OUTBOX_HEADER_WIRE_BYTES(15, 36) +	/* outbox-event-id */ \
	 OUTBOX_HEADER_WIRE_BYTES(17, 48) +	/* outbox-created-at */ \
	 OUTBOX_HEADER_WIRE_BYTES(12, 16) +	/* content-type */ \
	 OUTBOX_HEADER_WIRE_BYTES(20, 20))	/* outbox-requeued-from */

/*
 * Framing of one record around its key, value and headers.  librdkafka
 * refuses a message when RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD (36: length,
 * attributes, timestamp and offset deltas, key and value lengths, header
 * count, all as maximal varints) plus key, value and serialized headers
 * exceeds message.max.bytes (rdkafka_msg.c, rd_kafka_msg_new0); the broker
 * checks a whole record batch, whose v2 header adds 61 bytes
 * (RD_KAFKAP_MSGSET_V2_SIZE) when the record travels alone.
 */
#define OUTBOX_RECORD_OVERHEAD_BYTES	(36 + 61)

/*
 * What outbox_kafka.max_message_bytes is compared with besides the key,
 * the value and the caller's headers (with their framing).
 */
#define OUTBOX_MESSAGE_OVERHEAD_BYTES \
	(OUTBOX_RELAY_HEADER_BYTES + OUTBOX_RECORD_OVERHEAD_BYTES)

/* Payload kinds stored in outbox.event.payload_kind. */
#define OUTBOX_PAYLOAD_JSON		'j'
#define OUTBOX_PAYLOAD_TEXT		't'
#define OUTBOX_PAYLOAD_BYTES	'b'

/* Size of the last-error buffer kept in shared memory. */
#define OUTBOX_ERROR_LEN		256

/*
 * Worker states, as shown by outbox.status.  Keep outbox_state_name() in
 * shmem.c in step with this list.
 */
typedef enum OutboxWorkerState
{
	OUTBOX_STATE_STOPPED = 0,
	OUTBOX_STATE_STARTING,
	OUTBOX_STATE_IDLE,
	OUTBOX_STATE_PUBLISHING,
	OUTBOX_STATE_BACKING_OFF,
	OUTBOX_STATE_BROKER_UNREACHABLE,
	OUTBOX_STATE_MISCONFIGURED,
	OUTBOX_STATE_WAITING_FOR_EXTENSION,
	OUTBOX_STATE_STANDBY,
	OUTBOX_STATE_HOLDING		/* nothing else to do, but held topics'
								 * events wait */
} OutboxWorkerState;

/*
 * One slot per database relay.  dboid and latch are written by the worker
 * that owns the slot (under OutboxShared->lock) and read without a lock by
 * committing backends, which only ever call SetLatch on the latch.  The
 * text and timestamp fields are protected by the spinlock; the counters are
 * atomics so the worker can bump them without any lock.
 */
typedef struct OutboxWorkerSlot
{
	Oid			dboid;			/* database served; InvalidOid if free */
	pid_t		pid;			/* worker pid, 0 if none is running */
	Latch	   *latch;			/* worker's latch, NULL if none */
	slock_t		mutex;			/* protects the fields below */
	OutboxWorkerState state;
	TimestampTz started_at;
	TimestampTz last_error_at;
	TimestampTz last_publish_at;
	char		last_error[OUTBOX_ERROR_LEN];
	pg_atomic_uint64 events_published;
	pg_atomic_uint64 events_retried;
	pg_atomic_uint64 events_dead_lettered;
	pg_atomic_uint64 events_failed;
	pg_atomic_uint32 current_table;	/* event table taking new rows, plus
										 * one; 0 while unknown */
	pg_atomic_uint64 commits;	/* enqueuing commits so far (see
								 * outbox_wake_worker) */
	pg_atomic_uint32 listening; /* the worker wants its latch set at
								 * commit; 0 while a chunk is in flight */
} OutboxWorkerSlot;

typedef struct OutboxShared
{
	LWLock	   *lock;			/* protects slot assignment */

	/*
	 * Transactions that enqueued and commit with synchronous_commit = off
	 * (their commit can be visible before it is on disk): how many are
	 * between pre-commit and commit, and the end of the latest commit
	 * record of one of them.  See outbox_async_commits_end().
	 */
	pg_atomic_uint32 async_committing;
	pg_atomic_uint64 async_commit_end;
	Latch	   *launcher_latch; /* the launcher's latch, NULL if none runs */
	int			nslots;
	OutboxWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} OutboxShared;

/* module.c: settings */
extern char *outbox_databases;
extern char *outbox_bootstrap_servers;
extern char *outbox_producer_properties;
extern char *outbox_producer_properties_file;
extern bool outbox_allow_unsafe_producer_properties;
extern int	outbox_batch_size;
extern int	outbox_poll_interval_ms;
extern int	outbox_max_message_bytes;
extern int	outbox_max_retry_time_s;
extern int	outbox_rotation_interval_s;
extern int	outbox_retention_s;
extern int	outbox_shutdown_timeout_ms;
extern int	outbox_max_batch_bytes_kb;
extern int	outbox_stall_timeout_ms;
extern int	outbox_progress_save_interval_ms;
extern bool outbox_wait_for_standbys;
extern bool outbox_loaded_at_startup;


/* step_error.c */
extern ErrorData *outbox_abort_failed_step(void);
extern char *outbox_failed_step_message(ErrorData *edata, int retry_ms);

/* backoff.c */
extern int	outbox_backoff_next(int previous_ms, int first_ms, int max_ms);
extern int	outbox_backoff_after(int failures, int first_ms, int max_ms);
extern TimestampTz outbox_backoff_schedule(int *backoff_ms, int first_ms, int max_ms);
extern long outbox_ms_until(TimestampTz t);

/* slot_error.c */
extern void outbox_slot_store_error(slock_t *mutex, char *last_error, int size,
									TimestampTz *last_error_at, const char *message);

/* database_guard.c */
extern void outbox_guard_database(uint32 key1, uint32 key2, const char *who,
								  const char *dbname);

/* database_list.c */
extern List *outbox_database_list(void);
extern bool outbox_database_listed(const char *dbname);
extern bool outbox_name_in_list(List *names, const char *name);

/* shmem.c */
extern OutboxShared *OutboxShmem;
extern void outbox_shmem_install_hooks(void);
extern OutboxWorkerSlot *outbox_find_slot(Oid dboid);
extern const char *outbox_state_name(OutboxWorkerState state);
extern bool outbox_state_flows(OutboxWorkerState state);
extern void outbox_slot_set_state(OutboxWorkerSlot *slot, OutboxWorkerState state);
extern void outbox_slot_set_error(OutboxWorkerSlot *slot, const char *message);
extern void outbox_slot_clear_error(OutboxWorkerSlot *slot);
extern void outbox_wake_worker(Oid dboid);
extern void outbox_set_launcher_latch(Latch *latch);
extern void outbox_async_commit_begin(void);
extern void outbox_async_commit_end(XLogRecPtr commit_end);
extern XLogRecPtr outbox_async_commits_end(void);

/* enqueue.c */
extern void outbox_validate_topic(const char *topic);
extern void outbox_validate_event_size(bytea *payload, text *key,
									   Size header_bytes);
extern int64 outbox_insert_event(const char *topic, text *key,
								 bytea *payload, char payload_kind,
								 Jsonb *headers);
extern void outbox_register_xact_callback(void);
extern const char *outbox_to_utf8(const char *s, int len, int *out_len,
								  const char *what);
extern bytea *outbox_payload_to_utf8(bytea *payload);
extern Jsonb *outbox_headers_to_utf8(Jsonb *headers);

#endif							/* OUTBOX_KAFKA_H */
