/*-------------------------------------------------------------------------
 *
 * producer.c
 *	  The relay's Kafka producer: a thin layer over librdkafka.
 *
 * librdkafka runs its own threads.  Nothing of PostgreSQL's may run on
 * them, so every callback here is served by rd_kafka_poll() on the
 * worker's own thread (log.queue=true routes log lines there too), and
 * the callbacks themselves only copy plain C data into the producer or
 * the chunk: no elog, no palloc, no longjmp through librdkafka frames.
 * Log lines are emitted with ereport after rd_kafka_poll() returns.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/producer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pthread.h>

#include <librdkafka/rdkafka.h>

#include "catalog/pg_type.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "relay.h"
#include "producer_config.h"

/* Log lines kept between two polls; more are counted as dropped. */
#define LOG_RING_SIZE	64
#define LOG_LINE_LEN	512

typedef struct LogLine
{
	int			level;			/* syslog level */
	char		facility[32];
	char		text[LOG_LINE_LEN];
} LogLine;

struct OutboxProducer
{
	rd_kafka_t *rk;
	OutboxChunk *chunk;			/* chunk whose events are in flight */
	bool		fatal;			/* error_cb saw RD_KAFKA_RESP_ERR__FATAL */
	bool		brokers_down;	/* all brokers down since last delivery */
	pthread_mutex_t log_lock;	/* log_cb might run on another thread */
	int			nlogs;
	int			dropped_logs;
	LogLine		logs[LOG_RING_SIZE];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg,
						void *opaque);
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);
static void on_log(const rd_kafka_t *rk, int level, const char *fac,
				   const char *buf);
static rd_kafka_headers_t *build_headers(OutboxEvent *event);
static void emit_logs(OutboxProducer *producer);

/*
 * on_delivery: delivery report callback.  Runs inside rd_kafka_poll() on
 * the worker's thread; records the outcome in the event only.
 */
static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	OutboxProducer *producer = (OutboxProducer *) opaque;
	OutboxEvent *event = (OutboxEvent *) msg->_private;

	if (event == NULL || event->delivery != OUTBOX_DELIVERY_IN_FLIGHT)
		return;
	if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		event->delivery = OUTBOX_DELIVERY_ACKED;
		producer->brokers_down = false;
	}
	else
	{
		event->delivery = OUTBOX_DELIVERY_FAILED;
		event->error = msg->err;
	}
	if (producer->chunk != NULL)
		producer->chunk->in_flight--;
}

/*
 * on_error: error callback; served by rd_kafka_poll() on the worker's
 * thread.  Only notes the conditions the worker acts on.
 */
static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	OutboxProducer *producer = (OutboxProducer *) opaque;

	if (err == RD_KAFKA_RESP_ERR__FATAL)
		producer->fatal = true;
	else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		producer->brokers_down = true;
}

/*
 * on_log: log callback.  With log.queue=true it is served by
 * rd_kafka_poll(); it still only copies the line into the ring, under a
 * mutex in case librdkafka logs before the log queue is set.
 */
static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	OutboxProducer *producer = (OutboxProducer *) rd_kafka_opaque(rk);
	LogLine    *line;

	if (producer == NULL)
		return;
	pthread_mutex_lock(&producer->log_lock);
	if (producer->nlogs < LOG_RING_SIZE)
	{
		line = &producer->logs[producer->nlogs++];
		line->level = level;
		strlcpy(line->facility, fac ? fac : "", sizeof(line->facility));
		strlcpy(line->text, buf ? buf : "", sizeof(line->text));
	}
	else
		producer->dropped_logs++;
	pthread_mutex_unlock(&producer->log_lock);
}

/*
 * emit_logs: write the collected librdkafka log lines to the server log,
 * at the matching level.  Runs on the worker's thread outside librdkafka.
 */
