/*-------------------------------------------------------------------------
 *
 * relay.h
 *	  Declarations of the relay: launcher, per-database worker, relay
 *	  storage access and the Kafka producer.
 *
 * Only producer.c includes librdkafka; the rest of the relay sees events,
 * delivery outcomes and error classes defined here.
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

/* What became of one event handed to the producer. */
typedef enum OutboxDelivery
{
	OUTBOX_DELIVERY_NONE = 0,	/* not produced yet, or to be produced again */
	OUTBOX_DELIVERY_IN_FLIGHT,	/* produced, no delivery report yet */
	OUTBOX_DELIVERY_ACKED,		/* acknowledged by the cluster */
	OUTBOX_DELIVERY_FAILED,		/* delivery report carried an error */
	OUTBOX_DELIVERY_DEAD		/* to be moved to outbox.dead_letters */
} OutboxDelivery;

/* How an error of one message is handled. */
typedef enum OutboxErrorClass
{
	OUTBOX_ERROR_TRANSIENT,		/* cluster trouble: retry, charge nobody */
	OUTBOX_ERROR_TOPIC,			/* topic unknown or not authorised: retry
								 * until outbox_kafka.max_retry_time */
	OUTBOX_ERROR_PERMANENT,		/* this message can never be delivered */
	OUTBOX_ERROR_FATAL			/* the producer is unusable: recreate it */
} OutboxErrorClass;

/* One event of the chunk being published, and its delivery state. */
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

	OutboxDelivery delivery;
	int			error;			/* librdkafka error code of the last failure */
	int			attempts;		/* times produced */
	TimestampTz first_failure;	/* when it first failed for topic reasons */
} OutboxEvent;

/* The chunk being published; lives in its own memory context. */
typedef struct OutboxChunk
{
	MemoryContext cxt;
	OutboxEvent *events;
	int			nevents;
	int			in_flight;		/* produced, awaiting delivery reports */
	int			recorded;		/* head of events already acked in storage */
} OutboxChunk;

typedef struct OutboxProducer OutboxProducer;

/* launcher.c */
extern void outbox_register_launcher(void);
extern PGDLLEXPORT void outbox_launcher_main(Datum main_arg);

/* worker.c */
extern PGDLLEXPORT void outbox_worker_main(Datum main_arg);

/* relay_storage.c: the SQL relay API, called through kept SPI plans */
extern bool outbox_storage_extension_ready(void);
extern void outbox_chunk_reset(OutboxChunk *chunk);
extern void outbox_storage_fetch_chunk(OutboxChunk *chunk, int max_events,
									   int64 after_id);
extern int	outbox_storage_finish_chunk(OutboxChunk *chunk);
extern int	outbox_storage_maintain(void);

/* producer.c */
extern OutboxProducer *outbox_producer_create(const char *client_id,
											  char *errbuf, size_t errbuf_size);
extern void outbox_producer_destroy(OutboxProducer *producer, int flush_ms);
extern int	outbox_producer_send(OutboxProducer *producer, OutboxChunk *chunk,
								 OutboxEvent *event);
extern void outbox_producer_poll(OutboxProducer *producer, int timeout_ms);
extern void outbox_producer_flush(OutboxProducer *producer, int timeout_ms);
extern bool outbox_producer_take_fatal(OutboxProducer *producer,
									   char *errbuf, size_t errbuf_size);
extern bool outbox_producer_brokers_down(OutboxProducer *producer);
extern void outbox_producer_inject_fatal(OutboxProducer *producer);
extern OutboxErrorClass outbox_classify_error(int error);
extern bool outbox_error_is_queue_full(int error);
extern const char *outbox_error_text(int error);

#endif							/* OUTBOX_RELAY_H */
