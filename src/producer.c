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
 * The producer picks each event's partition itself, with the partitioner
 * librdkafka is configured with (murmur2_random by default, the Java
 * client's choice), from the partition count the cluster gave it
 * (outbox_producer_place).  Knowing
 * the partition before a message leaves lets it keep a new producer's
 * requests to a partition one at a time until the first is acknowledged
 * there: Kafka accepts any first sequence number from a producer id it has
 * no state for on a partition, so idempotence orders nothing before that
 * first acknowledgement.  A second request in flight could be written
 * while the first one fails, putting a later event of a key before an
 * earlier one (G3), and librdkafka, seeing the later one acknowledged,
 * would report the earlier one acknowledged too without it being written
 * (G1).  See outbox_producer_send.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/producer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "catalog/pg_type.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "relay.h"
#include "librdkafka_version.h"
#include "producer_config.h"

/* Log lines kept between two polls; more are counted as dropped. */
#define LOG_RING_SIZE	64
#define LOG_LINE_LEN	512
/* Longest wait for a new topic's metadata (see learn_topic). */
#define TOPIC_METADATA_MS	500
/* How often the metadata of a topic in error is asked for again. */
#define TOPIC_RECHECK_MS	500
/* After a metadata request went unanswered, how long no other one waits. */
#define METADATA_QUIET_MS	5000
/* How long outbox_producer_push keeps librdkafka sending at once. */
#define PUSH_MS				1
/* How often the partition count of a topic in use is asked for again. */
#define TOPIC_REFRESH_MS	300000

/* What this producer knows of a partition (or of a topic, see KnownTopic). */
typedef enum PartitionState
{
	PARTITION_NEW = 0,			/* nothing acknowledged there yet */
	PARTITION_PROBING,			/* its first message is in flight, alone */
	PARTITION_CONFIRMED			/* the cluster acknowledged a message there */
} PartitionState;

/* A librdkafka partitioner (rd_kafka_msg_partitioner_*). */
typedef int32_t (*PartitionerFn) (const rd_kafka_topic_t *rkt, const void *key,
								  size_t keylen, int32_t partition_cnt,
								  void *rkt_opaque, void *msg_opaque);

/* When a partitioner spreads messages instead of hashing their key. */
typedef enum SpreadWhen
{
	SPREAD_NEVER,				/* every key is hashed, no key too */
	SPREAD_NO_KEY,				/* messages without a key are spread */
	SPREAD_EMPTY_KEY			/* messages with an empty key or none */
} SpreadWhen;

/* What this producer knows of a topic it produced to. */
typedef struct KnownTopic
{
	char		name[OUTBOX_MAX_TOPIC_LEN + 1];	/* hash key */
	int			error;			/* topic error in the last metadata seen */
	bool		learned;		/* the cluster answered about it */
	TimestampTz checked_at;		/* when that metadata was fetched */
	int32		partition_cnt;	/* partitions it has; 0 if not known */
	PartitionState *partitions; /* partition_cnt of them, TopMemoryContext */
	PartitionState unpartitioned;	/* of messages sent while the partition
									 * count is not known (librdkafka picks
									 * their partition): one at a time */
} KnownTopic;

typedef struct LogLine
{
	int			level;			/* syslog level */
	char		facility[32];
	char		text[LOG_LINE_LEN];
} LogLine;

struct OutboxProducer
{
	rd_kafka_t *rk;
	int			wake_fds[2];	/* librdkafka writes to [1] when its main
								 * queue gets something to serve */
	bool		fatal;			/* error_cb saw RD_KAFKA_RESP_ERR__FATAL */
	bool		brokers_down;	/* all brokers down since last delivery */
	bool		delivered;		/* the cluster acknowledged a message */
	int			last_error;		/* last error_cb code, 0 if none since the
								 * last acknowledgement */
	char		last_error_text[256];
	HTAB	   *topics;			/* topics this producer has produced to */
	TimestampTz metadata_quiet_until;	/* no waiting for metadata before
										 * this: the cluster did not answer */
	double		linger_ms;		/* linger.ms as configured */
	PartitionerFn partitioner;	/* the configured partitioner's hash */
	SpreadWhen	spread;			/* and when it spreads instead */
	uint32		next_spread;	/* round robin of spread messages */
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
static void enable_wake_fd(OutboxProducer *producer);
static double configured_linger_ms(rd_kafka_t *rk);
static int	learn_topic(OutboxProducer *producer, const char *topic,
						KnownTopic **known);
static void note_partition_count(KnownTopic *known, int32 partition_cnt);
static void configure_partitioner(OutboxProducer *producer);
static PartitionState *partition_state(OutboxEvent *event);
static bool may_send(OutboxEvent *event);
static void note_delivery(OutboxEvent *event, int32 partition, bool acked);
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
	note_delivery(event, msg->partition, msg->err == RD_KAFKA_RESP_ERR_NO_ERROR);
	if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		event->delivery = OUTBOX_DELIVERY_ACKED;
		producer->delivered = true;
		producer->brokers_down = false;
		producer->last_error = 0;
		event->chunk->acked++;
	}
	else
	{
		event->delivery = OUTBOX_DELIVERY_FAILED;
		event->error = msg->err;
	}
	event->chunk->in_flight--;
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

	/*
	 * Keep the error that says most: a cluster-wide cause (credentials,
	 * TLS, cluster ACLs) is not replaced by the "all brokers are down" or
	 * transport errors that follow from it.
	 */
	if (producer->last_error != 0 &&
		outbox_classify_error(producer->last_error) == OUTBOX_ERROR_CLUSTER &&
		outbox_classify_error(err) != OUTBOX_ERROR_CLUSTER)
		return;
	producer->last_error = err;
	strlcpy(producer->last_error_text, reason ? reason : "",
			sizeof(producer->last_error_text));
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
	outbox_librdkafka_vet_config(conf);

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
	enable_wake_fd(producer);
	producer->linger_ms = configured_linger_ms(producer->rk);
	configure_partitioner(producer);
	return producer;
}

