/*-------------------------------------------------------------------------
 *
 * relay.h
 *	  Declarations of the relay: launcher, per-database worker, relay
 *	  storage access and the Kafka producer.
 *
 * librdkafka is included only where the relay talks to it: producer.c (the
 * producer), producer_config.c (its configuration) and error_class.c (the
 * classes of its error codes); the rest of the relay sees events, delivery
 * outcomes and error classes defined here.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/relay.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_RELAY_H
#define OUTBOX_RELAY_H

#include "outbox_kafka.h"

#include "access/xlogdefs.h"
#include "executor/spi.h"
#include "utils/uuid.h"

#include "error_class.h"

/* What became of one event handed to the producer. */
typedef enum OutboxDelivery
{
	OUTBOX_DELIVERY_NONE = 0,	/* not produced yet, or to be produced again */
	OUTBOX_DELIVERY_IN_FLIGHT,	/* produced, no delivery report yet */
	OUTBOX_DELIVERY_ACKED,		/* acknowledged by the cluster */
	OUTBOX_DELIVERY_FAILED,		/* delivery report carried an error */
	OUTBOX_DELIVERY_DEAD		/* to be moved to outbox.dead_letters */
} OutboxDelivery;

typedef struct OutboxChunk OutboxChunk;

/* One event of a chunk being published, and its delivery state. */
typedef struct OutboxEvent
{
	int64		id;
	char	   *topic;
	char	   *key;			/* NULL if none */
	int			key_len;
	char	   *payload;		/* NULL for a tombstone */
	int			payload_len;
	char		payload_kind;
	Jsonb	   *headers;		/* NULL if none */
	TimestampTz created_at;
	bool		has_uuid;		/* false for events enqueued before 0.4 */
	pg_uuid_t	event_uuid;		/* published as outbox-event-id */

	OutboxChunk *chunk;			/* the chunk this event belongs to */
	OutboxDelivery delivery;
	bool		held;			/* its topic is held: the event goes (or
								 * went) to outbox.held_event */
	int			error;			/* librdkafka error code of the last failure */
	int			attempts;		/* times produced */
	bool		alone;			/* to be produced alone, nothing else of
								 * its partition with it (its batch was
								 * refused for one of its records) */
	int32		partition;		/* the partition it was last produced to, as
								 * producer.c chose it; -1 if left to
								 * librdkafka (partition count not known) */
	void	   *producer_topic; /* producer.c's state of its topic, for the
								 * delivery report */
} OutboxEvent;

/*
 * A chunk of events read in id order, from the open batch (or, for the
 * held lane, from one held topic's queue).  Its memory context holds the
 * events and their data, which librdkafka reads without copying: it is
 * freed only when nothing of it is in flight.
 */
struct OutboxChunk
{
	MemoryContext cxt;
	OutboxEvent *events;
	int			nevents;
	int			in_flight;		/* produced, awaiting delivery reports */
	int			recorded;		/* head of events already recorded */
	bool		batch_completed;	/* recording it completed its batch */
	TimestampTz produced_at;	/* when events were last handed over */
	int			acked;			/* events acknowledged since produced */
	bool		queue_full;		/* the last produce stopped at a full
								 * local queue */
	bool		deferred;		/* the last produce left events waiting for
								 * the first acknowledgement of a new
								 * producer on their partition */
	TimestampTz evidence_at;	/* when the cluster was first seen
								 * answering while events of this chunk
								 * were in flight (an ack of it, or a
								 * metadata probe); 0 if not yet */
	XLogRecPtr	durable_lsn;	/* publish only once WAL is flushed (and,
								 * if asked, confirmed by standbys) to here */
	char	   *lane_topic;		/* held lane: the topic it serves */
	int32		lane_partition; /* and the partition, -1 for the whole topic */
};

typedef struct OutboxProducer OutboxProducer;

/* What becomes of an event once its delivery is reported (event_verdict.c). */
typedef enum OutboxVerdict
{
	OUTBOX_VERDICT_WAIT,		/* not produced, or not reported yet */
	OUTBOX_VERDICT_ACKED,		/* published */
	OUTBOX_VERDICT_RETRY,		/* produce it again, charging nobody */
	OUTBOX_VERDICT_RETRY_ALONE, /* its batch was refused for one record,
								 * maybe not this one: produce it alone */
	OUTBOX_VERDICT_HOLD_TOPIC,	/* Kafka refuses its topic: hold that */
	OUTBOX_VERDICT_HOLD_PARTITION,	/* its partition is unavailable: hold it */
	OUTBOX_VERDICT_DEAD			/* never deliverable: dead-letter it */
} OutboxVerdict;

/* event_verdict.c */
extern OutboxVerdict outbox_event_verdict(const OutboxEvent *event);

/* launcher.c */
extern void outbox_register_launcher(void);
extern PGDLLEXPORT void outbox_launcher_main(Datum main_arg);

/* worker.c */
extern PGDLLEXPORT void outbox_worker_main(Datum main_arg);

/* kept_plan.c */
extern SPIPlanPtr outbox_keep_plan(SPIPlanPtr *plan, const char *sql,
								   int nargs, Oid *argtypes);