static void
emit_logs(OutboxProducer *producer)
{
	LogLine		lines[LOG_RING_SIZE];
	int			n;
	int			dropped;
	int			i;

	pthread_mutex_lock(&producer->log_lock);
	n = producer->nlogs;
	dropped = producer->dropped_logs;
	memcpy(lines, producer->logs, n * sizeof(LogLine));
	producer->nlogs = 0;
	producer->dropped_logs = 0;
	pthread_mutex_unlock(&producer->log_lock);

	for (i = 0; i < n; i++)
	{
		int			elevel;

		if (lines[i].level <= 4)	/* emerg, alert, crit, err, warning */
			elevel = WARNING;
		else if (lines[i].level <= 6)	/* notice, info */
			elevel = LOG;
		else
			elevel = DEBUG1;
		ereport(elevel,
				(errmsg_internal("librdkafka: %s: %s",
								 lines[i].facility, lines[i].text)));
	}
	if (dropped > 0)
		ereport(LOG,
				(errmsg("librdkafka: %d log lines were dropped", dropped)));
}

/*
 * outbox_producer_create: a new producer configured from the settings.
 * Returns NULL with a message in errbuf when the configuration is wrong.
 * Must run in the worker process, never in the postmaster.
 */
OutboxProducer *
outbox_producer_create(const char *client_id, char *errbuf, size_t errbuf_size)
{
	OutboxProducer *producer;
	rd_kafka_conf_t *conf;
	char		rderr[512];

	conf = outbox_producer_config_build(client_id, errbuf, errbuf_size);
	if (conf == NULL)
		return NULL;

	producer = MemoryContextAllocZero(TopMemoryContext, sizeof(OutboxProducer));
	pthread_mutex_init(&producer->log_lock, NULL);
	rd_kafka_conf_set_opaque(conf, producer);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_log_cb(conf, on_log);

	producer->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
	if (producer->rk == NULL)
	{
		snprintf(errbuf, errbuf_size, "could not create Kafka producer: %s", rderr);
		rd_kafka_conf_destroy(conf);
		pthread_mutex_destroy(&producer->log_lock);
		pfree(producer);
		return NULL;
	}
	/* conf now belongs to rk; route its log lines to the main queue */
	rd_kafka_set_log_queue(producer->rk, NULL);
	return producer;
}

/*
 * outbox_producer_destroy: wait up to flush_ms for in-flight messages,
 * purge what is left (its events become FAILED with a purge error, so they
 * are produced again later) and free the producer.  Never blocks long,
 * even when every broker is down.
 */
void
outbox_producer_destroy(OutboxProducer *producer, int flush_ms)
{
	if (producer == NULL)
		return;
	if (flush_ms > 0)
		rd_kafka_flush(producer->rk, flush_ms);
	rd_kafka_purge(producer->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	/* serve the delivery reports of purged messages */
	rd_kafka_flush(producer->rk, 100);
	rd_kafka_poll(producer->rk, 0);
	emit_logs(producer);
	rd_kafka_destroy_flags(producer->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	pthread_mutex_destroy(&producer->log_lock);
	pfree(producer);
}

/*
 * build_headers: the Kafka headers of event: outbox-id, outbox-created-at,
 * content-type for JSON payloads, then the caller's headers in order.
 */
static rd_kafka_headers_t *
build_headers(OutboxEvent *event)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
	char		buf[MAXDATELEN + 1];
	int			utc = 0;

	snprintf(buf, sizeof(buf), INT64_FORMAT, event->id);
	rd_kafka_header_add(hdrs, "outbox-id", -1, buf, -1);
	JsonEncodeDateTime(buf, TimestampTzGetDatum(event->created_at),
					   TIMESTAMPTZOID, &utc);
	rd_kafka_header_add(hdrs, "outbox-created-at", -1, buf, -1);
	if (event->payload_kind == OUTBOX_PAYLOAD_JSON && event->payload != NULL)
		rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);

	if (event->headers != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&event->headers->root);
		JsonbValue	v;
		JsonbIteratorToken r;
		char	   *name = NULL;
		int			name_len = 0;

		while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (r == WJB_KEY)
			{
				name = v.val.string.val;
				name_len = v.val.string.len;
			}
			else if (r == WJB_VALUE && name != NULL)
			{
				if (v.type == jbvString)
					rd_kafka_header_add(hdrs, name, name_len,
										v.val.string.val, v.val.string.len);
				else
					rd_kafka_header_add(hdrs, name, name_len, NULL, 0);
			}
		}
	}
	return hdrs;
}

/*
 * outbox_producer_send: produce event asynchronously.  The event (and its
 * key and payload, which are not copied) must stay valid until its
 * delivery report has been served.  Returns 0, or the librdkafka error
 * that refused the message at once (queue full, message too large...).
 */