/*
 * enable_wake_fd: have librdkafka write a byte to a pipe whenever its main
 * queue (delivery reports, errors, log lines) gets something, so the
 * worker can sleep on the pipe and its latch together instead of polling.
 * Without the pipe (pipe() failed) the worker falls back to short sleeps.
 */
static void
enable_wake_fd(OutboxProducer *producer)
{
	rd_kafka_queue_t *mainq;

	producer->wake_fds[0] = producer->wake_fds[1] = -1;
	if (pipe(producer->wake_fds) != 0)
	{
		producer->wake_fds[0] = producer->wake_fds[1] = -1;
		return;
	}
	(void) fcntl(producer->wake_fds[0], F_SETFL, O_NONBLOCK);
	(void) fcntl(producer->wake_fds[1], F_SETFL, O_NONBLOCK);
	(void) fcntl(producer->wake_fds[0], F_SETFD, FD_CLOEXEC);
	(void) fcntl(producer->wake_fds[1], F_SETFD, FD_CLOEXEC);
	mainq = rd_kafka_queue_get_main(producer->rk);
	rd_kafka_queue_io_event_enable(mainq, producer->wake_fds[1], "w", 1);
	rd_kafka_queue_destroy(mainq);
}

/*
 * configured_linger_ms: the producer's linger.ms (the relay's default, or
 * what producer_properties set), 0 if it cannot be read.
 */
static double
configured_linger_ms(rd_kafka_t *rk)
{
	char		value[64];
	size_t		size = sizeof(value);

	if (rd_kafka_conf_get(rd_kafka_conf(rk), "linger.ms", value, &size) != RD_KAFKA_CONF_OK)
		return 0;
	return strtod(value, NULL);
}