/* relay_storage.c: the relay's reads and writes of its tables */
extern char *outbox_storage_extension_version(void);
extern OutboxChunk *outbox_chunk_create(void);
extern void outbox_chunk_reset(OutboxChunk *chunk);
extern void outbox_chunk_free(OutboxChunk *chunk);
extern void outbox_storage_fetch_chunk(OutboxChunk *chunk, int max_events,
									   int64 max_bytes, int64 after_id);
/*
 * the queue a held event goes to: the partition held (-1: its whole
 * topic), and why it is held (and the class of it)
 */
typedef int32 (*OutboxHeldRouteFn) (const OutboxEvent *event,
									const char **reason, const char **cls);
extern bool outbox_event_resolved(OutboxEvent *event);
extern int	outbox_chunk_resolved_head(OutboxChunk *chunk);
extern bool outbox_chunk_head_needs_storage(OutboxChunk *chunk, int resolved);
extern void outbox_storage_finish_chunk(OutboxChunk *chunk, int resolved,
										bool write,
										OutboxHeldRouteFn route_fn);
extern int	outbox_storage_maintain(void);
/* one row of outbox.held_topic, as outbox_storage_held_topics() returns it */
typedef struct OutboxHeldTopicRow
{
	char	   *topic;
	int32		partition;		/* -1: the whole topic */
	TimestampTz held_since;
	char	   *reason;
	char	   *error_class;
} OutboxHeldTopicRow;

extern List *outbox_storage_held_topics(void);
extern void outbox_storage_fetch_held(OutboxChunk *chunk, const char *topic,
									  int32 partition, int max_events,
									  int64 max_bytes);
extern bool outbox_storage_release_held(const char *topic, int32 partition,
										List *ids, bool release);
extern void outbox_storage_note_held_attempt(const char *topic, int32 partition,
											 const char *reason,
											 const char *error_class);
extern int64 outbox_storage_dead_letter_held(const char *topic, int32 partition,
											 const char *error, int attempts,
											 List *ids);

/* event_scan.c: the relay's reads of the event tables, by index */
typedef struct OutboxBatchBounds
{
	int64		first_id;
	int64		last_id;
	int64		events;			/* 0: no batch (the ids are then 0) */
} OutboxBatchBounds;

/*
 * takes one event: id, topic, key, payload, payload_kind, headers,
 * created_at, event_uuid, txid
 */
typedef void (*OutboxEventEmitFn) (void *arg, Datum *values, bool *nulls);

extern void outbox_scan_bounds(Datum prev_tick, Datum tick,
							   OutboxBatchBounds *bounds, int keep_events,
							   int64 max_bytes);
extern void outbox_scan_events(Datum prev_tick, Datum tick, int64 after_id,
							   int64 last_id, int max_events, int64 max_bytes,
							   OutboxEventEmitFn emit, void *arg);

/* relay_batch.c: the open batch, in memory, saved to outbox.relay_state */
extern void outbox_batch_forget(void);
extern bool outbox_batch_unsaved(void);
extern bool outbox_batch_takes_new_tick(void);
extern bool outbox_batch_open(int keep_events, int64 keep_bytes);
extern void outbox_batch_fetch_args(Datum *values, int64 after_id);
extern bool outbox_batch_advance(int64 up_to_id, int64 events);
extern void outbox_batch_save(void);

/* producer.c */
extern OutboxProducer *outbox_producer_create(const char *client_id,
											  char *errbuf, size_t errbuf_size);
extern void outbox_producer_destroy(OutboxProducer *producer, int flush_ms);
/* is partition of topic held aside (see held_lane.c)? */
typedef bool (*OutboxPartitionHeldFn) (const char *topic, int32 partition);
extern int	outbox_producer_place(OutboxProducer *producer, OutboxEvent *event,
								  OutboxPartitionHeldFn held);
extern int	outbox_producer_send(OutboxProducer *producer, OutboxChunk *chunk,
								 OutboxEvent *event);
extern void outbox_producer_serve(OutboxProducer *producer);
extern void outbox_producer_push(OutboxProducer *producer);
extern double outbox_producer_linger_ms(OutboxProducer *producer);
extern int	outbox_producer_wake_fd(OutboxProducer *producer);
extern int	outbox_producer_last_error(OutboxProducer *producer, char *errbuf,
									   size_t errbuf_size);
extern bool outbox_producer_cluster_answers(OutboxProducer *producer,
											int timeout_ms);
extern int	outbox_producer_take_fatal(OutboxProducer *producer,
									   char *errbuf, size_t errbuf_size);
extern bool outbox_producer_brokers_down(OutboxProducer *producer);
extern bool outbox_producer_delivered(OutboxProducer *producer);
extern int	outbox_producer_leaderless(OutboxProducer *producer, const char *topic,
									   int32 *partitions, int max);
extern bool outbox_error_is_queue_full(int error);
extern bool outbox_error_is_fatal(int error);
extern const char *outbox_error_text(int error);

#endif							/* OUTBOX_RELAY_H */
