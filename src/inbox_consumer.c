/*-------------------------------------------------------------------------
 *
 * inbox_consumer.c
 *	  The inbox's Kafka consumer: the only code that calls librdkafka's
 *	  consumer API.  One consumer per subscription, in the inbox worker
 *	  process.
 *
 * Partitions are assigned by hand (rd_kafka_assign) at the offsets stored
 * in PostgreSQL, never through a consumer group's rebalancing: the offsets
 * live in outbox.inbox_offset, so there is no rebalance to fence and no
 * group coordinator to wait for, and the compare-and-set on the stored
 * offset is the only fence that matters (docs/inbox.md).  The group id is
 * only used to commit the offsets to Kafka too, after PostgreSQL committed
 * them, so that the usual lag tools see the subscription: at most once a
 * second, the latest offsets of each partition.
 *
 * librdkafka's threads never call PostgreSQL: logs and errors are served
 * by rd_kafka_consumer_poll() on the worker's own thread (log.queue), and
 * even there only copied into this file's buffers, to be reported once
 * librdkafka has returned.  The consumer queue writes to the worker's
 * wake-up pipe when it becomes non-empty, so the worker sleeps on its
 * latch and that pipe, never in librdkafka.
 *
 * Messages are copied out of librdkafka's memory (palloc, in the caller's
 * context) before they are applied, together with their de-duplication
 * key: the outbox-event-id header (a UUID no source reuses) when present;
 * else the outbox-id header with the topic; else topic, partition and
 * offset.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_consumer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pthread.h>

#include <librdkafka/rdkafka.h>

#include "mb/pg_wchar.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "consumer_config.h"
#include "inbox.h"
#include "inbox_consumer.h"
#include "librdkafka_version.h"
#include "outbox_kafka.h"
#include "producer_config.h"

#define LOG_LINES		16
#define LOG_LINE_LEN	512

/*
 * How often, at most, offsets are committed to Kafka: they are there only
 * for lag tools, and a commit per batch (hundreds a second at a modest
 * rate) costs the broker a write to __consumer_offsets each, on the
 * machine that applies the messages.
 */
#define INBOX_KAFKA_COMMIT_MS	1000

struct InboxConsumer
{
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;	/* the consumer queue */
	char	   *topic;
	rd_kafka_topic_partition_list_t *pending;	/* offsets stored in
												 * PostgreSQL, not yet
												 * committed to Kafka; NULL
												 * if none */
	TimestampTz committed_at;	/* last commit to Kafka */
	rd_kafka_topic_partition_list_t *sent;	/* the offsets last committed to
											 * Kafka, until it confirms them;
											 * NULL if none */
	bool		commit_failed;	/* Kafka refused or lost the last commit */
	int			last_error;		/* 0 if none since taken */
	char		last_error_text[256];
	pthread_mutex_t log_lock;	/* log_cb may run before the log queue is set */
	int			nlogs;
	int			log_levels[LOG_LINES];
	char		logs[LOG_LINES][LOG_LINE_LEN];
};

/* Properties of outbox_kafka.producer_properties the consumer uses too. */
static const char *const connection_prefixes[] = {
	"security.protocol", "sasl.", "ssl.", "socket.", "broker.address.family",
	"client.dns.lookup", "client.rack"
};

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
					  rd_kafka_topic_partition_list_t *offsets, void *opaque);
static void keep_unconfirmed(InboxConsumer *consumer);
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
static void emit_logs(InboxConsumer *consumer);
static bool set_conf(rd_kafka_conf_t *conf, const char *name, const char *value,
					 char *errbuf, size_t errbuf_size);
static bool set_connection_properties(rd_kafka_conf_t *conf, char *errbuf,
									  size_t errbuf_size);
static bool set_consumer_properties(rd_kafka_conf_t *conf, char *errbuf,
									size_t errbuf_size);
static void copy_message(rd_kafka_message_t *msg, const char *topic,
						 InboxMessage *out);
static rd_kafka_topic_partition_list_t *one_partition(const char *topic,
													  int32 partition, int64 offset);

/*
 * on_error: error callback, served on the worker's thread by the poll;
 * keeps the error to be reported by inbox_consumer_take_error().
 */
static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	InboxConsumer *consumer = (InboxConsumer *) opaque;

	consumer->last_error = err;
	strlcpy(consumer->last_error_text, reason ? reason : "",
			sizeof(consumer->last_error_text));
}