/*
 * configure_partitioner: the hash of the partitioner the producer is
 * configured with (producer_config.c refuses "random"), and when it
 * spreads messages instead; murmur2_random if it cannot be read.  The
 * relay calls it itself (outbox_producer_place), so keys land where librdkafka,
 * and for murmur2 the Java client, would put them.
 */
static void
configure_partitioner(OutboxProducer *producer)
{
	static const struct
	{
		const char *name;
		PartitionerFn fn;
		SpreadWhen	spread;
	}			partitioners[] = {
		{"murmur2_random", rd_kafka_msg_partitioner_murmur2, SPREAD_NO_KEY},
		{"murmur2", rd_kafka_msg_partitioner_murmur2, SPREAD_NEVER},
		{"consistent_random", rd_kafka_msg_partitioner_consistent, SPREAD_EMPTY_KEY},
		{"consistent", rd_kafka_msg_partitioner_consistent, SPREAD_NEVER},
		{"fnv1a_random", rd_kafka_msg_partitioner_fnv1a, SPREAD_NO_KEY},
		{"fnv1a", rd_kafka_msg_partitioner_fnv1a, SPREAD_NEVER},
	};
	char		value[64];
	size_t		size = sizeof(value);
	int			i;

	producer->partitioner = partitioners[0].fn;
	producer->spread = partitioners[0].spread;
	if (rd_kafka_conf_get(rd_kafka_conf(producer->rk), "partitioner", value,
						  &size) != RD_KAFKA_CONF_OK)
		return;
	for (i = 0; i < lengthof(partitioners); i++)
	{
		if (strcmp(value, partitioners[i].name) == 0)
		{
			producer->partitioner = partitioners[i].fn;
			producer->spread = partitioners[i].spread;
			return;
		}
	}
}

/*
 * outbox_producer_linger_ms: how long messages may wait to be batched
 * (linger.ms).  The relay applies it itself between chunks, since it
 * pushes every chunk at once (outbox_producer_push).
 */
double
outbox_producer_linger_ms(OutboxProducer *producer)
{
	return producer->linger_ms;
}

/*
 * outbox_producer_push: a whole chunk has just been produced and nothing
 * will join it, so waiting linger.ms in librdkafka's queue would only add
 * latency: have librdkafka send what it holds at once.  librdkafka has no
 * call for that other than rd_kafka_flush(), which also waits for the
 * acknowledgements; it is given PUSH_MS, enough for its threads to see
 * the request, and serves delivery reports (on this thread) meanwhile.
 * What is still in flight afterwards is reported through the wake-up pipe
 * as usual.
 */
void
outbox_producer_push(OutboxProducer *producer)
{
	(void) rd_kafka_flush(producer->rk, PUSH_MS);
	emit_logs(producer);
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
	if (producer->topics != NULL)
	{
		HASH_SEQ_STATUS status;
		KnownTopic *known;

		hash_seq_init(&status, producer->topics);
		while ((known = hash_seq_search(&status)) != NULL)
			if (known->partitions != NULL)
				pfree(known->partitions);
		hash_destroy(producer->topics);
	}
	if (producer->wake_fds[0] >= 0)
	{
		close(producer->wake_fds[0]);
		close(producer->wake_fds[1]);
	}
	pthread_mutex_destroy(&producer->log_lock);
	pfree(producer);
}

/*
 * build_headers: the Kafka headers of event: outbox-id, outbox-event-id
 * (the event's UUID in its canonical 36-character form; absent for events
 * enqueued before 0.4), outbox-created-at, content-type for JSON payloads,
 * then the caller's headers in order.  Allocates nothing of PostgreSQL's.
 */
