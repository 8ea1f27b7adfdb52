/*-------------------------------------------------------------------------
 *
 * error_class.h
 *	  The classes of delivery errors and how the relay treats each.
 *
 * Plain C (no PostgreSQL headers): also compiled into the test program
 * that checks the table in docs/reliability.md.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/error_class.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_ERROR_CLASS_H
#define OUTBOX_ERROR_CLASS_H

/* How an error that ended one message's delivery is handled. */
typedef enum OutboxErrorClass
{
	OUTBOX_ERROR_TRANSIENT,		/* produce again, charge nobody */
	OUTBOX_ERROR_TOPIC_REFUSED, /* hold the topic aside; its events are
								 * dead-lettered after max_retry_time */
	OUTBOX_ERROR_TOPIC_UNAVAILABLE, /* hold the topic aside; its events wait */
	OUTBOX_ERROR_CLUSTER,		/* the whole relay waits for the operator:
								 * credentials, TLS, cluster ACLs */
	OUTBOX_ERROR_PERMANENT,		/* this message can never be delivered */
	OUTBOX_ERROR_FATAL			/* the producer is unusable: recreate it */
} OutboxErrorClass;

/*
 * RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, for code that does not include
 * librdkafka: the error of a message whose producer was destroyed.
 */
#define OUTBOX_ERROR_CODE_PURGED	(-151)

extern OutboxErrorClass outbox_classify_error(int error);
extern int	outbox_error_class_known(int error);
extern const char *outbox_error_class_name(OutboxErrorClass cls);
extern int	outbox_error_blames_batch(int error);
extern int	outbox_error_class_newer(int i, int *code, const char **name,
									 OutboxErrorClass *cls);

#endif							/* OUTBOX_ERROR_CLASS_H */
