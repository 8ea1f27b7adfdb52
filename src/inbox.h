/*-------------------------------------------------------------------------
 *
 * inbox.h
 *	  Declarations shared by the files of the inbox: Kafka messages applied
 *	  to PostgreSQL exactly once by a SQL handler (docs/inbox.md).
 *
 * Files call downwards only: inbox_worker.c (the driver) calls
 * inbox_consumer.c (the only code using librdkafka's consumer API),
 * inbox_held_retry.c (the retries of held keys), inbox_apply.c (the
 * transaction of one batch), inbox_storage.c (the subscriptions, offsets
 * and rewinds), inbox_dedupe.c (the de-duplication tables: lookups,
 * records, rotation; it calls nothing of the inbox) and inbox_shmem.c
 * (the worker's slot); inbox_apply.c and inbox_held_retry.c call
 * inbox_dedupe.c, inbox_held.c (messages set aside per key) and
 * inbox_dlq.c (the Kafka dead-letter topic);
 * inbox_sql.c (SQL-callable functions) calls inbox_shmem.c and inbox_dlq.c.
 * inbox_message.c (a message as the columns of outbox.inbox_message) is
 * called by inbox_apply.c and inbox_held.c and calls nothing of the inbox.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_INBOX_H
#define OUTBOX_INBOX_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/hsearch.h"

/* Longest subscription name (the SQL check says the same). */
#define INBOX_NAME_LEN			64
/* Partitions whose high watermark shared memory keeps, per database. */
#define INBOX_MAX_WATERMARKS	256
#define INBOX_ERROR_LEN			256
/* Back-off of a failed message: from MIN, doubling per attempt, to MAX. */
#define INBOX_BACKOFF_MIN_MS	100
#define INBOX_BACKOFF_MAX_MS	30000

/* What the inbox worker of a database is doing, as inbox_status shows it. */
typedef enum InboxState
{
	INBOX_STATE_STOPPED = 0,
	INBOX_STATE_STARTING,
	INBOX_STATE_IDLE,			/* no subscriptions */
	INBOX_STATE_CONSUMING,
	INBOX_STATE_BACKING_OFF,	/* after an error, retrying soon */
	INBOX_STATE_MISCONFIGURED,
	INBOX_STATE_WAITING_FOR_EXTENSION,
	INBOX_STATE_STANDBY
} InboxState;

typedef struct InboxWatermark
{
	char		subscription[INBOX_NAME_LEN];
	int32		partition;
	int64		high;			/* -1 while unknown */
} InboxWatermark;

/* The shared-memory slot of one database's inbox worker. */
typedef struct InboxSlot
{
	Oid			dboid;			/* InvalidOid if free */
	pid_t		pid;			/* 0 if no worker runs */
	slock_t		mutex;			/* protects everything below */
	InboxState	state;
	TimestampTz last_error_at;
	char		last_error[INBOX_ERROR_LEN];
	int			nwatermarks;
	InboxWatermark watermarks[INBOX_MAX_WATERMARKS];
} InboxSlot;

/* One consumed message, copied out of librdkafka's memory. */
typedef struct InboxMessage
{
	int32		partition;
	int64		offset;
	char	   *key;			/* NULL if none */
	int			key_len;
	char	   *value;			/* NULL if none */
	int			value_len;
	char	   *headers_json;	/* a JSON object, or NULL without headers */
	char	   *dedupe_key;		/* see inbox_consumer.c */
	TimestampTz timestamp;		/* 0 if Kafka gave none */
} InboxMessage;

/*
 * The columns of outbox.inbox_message, as inbox_message_values() and
 * inbox_message_args() (inbox_apply.c) give them, and their types.
 */
#define INBOX_MESSAGE_COLUMNS	8
#define INBOX_MESSAGE_ARGTYPES	TEXTOID, TEXTOID, INT4OID, INT8OID, BYTEAOID, \
	BYTEAOID, JSONBOID, TIMESTAMPTZOID

/* One subscription, as the worker read it. */
typedef struct InboxSubscription
{
	char	   *name;
	char	   *topic;
	Oid			handler;
	Oid			owner;
	int			max_attempts;
	bool		hold;			/* on_poison = 'hold' */
	bool		hold_key;		/* on_poison = 'hold_key' */
	char	   *dead_letter_topic;	/* NULL if none */
	char	   *signature;		/* all of the above, to notice changes */
} InboxSubscription;

/* Where one partition of a subscription stands, as stored. */
typedef struct InboxPosition
{
	int32		partition;
	int64		next_offset;
	int			attempts;		/* failed attempts of the message there */
} InboxPosition;