static rd_kafka_headers_t *
build_headers(OutboxEvent *event)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
	char		buf[MAXDATELEN + 1];
	int			utc = 0;

	snprintf(buf, sizeof(buf), INT64_FORMAT, event->id);
	rd_kafka_header_add(hdrs, "outbox-id", -1, buf, -1);
	if (event->has_uuid)
	{
		static const char hex[] = "0123456789abcdef";
		char	   *p = buf;
		int			i;

		for (i = 0; i < UUID_LEN; i++)
		{
			if (i == 4 || i == 6 || i == 8 || i == 10)
				*p++ = '-';
			*p++ = hex[event->event_uuid.data[i] >> 4];
			*p++ = hex[event->event_uuid.data[i] & 0x0f];
		}
		rd_kafka_header_add(hdrs, "outbox-event-id", -1, buf, p - buf);
	}
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
 * outbox_producer_place: choose the partition event goes to (and note the
 * topic's state in event->producer_topic), before it is produced: keys are
 * hashed with the configured partitioner; messages it spreads go round
 * robin over the partitions held() does not say are held aside (held may
 * be NULL).  While the partition count is not known, librdkafka picks
 * (-1).  Returns 0, or the error the cluster reports for the topic
 * (unknown topic, not authorised...): then event has failed with it.
 */
int
outbox_producer_place(OutboxProducer *producer, OutboxEvent *event,
					  OutboxPartitionHeldFn held)
{
	KnownTopic *known;
	int			err;
	bool		spread;
	int			i;

	/* a topic the cluster says it does not have (or lets us not see) */
	err = learn_topic(producer, event->topic, &known);
	event->producer_topic = known;
	event->partition = RD_KAFKA_PARTITION_UA;
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		event->delivery = OUTBOX_DELIVERY_FAILED;
		event->error = err;
		return err;
	}
	if (known == NULL || known->partition_cnt <= 0)
		return 0;

	spread = (producer->spread == SPREAD_NO_KEY && event->key == NULL) ||
		(producer->spread == SPREAD_EMPTY_KEY &&
		 (event->key == NULL || event->key_len == 0));
	if (!spread)
	{
		event->partition = producer->partitioner(NULL, event->key,
												 event->key ? event->key_len : 0,
												 known->partition_cnt,
												 NULL, NULL);
		return 0;
	}
	for (i = 0; i < known->partition_cnt; i++)
	{
		event->partition = producer->next_spread++ % known->partition_cnt;
		if (held == NULL || !held(event->topic, event->partition))
			break;
	}
	return 0;
}

/*
 * outbox_producer_send: produce event, placed by outbox_producer_place,
 * asynchronously.  The event (and its key and payload, which are not
 * copied) must stay valid until its delivery report has been served.
 * Returns 0, or the librdkafka error that refused the message at once
 * (queue full, message too large...).  Returns 0 without producing it,
 * leaving it OUTBOX_DELIVERY_NONE and setting chunk->deferred, when its
 * partition has had no acknowledgement from this producer yet and another
 * message is in flight there (may_send): produce it again once that one is
 * reported (the caller goes on with other events; those of the same
 * partition are deferred alike, so their order is kept).
 */
int
outbox_producer_send(OutboxProducer *producer, OutboxChunk *chunk,
					 OutboxEvent *event)
{
	rd_kafka_headers_t *hdrs;
	rd_kafka_resp_err_t err;

	event->chunk = chunk;
	if (!may_send(event))
	{
		chunk->deferred = true;
		return 0;
	}

	hdrs = build_headers(event);
	event->delivery = OUTBOX_DELIVERY_IN_FLIGHT;
	event->attempts++;
	chunk->in_flight++;

	err = rd_kafka_producev(producer->rk,
							RD_KAFKA_V_TOPIC(event->topic),
							RD_KAFKA_V_PARTITION(event->partition),
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
		note_delivery(event, event->partition, false);
		event->delivery = OUTBOX_DELIVERY_FAILED;
		event->error = err;
		event->attempts--;
		chunk->in_flight--;
	}
	return err;
}


/*
 * partition_state: what this producer knows of the partition event was
 * placed on (of its topic's unpartitioned messages while the partition
 * count is not known), or NULL if it keeps nothing for it.  Plain C: also
 * called from the delivery report callback.
 */