/*
 * on_commit: offset commit callback, served on the worker's thread by the
 * poll: a commit that failed (the broker down or moving, say) is sent
 * again (keep_unconfirmed), or Kafka's offsets could stay behind for good
 * once the messages stop.  Plain C only.
 */
static void
on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
		  rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	InboxConsumer *consumer = (InboxConsumer *) opaque;

	if (err != RD_KAFKA_RESP_ERR_NO_ERROR &&
		err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		consumer->commit_failed = true;
}

/*
 * keep_unconfirmed: the last commit to Kafka failed: its offsets join
 * those waiting to be committed, where no newer one of their partition
 * waits already.
 */
static void
keep_unconfirmed(InboxConsumer *consumer)
{
	int			i;

	consumer->commit_failed = false;
	if (consumer->sent == NULL)
		return;
	if (consumer->pending == NULL)
	{
		consumer->pending = consumer->sent;
		consumer->sent = NULL;
		return;
	}
	for (i = 0; i < consumer->sent->cnt; i++)
	{
		rd_kafka_topic_partition_t *old = &consumer->sent->elems[i];

		if (rd_kafka_topic_partition_list_find(consumer->pending, old->topic,
											   old->partition) == NULL)
			rd_kafka_topic_partition_list_add(consumer->pending, old->topic,
											  old->partition)->offset = old->offset;
	}
	rd_kafka_topic_partition_list_destroy(consumer->sent);
	consumer->sent = NULL;
}

/*
 * on_log: log callback; only copies the line (see the file comment).
 */
static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	InboxConsumer *consumer = (InboxConsumer *) rd_kafka_opaque(rk);

	if (consumer == NULL)
		return;
	pthread_mutex_lock(&consumer->log_lock);
	if (consumer->nlogs < LOG_LINES)
	{
		consumer->log_levels[consumer->nlogs] = level;
		snprintf(consumer->logs[consumer->nlogs], LOG_LINE_LEN, "%s: %s",
				 fac ? fac : "", buf ? buf : "");
		consumer->nlogs++;
	}
	pthread_mutex_unlock(&consumer->log_lock);
}

/*
 * emit_logs: write the collected librdkafka log lines to the server log:
 * warnings and worse at LOG, the rest at DEBUG1.
 */
static void
emit_logs(InboxConsumer *consumer)
{
	char		lines[LOG_LINES][LOG_LINE_LEN];
	int			levels[LOG_LINES];
	int			n;
	int			i;

	pthread_mutex_lock(&consumer->log_lock);
	n = consumer->nlogs;
	memcpy(lines, consumer->logs, sizeof(lines));
	memcpy(levels, consumer->log_levels, sizeof(levels));
	consumer->nlogs = 0;
	pthread_mutex_unlock(&consumer->log_lock);

	for (i = 0; i < n; i++)
		ereport(levels[i] <= 4 ? LOG : DEBUG1,
				(errmsg("outbox_kafka inbox consumer of topic \"%s\": librdkafka: %s",
						consumer->topic, lines[i])));
}

/*
 * set_conf: set one librdkafka property; on failure the message names the
 * property, never its value.
 */
static bool
set_conf(rd_kafka_conf_t *conf, const char *name, const char *value,
		 char *errbuf, size_t errbuf_size)
{
	char		errstr[256];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
		return true;
	snprintf(errbuf, errbuf_size, "invalid consumer property \"%s\"", name);
	return false;
}

/*
 * set_connection_properties: the properties of
 * outbox_kafka.producer_properties (and its file) that say how to reach
 * and authenticate to the cluster (security, SASL, TLS, sockets): the
 * inbox reads from the cluster the relay publishes to, with the same
 * credentials.  Other producer properties do not apply to a consumer.
 */