/* What applying a batch did to one partition (inbox_apply.c). */
typedef struct InboxPartitionResult
{
	int32		partition;
	int64		next_offset;	/* offset to consume from next */
	bool		stopped;		/* a message failed: wait, then retry at
								 * next_offset */
	bool		transient;		/* it failed for a reason not its own */
	int			attempts;		/* failed attempts of that message */
} InboxPartitionResult;

/* A rewind by timestamp not resolved yet (outbox.inbox_rewind_request). */
typedef struct InboxRewindRequest
{
	int32		partition;		/* -1: every partition */
	TimestampTz at;
	char	   *requested_at;	/* as text, to delete exactly this request */
} InboxRewindRequest;

/* The held keys of one batch (inbox_held.c). */
typedef struct InboxHeldSet InboxHeldSet;

/* The de-duplication work of one transaction (inbox_dedupe.c). */
typedef struct InboxDedupe InboxDedupe;

/* module.c: settings */
extern int	outbox_inbox_batch_size;
extern int	outbox_inbox_dedupe_window_s;
extern char *outbox_consumer_properties;

/*
 * inbox_backoff_delay: the wait in ms before the next try after attempts
 * failures (attempts >= 1): INBOX_BACKOFF_MIN_MS doubled per attempt,
 * capped at INBOX_BACKOFF_MAX_MS (backoff.c decides; the caller includes
 * outbox_kafka.h).
 */
#define inbox_backoff_delay(attempts) \
	outbox_backoff_after((attempts), INBOX_BACKOFF_MIN_MS, INBOX_BACKOFF_MAX_MS)

/* inbox_shmem.c */
extern void inbox_shmem_install_hooks(void);
extern InboxSlot *inbox_claim_slot(Oid dboid);
extern void inbox_release_slot(InboxSlot *slot);
extern InboxSlot *inbox_find_slot(Oid dboid);
extern const char *inbox_state_name(InboxState state);
extern void inbox_slot_set_state(InboxSlot *slot, InboxState state);
extern void inbox_slot_set_error(InboxSlot *slot, const char *message);
extern void inbox_slot_set_watermarks(InboxSlot *slot, List *watermarks);

/* inbox_worker.c */
extern PGDLLEXPORT void outbox_inbox_worker_main(Datum main_arg);

/* inbox_storage.c */
extern List *inbox_storage_subscriptions(void);
extern List *inbox_storage_positions(const char *subscription);
extern List *inbox_storage_rewind_requests(const char *subscription);
extern void inbox_storage_rewind_partition(const char *subscription, int32 partition,
										   int64 expected, int64 offset);
extern void inbox_storage_rewind_done(const char *subscription,
									  InboxRewindRequest *request);

/* inbox_dedupe.c */
extern InboxDedupe *inbox_dedupe_begin(InboxSubscription *sub, InboxMessage *messages,
									   int nmessages);
extern bool inbox_dedupe_recorded(InboxDedupe *d, const char *dedupe_key);
extern void inbox_dedupe_add(InboxDedupe *d, const char *dedupe_key);
extern void inbox_dedupe_write(InboxDedupe *d);
extern HTAB *inbox_dedupe_key_set(InboxMessage *messages, int nmessages);
extern void inbox_dedupe_rotate(int window_s);
extern void inbox_dedupe_forget(void);

/* inbox_held.c */
extern InboxHeldSet *inbox_held_load(InboxSubscription *sub);
extern bool inbox_held_waits(InboxHeldSet *set, InboxMessage *msg);
extern bool inbox_held_any(InboxHeldSet *set);
extern void inbox_held_set_aside(InboxHeldSet *set, InboxSubscription *sub,
								 InboxMessage *msg, ErrorData *edata, int attempts);

/* inbox_held_retry.c */
extern long inbox_held_retry(InboxSubscription *sub);

/* inbox_dlq.c */
extern void inbox_dlq_check_subscribe(const char *topic, Oid outbox_owner);
extern void inbox_dlq_enqueue(InboxSubscription *sub, InboxMessage *msg,
							  ErrorData *edata, int attempts);

/* inbox_message.c */
extern void inbox_message_values(InboxSubscription *sub, InboxMessage *msg,
								 Datum *values, bool *isnull);
extern void inbox_message_args(InboxSubscription *sub, InboxMessage *msg,
							   Datum *values, char *nulls);

/* inbox_apply.c */
extern List *inbox_apply_batch(InboxSubscription *sub, List *positions,
							   InboxMessage *messages, int nmessages);
extern void inbox_apply_forget_plans(void);
extern ErrorData *inbox_apply_message(InboxSubscription *sub, InboxMessage *msg);
extern bool inbox_apply_error_is_transient(int sqlerrcode);

#endif							/* OUTBOX_INBOX_H */
