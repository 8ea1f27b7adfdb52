/*-------------------------------------------------------------------------
 *
 * outbox_kafka.h
 *	  Declarations shared by the modules of the outbox_kafka extension.
 *
 * The extension is split by responsibility: settings and module start-up
 * (module.c), shared memory (shmem.c), the enqueue path (enqueue.c,
 * capture.c), the status functions (status.c), and the relay: launcher
 * (launcher.c), per-database worker (worker.c), relay storage access
 * (relay_storage.c) and the Kafka producer (producer.c).
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
	OUTBOX_STATE_STANDBY
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
	pg_atomic_uint32 inject_fatal;	/* test hook: raise a fatal producer
									 * error at the next chance */
} OutboxWorkerSlot;

typedef struct OutboxShared
{
	LWLock	   *lock;			/* protects slot assignment */
	int			nslots;
	OutboxWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} OutboxShared;

/* module.c: settings */
extern char *outbox_databases;
extern char *outbox_bootstrap_servers;
extern char *outbox_producer_properties;
extern int	outbox_batch_size;
extern int	outbox_poll_interval_ms;
extern int	outbox_max_message_bytes;
extern int	outbox_max_retry_time_s;
extern int	outbox_rotation_interval_s;
extern int	outbox_retention_s;
extern int	outbox_shutdown_timeout_ms;
extern int	outbox_max_batch_bytes_kb;
extern int	outbox_stall_timeout_ms;
extern bool outbox_wait_for_standbys;
extern bool outbox_loaded_at_startup;
extern List *outbox_database_list(void);
extern bool outbox_database_listed(const char *dbname);
extern bool outbox_name_in_list(List *names, const char *name);

/* shmem.c */
extern OutboxShared *OutboxShmem;
extern void outbox_shmem_install_hooks(void);
extern OutboxWorkerSlot *outbox_find_slot(Oid dboid);
extern const char *outbox_state_name(OutboxWorkerState state);
extern void outbox_slot_set_state(OutboxWorkerSlot *slot, OutboxWorkerState state);
extern void outbox_slot_set_error(OutboxWorkerSlot *slot, const char *message);
extern void outbox_wake_worker(Oid dboid);

/* enqueue.c */
extern void outbox_validate_topic(const char *topic);
extern void outbox_validate_event_size(bytea *payload, text *key,
									   Size header_bytes);
extern int64 outbox_insert_event(const char *topic, text *key,
								 bytea *payload, char payload_kind,
								 Jsonb *headers);
extern void outbox_register_xact_callback(void);

#endif							/* OUTBOX_KAFKA_H */