static bool
set_connection_properties(rd_kafka_conf_t *conf, char *errbuf, size_t errbuf_size)
{
	OutboxPropertyProblem problem;
	List	   *props = NIL;
	List	   *file_props = NIL;
	ListCell   *lc;

	if (!outbox_parse_property_list(outbox_producer_properties, &props, &problem))
	{
		strlcpy(errbuf, problem.message, errbuf_size);
		return false;
	}
	if (outbox_producer_properties_file != NULL &&
		*outbox_producer_properties_file != '\0')
	{
		if (!outbox_read_property_file(outbox_producer_properties_file,
									   &file_props, &problem))
		{
			strlcpy(errbuf, problem.message, errbuf_size);
			return false;
		}
		props = list_concat(props, file_props);
	}
	foreach(lc, props)
	{
		OutboxProperty *prop = (OutboxProperty *) lfirst(lc);
		int			i;

		for (i = 0; i < lengthof(connection_prefixes); i++)
		{
			if (strncmp(prop->name, connection_prefixes[i],
						strlen(connection_prefixes[i])) != 0)
				continue;
			if (!set_conf(conf, prop->name, prop->value, errbuf, errbuf_size))
				return false;
			break;
		}
	}
	return true;
}

/*
 * set_consumer_properties: the properties of
 * outbox_kafka.consumer_properties, after the inbox's defaults; those the
 * inbox sets itself are refused again here (the check hook refused them
 * already), so that nothing can override them.
 */
static bool
set_consumer_properties(rd_kafka_conf_t *conf, char *errbuf, size_t errbuf_size)
{
	OutboxPropertyProblem problem;
	List	   *props = NIL;
	ListCell   *lc;

	if (!outbox_parse_property_list(outbox_consumer_properties, &props, &problem) ||
		!outbox_check_consumer_properties(props, &problem))
	{
		strlcpy(errbuf, problem.message, errbuf_size);
		return false;
	}
	foreach(lc, props)
	{
		OutboxProperty *prop = (OutboxProperty *) lfirst(lc);

		if (!set_conf(conf, prop->name, prop->value, errbuf, errbuf_size))
			return false;
	}
	return true;
}

/*
 * inbox_consumer_create: a consumer of topic for the group group_id, whose
 * queue writes to wake_fd when messages or events arrive.  Nothing is
 * assigned yet.  Returns NULL with a message in errbuf on failure.
 */
InboxConsumer *
inbox_consumer_create(const char *group_id, const char *topic, int wake_fd,
					  char *errbuf, size_t errbuf_size)
{
	static const char *const defaults[][2] = {
		{"enable.auto.commit", "false"},
		{"enable.auto.offset.store", "false"},
		{"enable.partition.eof", "false"},
		{"auto.offset.reset", "earliest"},
		{"isolation.level", "read_committed"},
		{"allow.auto.create.topics", "false"},
		{"socket.nagle.disable", "true"},
		{"reconnect.backoff.ms", "100"},
		{"reconnect.backoff.max.ms", "1000"},
		{"fetch.wait.max.ms", "100"},
	};
	InboxConsumer *consumer = MemoryContextAllocZero(TopMemoryContext,
													 sizeof(InboxConsumer));
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[512];
	int			i;

	consumer->topic = MemoryContextStrdup(TopMemoryContext, topic);
	pthread_mutex_init(&consumer->log_lock, NULL);
	if (!set_conf(conf, "bootstrap.servers", outbox_bootstrap_servers, errbuf, errbuf_size) ||
		!set_conf(conf, "group.id", group_id, errbuf, errbuf_size) ||
		!set_conf(conf, "client.id", group_id, errbuf, errbuf_size))
		goto fail;
	for (i = 0; i < lengthof(defaults); i++)
		if (!set_conf(conf, defaults[i][0], defaults[i][1], errbuf, errbuf_size))
			goto fail;
	if (!set_connection_properties(conf, errbuf, errbuf_size) ||
		!set_consumer_properties(conf, errbuf, errbuf_size) ||
		!set_conf(conf, "log.queue", "true", errbuf, errbuf_size))
		goto fail;
	rd_kafka_conf_set_opaque(conf, consumer);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
	rd_kafka_conf_set_log_cb(conf, on_log);
	outbox_librdkafka_vet_config(conf);

	consumer->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (consumer->rk == NULL)
	{
		strlcpy(errbuf, errstr, errbuf_size);
		goto fail;
	}
	/* from here on rd_kafka_new owns conf */
	rd_kafka_set_log_queue(consumer->rk, NULL);
	rd_kafka_poll_set_consumer(consumer->rk);
	consumer->queue = rd_kafka_queue_get_consumer(consumer->rk);
	if (wake_fd >= 0)
		rd_kafka_queue_io_event_enable(consumer->queue, wake_fd, "1", 1);
	return consumer;

fail:
	if (consumer->rk == NULL)
		rd_kafka_conf_destroy(conf);
	pfree(consumer->topic);
	pfree(consumer);
	return NULL;
}