int
outbox_producer_send(OutboxProducer *producer, OutboxChunk *chunk,
					 OutboxEvent *event)
{
	rd_kafka_headers_t *hdrs = build_headers(event);
	rd_kafka_resp_err_t err;

	producer->chunk = chunk;
	event->delivery = OUTBOX_DELIVERY_IN_FLIGHT;
	event->attempts++;
	chunk->in_flight++;

	err = rd_kafka_producev(producer->rk,
							RD_KAFKA_V_TOPIC(event->topic),
							RD_KAFKA_V_KEY(event->key, event->key ? event->key_len : 0),
							RD_KAFKA_V_VALUE(event->payload,
											 event->payload ? event->payload_len : 0),
							RD_KAFKA_V_HEADERS(hdrs),
							RD_KAFKA_V_OPAQUE(event),
							RD_KAFKA_V_MSGFLAGS(0),
							RD_KAFKA_V_END);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		rd_kafka_headers_destroy(hdrs);
		event->delivery = OUTBOX_DELIVERY_FAILED;
		event->error = err;
		event->attempts--;
		chunk->in_flight--;
	}
	return err;
}

/*
 * outbox_producer_poll: serve delivery reports, errors and log lines for
 * up to timeout_ms (returns as soon as something was served).
 */
void
outbox_producer_poll(OutboxProducer *producer, int timeout_ms)
{
	rd_kafka_poll(producer->rk, timeout_ms);
	emit_logs(producer);
}

/*
 * outbox_producer_flush: send what is queued at once (regardless of
 * linger.ms) and serve delivery reports until nothing is outstanding or
 * timeout_ms passes.  Used to await a chunk: its messages are all queued
 * before, so they still travel in as few requests as possible.
 */
void
outbox_producer_flush(OutboxProducer *producer, int timeout_ms)
{
	rd_kafka_flush(producer->rk, timeout_ms);
	emit_logs(producer);
}

/*
 * outbox_producer_take_fatal: true (with the reason) if the producer hit a
 * fatal error and must be recreated.
 */
bool
outbox_producer_take_fatal(OutboxProducer *producer, char *errbuf,
						   size_t errbuf_size)
{
	if (!producer->fatal)
		return false;
	rd_kafka_fatal_error(producer->rk, errbuf, errbuf_size);
	return true;
}

/*
 * outbox_producer_brokers_down: librdkafka reported all brokers down and
 * nothing was delivered since.
 */
bool
outbox_producer_brokers_down(OutboxProducer *producer)
{
	return producer->brokers_down;
}

/*
 * outbox_producer_inject_fatal: make librdkafka raise a fatal error, as a
 * real idempotence failure would (used by the fault-injection tests).
 */
void
outbox_producer_inject_fatal(OutboxProducer *producer)
{
	rd_kafka_test_fatal_error(producer->rk,
							  RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
							  "fatal error injected by outbox._inject_producer_fatal_error()");
}

/*
 * outbox_classify_error: how the relay treats a message that failed with
 * error.  Unknown errors are transient: retrying never loses an event.
 */
OutboxErrorClass
outbox_classify_error(int error)
{
	switch (error)
	{
		case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		case RD_KAFKA_RESP_ERR_INVALID_MSG:
		case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
		case RD_KAFKA_RESP_ERR_INVALID_RECORD:
		case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
		case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
		case RD_KAFKA_RESP_ERR__BAD_MSG:
		case RD_KAFKA_RESP_ERR__INVALID_ARG:
			return OUTBOX_ERROR_PERMANENT;
		case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
		case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
			return OUTBOX_ERROR_TOPIC;
		case RD_KAFKA_RESP_ERR__FATAL:
			return OUTBOX_ERROR_FATAL;
		default:
			return OUTBOX_ERROR_TRANSIENT;
	}
}

/*
 * outbox_error_text: "description (NAME)" for a librdkafka error code.
 * The result is a static or palloc'd string.
 */
const char *
outbox_error_text(int error)
{
	return psprintf("%s (%s)", rd_kafka_err2str(error), rd_kafka_err2name(error));
}

/*
 * outbox_error_is_queue_full: the producer's local queue is full; serve
 * delivery reports and produce the message again.
 */
bool
outbox_error_is_queue_full(int error)
{
	return error == RD_KAFKA_RESP_ERR__QUEUE_FULL;
}
