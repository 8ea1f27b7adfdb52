/*-------------------------------------------------------------------------
 *
 * relay_worker.h
 *	  State of one database's relay worker and the functions the files of
 *	  its loop offer each other.  They call downwards only: worker.c (the
 *	  driver: process, loop, producer lifecycle, shutdown) calls publish.c
 *	  (the batch's chunks), which calls held_lane.c (held topics); all of
 *	  them use chunk_produce.c and relay_context.c (the state below and
 *	  the services they share).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/relay_worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_RELAY_WORKER_H
#define OUTBOX_RELAY_WORKER_H

#include "relay.h"

/*
 * A topic, or one partition of it, held aside while Kafka refuses it (see
 * held_lane.c).
 */
typedef struct HeldTopic
{
	char	   *topic;
	int32		partition;		/* -1: the whole topic */
	char		reason[OUTBOX_ERROR_LEN];
	const char *error_class;	/* outbox_error_class_name() or "stalled" */
	TimestampTz refused_since;	/* Kafka refuses it (class "topic refused")
								 * at every attempt since then; 0 if its
								 * last failure was not a refusal.  Its
								 * queue is dead-lettered once this is
								 * older than max_retry_time */
	TimestampTz held_since;
	TimestampTz next_attempt_at;
	int			backoff_ms;
	int			attempts;
} HeldTopic;

typedef struct RelayWorker
{
	Oid			dboid;
	char	   *dbname;
	OutboxWorkerSlot *slot;
	OutboxProducer *producer;
	char	   *producer_settings;	/* settings the producer was built from */
	bool		producer_stale;		/* settings changed: rebuild now */
	OutboxChunk *chunk;			/* of the open batch, being published */
	OutboxChunk *ahead;			/* read ahead while chunk is delivered */
	OutboxChunk *lane;			/* head of one held topic's queue */
	List	   *pinned;			/* recorded chunks whose held events are
								 * still in flight */
	List	   *held;			/* HeldTopic *, all in TopMemoryContext */
	bool		held_loaded;	/* held read from outbox.held_topic */
	int			backoff_ms;
	TimestampTz retry_at;		/* no publishing of chunk before this */
	TimestampTz next_maintenance;
	TimestampTz stall_probed_at;	/* last cluster probe for a stall */
	uint64		commits_looked_at;	/* slot->commits when new events were
									 * last looked for */
	uint64		commits_waited_at;	/* slot->commits when the worker last
									 * went to sleep */
	bool		commits_seen;	/* the latch (or the poll fallback) woke us
								 * since the last look for new events */
	WaitEventSet *wait_set;		/* latch, postmaster death, producer pipe */
	uint32		producer_generation;	/* bumped for every new producer */
	int			rebuild_backoff_ms; /* after fatal errors: doubling, reset
									 * once a new producer delivers (worker.c) */
	TimestampTz rebuild_at;		/* no new producer before this */
	char	   *rebuild_reason; /* publish.c or held_lane.c found the
								 * producer fatal: rebuild it (see
								 * relay_request_rebuild) */
	uint32		wait_set_generation;	/* producer_generation of wait_set */
	bool		slow;			/* the last chunk took longer than
								 * stall_timeout to be acknowledged */
	OutboxWorkerState state;
	TimestampTz state_logged_at;
	bool		extension_ready;	/* extension seen installed */
	bool		stopping;		/* in shutdown_relay() */
	MemoryContext loop_cxt;		/* reset at every pass of the loop */
	TimestampTz progress_saved_at;	/* when progress was last saved to
									 * outbox.relay_state */
	TimestampTz fetch_not_before;	/* gathering commits until then: see
									 * gather_until() in publish.c */
} RelayWorker;

extern RelayWorker relay;

/* relay_context.c: the relay's state and the services its parts share */
extern void relay_enter_state(OutboxWorkerState state, int elevel,
							  const char *detail);
extern void relay_begin_step(const char *activity);
extern void relay_end_step(void);
extern bool relay_new_commits(void);
extern void relay_look_for_commits(void);
extern void relay_request_rebuild(const char *reason);
extern void relay_note_progress(void);

/* chunk_produce.c */
extern int	relay_produce(OutboxChunk *chunk, OutboxPartitionHeldFn held);
extern void relay_forget_in_flight(OutboxChunk *chunk);
extern long chunk_ms_until_stalled(OutboxChunk *chunk);

/* publish.c */
extern long relay_publish(void);
extern void relay_record_progress(bool fetch);
extern void relay_save_progress(void);
extern long relay_save_progress_at_most_every(bool force);
extern bool relay_gathering(void);

/* held_lane.c */
extern void held_load(void);
extern void held_forget(void);
extern HeldTopic *held_find(const char *topic, int32 partition);
extern bool held_partition(const char *topic, int32 partition);
extern int32 held_route(const OutboxEvent *event, const char **reason,
						const char **cls);
extern HeldTopic *held_hold(const char *topic, int32 partition,
							const char *reason, const char *error_class,
							bool refused);
extern HeldTopic *held_hold_failed(const OutboxEvent *event,
								   OutboxVerdict verdict);
extern HeldTopic *held_hold_stalled(const char *topic, int32 partition);
extern void held_hold_behind(const OutboxEvent *event);
extern bool held_unsettled(OutboxChunk *chunk);
extern void held_pin_chunk(OutboxChunk *chunk);
extern void held_release_pinned(void);
extern long held_run_lane(void);
extern void held_drop_all_chunks(void);

#endif							/* OUTBOX_RELAY_WORKER_H */