/*
 * inbox_consumer_destroy: stop consuming and free everything.  Commits
 * nothing (not even the offsets inbox_consumer_commit() keeps) and waits
 * for no group: the offsets are in PostgreSQL.
 */
void
inbox_consumer_destroy(InboxConsumer *consumer)
{
	if (consumer == NULL)
		return;
	/*
	 * Offsets not yet committed to Kafka are dropped, not sent: the
	 * consumer may go because the stored offsets were moved back (a
	 * rewind), and Kafka's must never lead PostgreSQL's.  The next
	 * consumer's first commit catches up.
	 */
	if (consumer->pending != NULL)
		rd_kafka_topic_partition_list_destroy(consumer->pending);
	if (consumer->sent != NULL)
		rd_kafka_topic_partition_list_destroy(consumer->sent);
	rd_kafka_queue_io_event_enable(consumer->queue, -1, NULL, 0);
	rd_kafka_queue_destroy(consumer->queue);
	rd_kafka_destroy_flags(consumer->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	emit_logs(consumer);
	pthread_mutex_destroy(&consumer->log_lock);
	pfree(consumer->topic);
	pfree(consumer);
}

/*
 * inbox_consumer_partitions: the partitions of the topic, from metadata
 * (waits up to timeout_ms), as a palloc'd array in *partitions.  Returns
 * their number, or -1 with a message in errbuf.
 */
int
inbox_consumer_partitions(InboxConsumer *consumer, int timeout_ms,
						  int32 **partitions, char *errbuf, size_t errbuf_size)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(consumer->rk, consumer->topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	int			n = -1;
	int			i;

	if (rkt == NULL)
	{
		snprintf(errbuf, errbuf_size, "invalid topic \"%s\"", consumer->topic);
		return -1;
	}
	err = rd_kafka_metadata(consumer->rk, 0, rkt, &md, timeout_ms);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		snprintf(errbuf, errbuf_size, "metadata of topic \"%s\": %s",
				 consumer->topic, rd_kafka_err2str(err));
	else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
		snprintf(errbuf, errbuf_size, "topic \"%s\": %s", consumer->topic,
				 md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not found");
	else
	{
		n = md->topics[0].partition_cnt;
		*partitions = palloc(sizeof(int32) * Max(n, 1));
		for (i = 0; i < n; i++)
			(*partitions)[i] = md->topics[0].partitions[i].id;
	}
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	emit_logs(consumer);
	return n;
}

/*
 * inbox_consumer_assign: consume partitions[i] from offsets[i] (an offset
 * below 0 means the beginning), replacing any earlier assignment.
 */
void
inbox_consumer_assign(InboxConsumer *consumer, int n, const int32 *partitions,
					  const int64 *offsets)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(Max(n, 1));
	rd_kafka_resp_err_t err;
	int			i;

	for (i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(list, consumer->topic, partitions[i])->offset =
			offsets[i] >= 0 ? offsets[i] : RD_KAFKA_OFFSET_BEGINNING;
	err = rd_kafka_assign(consumer->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not assign the partitions of topic \"%s\": %s",
						consumer->topic, rd_kafka_err2str(err))));
}

/*
 * one_partition: a partition list of one entry.
 */
static rd_kafka_topic_partition_list_t *
one_partition(const char *topic, int32 partition, int64 offset)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);

	rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
	return list;
}

/*
 * inbox_consumer_pause: stop fetching partition; messages of it already
 * fetched are dropped by librdkafka.
 */