static PartitionState *
partition_state(OutboxEvent *event)
{
	KnownTopic *known = (KnownTopic *) event->producer_topic;

	if (known == NULL)
		return NULL;
	if (event->partition == RD_KAFKA_PARTITION_UA)
		return &known->unpartitioned;
	if (event->partition < known->partition_cnt)
		return &known->partitions[event->partition];
	return NULL;
}

/*
 * may_send: may event, placed by outbox_producer_place, be produced now?
 * Not while its partition has had no acknowledgement from this producer
 * and a message is in flight there: the first message to a partition goes
 * alone (PARTITION_PROBING).  While the partition count is not known,
 * the topic's messages go one at a time.
 */
static bool
may_send(OutboxEvent *event)
{
	PartitionState *state = partition_state(event);

	if (state == NULL || *state == PARTITION_CONFIRMED)
		return true;
	if (*state == PARTITION_PROBING)
		return false;
	*state = PARTITION_PROBING;
	return true;
}

/*
 * note_delivery: the message of event, produced by may_send's rules, was
 * reported (acked or not) on partition: an acknowledgement
 * confirms the partition for this producer; a failure lets the next
 * message there go alone again.  Runs in the delivery report callback:
 * plain C only.
 */
static void
note_delivery(OutboxEvent *event, int32 partition, bool acked)
{
	KnownTopic *known = (KnownTopic *) event->producer_topic;
	PartitionState *state = partition_state(event);

	if (state == NULL)
		return;
	if (acked)
	{
		*state = PARTITION_CONFIRMED;
		/* librdkafka picked it: the partition it went to is confirmed too */
		if (partition >= 0 && partition < known->partition_cnt)
			known->partitions[partition] = PARTITION_CONFIRMED;
	}
	else if (*state == PARTITION_PROBING)
		*state = PARTITION_NEW;
}

/*
 * note_partition_count: the cluster says topic known has partition_cnt
 * partitions.  Partitions are only ever added: the states of those known
 * so far are kept.
 */
static void
note_partition_count(KnownTopic *known, int32 partition_cnt)
{
	if (partition_cnt <= known->partition_cnt)
		return;
	if (known->partitions == NULL)
		known->partitions = MemoryContextAllocZero(TopMemoryContext,
												   partition_cnt * sizeof(PartitionState));
	else
	{
		known->partitions = repalloc(known->partitions,
									 partition_cnt * sizeof(PartitionState));
		memset(known->partitions + known->partition_cnt, 0,
			   (partition_cnt - known->partition_cnt) * sizeof(PartitionState));
	}
	known->partition_cnt = partition_cnt;
}

/*
 * ask_topic_metadata: ask the cluster for rkt's metadata (into *md, to be
 * destroyed by the caller when set), waiting at most TOPIC_METADATA_MS.
 * When it does not answer in time, no other request waits for metadata
 * for METADATA_QUIET_MS (see learn_topic): callers check
 * metadata_quiet_until before asking.
 */
static rd_kafka_resp_err_t
ask_topic_metadata(OutboxProducer *producer, rd_kafka_topic_t *rkt,
				   const struct rd_kafka_metadata **md)
{
	rd_kafka_resp_err_t err;

	*md = NULL;
	err = rd_kafka_metadata(producer->rk, 0, rkt, md, TOPIC_METADATA_MS);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		producer->metadata_quiet_until =
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(), METADATA_QUIET_MS);
		ereport(DEBUG1,
				(errmsg_internal("outbox_kafka: no metadata of topic \"%s\" within %d ms (%s); none asked for during the next %d ms",
								 rd_kafka_topic_name(rkt), TOPIC_METADATA_MS,
								 rd_kafka_err2str(err), METADATA_QUIET_MS)));
	}
	return err;
}

