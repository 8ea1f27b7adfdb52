/*-------------------------------------------------------------------------
 *
 * inbox.h
 *	  Declarations shared by the files of the inbox: Kafka messages applied
 *	  to PostgreSQL exactly once by a SQL handler (docs/inbox.md).
 *
 * Files call downwards only: inbox_worker.c (the driver) calls
 * inbox_consumer.c (the only code using librdkafka's consumer API),
 * inbox_apply.c (the transaction of one batch), inbox_storage.c (the
 * subscriptions, offsets and de-duplication tables) and inbox_shmem.c (the
 * worker's slot); inbox_sql.c (SQL-callable functions) calls inbox_shmem.c.
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

/* Longest subscription name (the SQL check says the same). */
#define INBOX_NAME_LEN			64
/* Partitions whose high watermark shared memory keeps, per database. */
#define INBOX_MAX_WATERMARKS	256
#define INBOX_ERROR_LEN			256

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

/* One subscription, as the worker read it. */
typedef struct InboxSubscription
{
	char	   *name;
	char	   *topic;
	Oid			handler;
	Oid			owner;
	int			max_attempts;
	bool		hold;			/* on_poison = 'hold' */
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

/* module.c: settings */
extern int	outbox_inbox_batch_size;
extern int	outbox_inbox_dedupe_window_s;

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
extern void inbox_storage_rotate_dedupe(int window_s);

/* inbox_apply.c */
extern List *inbox_apply_batch(InboxSubscription *sub, List *positions,
							   InboxMessage *messages, int nmessages);
extern void inbox_apply_forget_plans(void);

#endif							/* OUTBOX_INBOX_H */