void
inbox_consumer_pause(InboxConsumer *consumer, int32 partition)
{
	rd_kafka_topic_partition_list_t *list = one_partition(consumer->topic, partition, 0);

	(void) rd_kafka_pause_partitions(consumer->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
}

/*
 * inbox_consumer_resume_at: fetch partition again, from offset.
 */
void
inbox_consumer_resume_at(InboxConsumer *consumer, int32 partition, int64 offset)
{
	rd_kafka_topic_partition_list_t *list = one_partition(consumer->topic, partition, offset);
	rd_kafka_error_t *error;

	error = rd_kafka_seek_partitions(consumer->rk, list, 0);
	if (error != NULL)
		rd_kafka_error_destroy(error);
	(void) rd_kafka_resume_partitions(consumer->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
}

/*
 * copy_message: out := msg, copied into the current memory context, with
 * its headers as a JSON object and its de-duplication key.
 */
static void
copy_message(rd_kafka_message_t *msg, const char *topic, InboxMessage *out)
{
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_timestamp_type_t tstype;
	int64		ts;
	char	   *event_id = NULL;
	char	   *outbox_id = NULL;

	memset(out, 0, sizeof(*out));
	out->partition = msg->partition;
	out->offset = msg->offset;
	if (msg->key != NULL)
	{
		out->key = palloc(msg->key_len + 1);
		memcpy(out->key, msg->key, msg->key_len);
		out->key_len = msg->key_len;
	}
	if (msg->payload != NULL)
	{
		out->value = palloc(msg->len + 1);
		memcpy(out->value, msg->payload, msg->len);
		out->value_len = msg->len;
	}
	ts = rd_kafka_message_timestamp(msg, &tstype);
	if (ts >= 0)
		out->timestamp = ts * 1000 -
			((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);

	if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		rd_kafka_header_cnt(hdrs) > 0)
	{
		StringInfoData json;
		const char *name;
		const void *value;
		size_t		size;
		size_t		i;
		bool		utf8 = (GetDatabaseEncoding() == PG_UTF8 ||
							GetDatabaseEncoding() == PG_SQL_ASCII);

		initStringInfo(&json);
		appendStringInfoChar(&json, '{');
		for (i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
			 RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		{
			char	   *text = NULL;

			if (value != NULL && utf8 &&
				pg_verify_mbstr(PG_UTF8, value, size, true))
				text = pnstrdup(value, size);
			if (i > 0)
				appendStringInfoChar(&json, ',');
			escape_json(&json, name);
			appendStringInfoChar(&json, ':');
			if (text == NULL)
				appendStringInfoString(&json, "null");
			else
				escape_json(&json, text);
			if (text != NULL && strcmp(name, "outbox-event-id") == 0)
				event_id = text;
			else if (text != NULL && strcmp(name, "outbox-id") == 0)
				outbox_id = text;
		}
		appendStringInfoChar(&json, '}');
		out->headers_json = json.data;
	}

	if (event_id != NULL)
		out->dedupe_key = psprintf("event:%s", event_id);
	else if (outbox_id != NULL)
		out->dedupe_key = psprintf("outbox-id:%s:%s", topic, outbox_id);
	else
		out->dedupe_key = psprintf("offset:%s:%d:" INT64_FORMAT, topic,
								   out->partition, out->offset);
}

/*
 * inbox_consumer_poll: up to max messages that are ready, without
 * waiting, copied into out[] (in the current memory context).  Returns
 * their number; errors of the cluster are kept for
 * inbox_consumer_take_error().  Per partition, messages come in offset
 * order.
 */
int
inbox_consumer_poll(InboxConsumer *consumer, InboxMessage *out, int max)
{
	int			n = 0;

	while (n < max)
	{
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer->rk, 0);

		if (msg == NULL)
			break;
		if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			consumer->last_error = msg->err;
			snprintf(consumer->last_error_text, sizeof(consumer->last_error_text),
					 "%s", rd_kafka_message_errstr(msg));
		}
		else
			copy_message(msg, consumer->topic, &out[n++]);
		rd_kafka_message_destroy(msg);
	}
	emit_logs(consumer);
	return n;
}

/*
 * inbox_consumer_take_error: the last error the cluster reported since
 * the last call, copied into errbuf; false if none.
 */
bool
inbox_consumer_take_error(InboxConsumer *consumer, char *errbuf, size_t errbuf_size)
{
	if (consumer->last_error == 0)
		return false;
	snprintf(errbuf, errbuf_size, "%s: %s", rd_kafka_err2name(consumer->last_error),
			 consumer->last_error_text);
	consumer->last_error = 0;
	return true;
}

/*
 * inbox_consumer_high_watermark: the partition's high watermark as last
 * seen in a fetch response (no request is made), or -1 if unknown.
 */
int64
inbox_consumer_high_watermark(InboxConsumer *consumer, int32 partition)
{
	int64_t		low = -1;
	int64_t		high = -1;

	if (rd_kafka_get_watermark_offsets(consumer->rk, consumer->topic, partition,
									   &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return -1;
	return high;
}

/*
 * inbox_consumer_commit: offsets[i] of partitions[i] were stored in
 * PostgreSQL (committed): commit them to Kafka too, asynchronously, only
 * for lag tools; at most once per INBOX_KAFKA_COMMIT_MS, so they may wait
 * for inbox_consumer_commit_due().
 */
void
inbox_consumer_commit(InboxConsumer *consumer, int n, const int32 *partitions,
					  const int64 *offsets)
{
	int			i;

	if (n == 0)
		return;
	if (consumer->pending == NULL)
		consumer->pending = rd_kafka_topic_partition_list_new(n);
	for (i = 0; i < n; i++)
	{
		rd_kafka_topic_partition_t *tp;

		tp = rd_kafka_topic_partition_list_find(consumer->pending, consumer->topic,
												partitions[i]);
		if (tp == NULL)
			tp = rd_kafka_topic_partition_list_add(consumer->pending, consumer->topic,
												   partitions[i]);
		tp->offset = offsets[i];
	}
	(void) inbox_consumer_commit_due(consumer);
}

/*
 * inbox_consumer_commit_due: commit to Kafka the offsets
 * inbox_consumer_commit() keeps if their time has come (with those of a
 * commit that failed since, which go again).  Returns how many
 * milliseconds (at least 1) until they are due, or -1 if none waits.
 */
long
inbox_consumer_commit_due(InboxConsumer *consumer)
{
	TimestampTz now;
	TimestampTz due;

	if (consumer->commit_failed)
		keep_unconfirmed(consumer);
	if (consumer->pending == NULL)
		return -1;
	now = GetCurrentTimestamp();
	due = TimestampTzPlusMilliseconds(consumer->committed_at, INBOX_KAFKA_COMMIT_MS);
	if (now < due)
	{
		long		ms = TimestampDifferenceMilliseconds(now, due);

		return ms > 0 ? ms : 1;
	}
	(void) rd_kafka_commit(consumer->rk, consumer->pending, 1);
	/* kept until the next commit, to be sent again if this one fails */
	if (consumer->sent != NULL)
		rd_kafka_topic_partition_list_destroy(consumer->sent);
	consumer->sent = consumer->pending;
	consumer->pending = NULL;
	consumer->committed_at = now;
	return -1;
}

/*
 * inbox_consumer_offsets_for_times: for each of partitions[0..n-1], the
 * offset of its first message whose timestamp is at or after at_ms
 * (milliseconds since the Unix epoch), or its high watermark where there
 * is none, into offsets[].  Waits up to timeout_ms for each request.
 * Returns false with a message in errbuf if the cluster could not say.
 */
bool
inbox_consumer_offsets_for_times(InboxConsumer *consumer, int n,
								 const int32 *partitions, int64 at_ms,
								 int timeout_ms, int64 *offsets,
								 char *errbuf, size_t errbuf_size)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(Max(n, 1));
	rd_kafka_resp_err_t err;
	bool		ok = true;
	int			i;

	for (i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(list, consumer->topic, partitions[i])->offset = at_ms;
	err = rd_kafka_offsets_for_times(consumer->rk, list, timeout_ms);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		snprintf(errbuf, errbuf_size, "offsets for a time of topic \"%s\": %s",
				 consumer->topic, rd_kafka_err2str(err));
		ok = false;
	}
	for (i = 0; ok && i < n; i++)
	{
		rd_kafka_topic_partition_t *tp = &list->elems[i];

		if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			snprintf(errbuf, errbuf_size, "offset for a time of partition %d of topic \"%s\": %s",
					 tp->partition, consumer->topic, rd_kafka_err2str(tp->err));
			ok = false;
		}
		else if (tp->offset >= 0)
			offsets[i] = tp->offset;
		else
		{
			/* no message that late: the end of the partition */
			int64_t		low;
			int64_t		high;

			err = rd_kafka_query_watermark_offsets(consumer->rk, consumer->topic,
												   tp->partition, &low, &high,
												   timeout_ms);
			if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
			{
				snprintf(errbuf, errbuf_size, "high watermark of partition %d of topic \"%s\": %s",
						 tp->partition, consumer->topic, rd_kafka_err2str(err));
				ok = false;
			}
			else
				offsets[i] = high;
		}
	}
	rd_kafka_topic_partition_list_destroy(list);
	emit_logs(consumer);
	return ok;
}