/*
 * learn_topic: the error the cluster reports for topic (unknown topic, not
 * authorised...), or 0, and through *known what this producer knows of it
 * (its partition count, when the cluster gave it).  The first time this producer produces to topic it
 * asks the cluster for the topic's metadata at once (waiting at most
 * TOPIC_METADATA_MS): librdkafka would otherwise leave the first messages
 * of a new topic waiting for its next periodic metadata refresh, about a
 * second, on every start and for every new topic, and would keep the
 * messages of an unknown topic for topic.metadata.propagation.max.ms before
 * failing them.  A topic in error is asked about again at most every
 * TOPIC_RECHECK_MS.  When the cluster does not answer in time, no other
 * topic waits for metadata for METADATA_QUIET_MS (the topic is asked about
 * again later): with the brokers down, a chunk of many new topics must not
 * keep the worker deaf to signals and barriers for half a second each.
 * The partition count of a topic in use is asked for again every
 * TOPIC_REFRESH_MS, so that new partitions are used.
 */
static int
learn_topic(OutboxProducer *producer, const char *topic, KnownTopic **known_p)
{
	bool		found;
	KnownTopic *known;
	rd_kafka_topic_t *rkt;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	TimestampTz now;

	if (producer->topics == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = OUTBOX_MAX_TOPIC_LEN + 1;
		ctl.entrysize = sizeof(KnownTopic);
		ctl.hcxt = TopMemoryContext;
		producer->topics = hash_create("outbox_kafka producer topics", 64, &ctl,
									   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	*known_p = NULL;
	if (strlen(topic) > OUTBOX_MAX_TOPIC_LEN)
		return 0;				/* refused by librdkafka anyway */
	known = hash_search(producer->topics, topic, HASH_ENTER, &found);
	*known_p = known;
	now = GetCurrentTimestamp();
	if (!found)
	{
		known->learned = false;
		known->partition_cnt = 0;
		known->partitions = NULL;
		known->unpartitioned = PARTITION_NEW;
	}
	if (found && known->learned &&
		!TimestampDifferenceExceeds(known->checked_at, now,
									known->error == 0 ? TOPIC_REFRESH_MS :
									TOPIC_RECHECK_MS))
		return known->error;
	if (now < producer->metadata_quiet_until)
		return 0;				/* librdkafka learns it by itself meanwhile */

	known->error = 0;
	known->checked_at = now;
	rkt = rd_kafka_topic_new(producer->rk, topic, NULL);
	if (rkt == NULL)
		return 0;
	err = ask_topic_metadata(producer, rkt, &md);
	known->learned = (err == RD_KAFKA_RESP_ERR_NO_ERROR);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md != NULL && md->topic_cnt == 1)
	{
		rd_kafka_resp_err_t terr = md->topics[0].err;

		/* only what the cluster says of the topic itself; not timeouts */
		if (terr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
			terr == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
			terr == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION)
			known->error = terr;
		else if (terr == RD_KAFKA_RESP_ERR_NO_ERROR)
			note_partition_count(known, md->topics[0].partition_cnt);
	}
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return known->error;
}

/*
 * outbox_producer_serve: serve everything librdkafka has queued for the
 * worker (delivery reports, errors, log lines) without waiting, and write
 * the log lines to the server log.  Call it on every pass of the loop, busy
 * or idle: a fatal error or a log line must never sit in the queue.
 */
void
outbox_producer_serve(OutboxProducer *producer)
{
	char		drain[64];

	/* empty the pipe first: whatever arrives after this wakes us again */
	if (producer->wake_fds[0] >= 0)
		while (read(producer->wake_fds[0], drain, sizeof(drain)) > 0)
			;
	while (rd_kafka_poll(producer->rk, 0) > 0)
		;
	emit_logs(producer);
}

/*
 * outbox_producer_wake_fd: the file descriptor that becomes readable when
 * there is something to serve, or -1 if there is none (then poll often).
 */
int
outbox_producer_wake_fd(OutboxProducer *producer)
{
	return producer->wake_fds[0];
}

/*
 * outbox_producer_last_error: the last error librdkafka reported outside a
 * delivery report (authentication, TLS, brokers down...) since the last
 * acknowledgement, with its text in errbuf; 0 if none.
 */
int
outbox_producer_last_error(OutboxProducer *producer, char *errbuf,
						   size_t errbuf_size)
{
	if (producer->last_error == 0)
		return 0;
	strlcpy(errbuf, producer->last_error_text, errbuf_size);

	/*
	 * librdkafka before 2.6.1 sends a SCRAM nonce that Kafka 4 refuses
	 * whatever the password: say so, or operators chase their credentials.
	 */
	if (producer->last_error == RD_KAFKA_RESP_ERR__AUTHENTICATION &&
		rd_kafka_version() < 0x020601ff && strstr(errbuf, "SCRAM") != NULL)
		snprintf(errbuf + strlen(errbuf), errbuf_size - strlen(errbuf),
				 " (note: librdkafka %s cannot log in to Kafka 4 with SCRAM, fixed in librdkafka 2.6.1; with Kafka 4 use SASL/PLAIN over TLS or a newer librdkafka)",
				 rd_kafka_version_str());
	return producer->last_error;
}

/*
 * outbox_producer_cluster_answers: does the cluster answer a metadata
 * request within timeout_ms?  Tells a stalled topic from a cluster that
 * is down.  Blocks the worker for at most timeout_ms.
 */
bool
outbox_producer_cluster_answers(OutboxProducer *producer, int timeout_ms)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;

	err = rd_kafka_metadata(producer->rk, 0, NULL, &md, timeout_ms);
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
	return err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/*
 * outbox_producer_leaderless: the partitions of topic that have no leader,
 * as the cluster says now (at most max of them, into partitions); 0 if
 * none, or if the cluster does not answer within TOPIC_METADATA_MS, or
 * did not answer a metadata request in the last METADATA_QUIET_MS: a
 * cluster too slow to answer blocks the worker TOPIC_METADATA_MS at most
 * once in that time, however many topics are asked about.
 */
int
outbox_producer_leaderless(OutboxProducer *producer, const char *topic,
						   int32 *partitions, int max)
{
	rd_kafka_topic_t *rkt;
	const struct rd_kafka_metadata *md = NULL;
	int			n = 0;
	int			i;

	if (GetCurrentTimestamp() < producer->metadata_quiet_until)
		return 0;
	rkt = rd_kafka_topic_new(producer->rk, topic, NULL);
	if (rkt == NULL)
		return 0;
	if (ask_topic_metadata(producer, rkt, &md) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		md != NULL && md->topic_cnt == 1)
	{
		for (i = 0; i < md->topics[0].partition_cnt && n < max; i++)
			if (md->topics[0].partitions[i].leader < 0)
				partitions[n++] = md->topics[0].partitions[i].id;
	}
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return n;
}

/*
 * outbox_producer_take_fatal: the librdkafka error that made the producer
 * fatal (with the reason in errbuf), or 0 if it is not: then it must be
 * recreated.
 */
int
outbox_producer_take_fatal(OutboxProducer *producer, char *errbuf,
						   size_t errbuf_size)
{
	rd_kafka_resp_err_t err;

	if (!producer->fatal)
		return 0;
	err = rd_kafka_fatal_error(producer->rk, errbuf, errbuf_size);
	return err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : RD_KAFKA_RESP_ERR__FATAL;
}

/*
 * outbox_producer_delivered: has the cluster acknowledged a message of
 * this producer?
 */
bool
outbox_producer_delivered(OutboxProducer *producer)
{
	return producer->delivered;
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
 * outbox_error_text: "description (NAME)" for a librdkafka error code.
 * The result is a static or palloc'd string.
 */
const char *
outbox_error_text(int error)
{
	return psprintf("%s (%s)", rd_kafka_err2str(error), rd_kafka_err2name(error));
}

/*
 * outbox_error_is_fatal: the producer refused a message because it is in
 * a fatal state: it must be recreated.
 */
bool
outbox_error_is_fatal(int error)
{
	return error == RD_KAFKA_RESP_ERR__FATAL;
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
