/*-------------------------------------------------------------------------
 *
 * kafka_admin.c
 *		A small Kafka admin client for the tests, the demo and the
 *		benchmarks: creates topics and grants or revokes topic ACLs through
 *		librdkafka's Admin API, so that no JVM has to start for each of
 *		those steps (a Kafka CLI tool costs seconds of CPU on 2 cores).
 *
 * Usage:
 *	kafka_admin -b BOOTSTRAP [-X key=value]... COMMAND [ARGS]...
 *	kafka_admin version		(the version of the librdkafka it runs with,
 *							 e.g. 2.0.2: the relay's, as both link the
 *							 system's)
 *
 *	create-topic NAME PARTITIONS REPLICATION [config=value]...
 *	delete-topic NAME
 *	allow PRINCIPAL OPERATION TOPIC		(an ALLOW ACL on a literal topic)
 *	revoke PRINCIPAL OPERATION TOPIC	(delete that ACL)
 *	produce TOPIC [RATE]	(stdin lines KEY<TAB>EVENT-ID<TAB>VALUE, each a
 *							 message with the header outbox-event-id, by an
 *							 idempotent producer that retries forever, at
 *							 most RATE a second; prints "delivered N")
 *	group-offsets GROUP TOPIC	(the offsets GROUP committed, one line
 *							 "PARTITION OFFSET" per partition, -1 if none;
 *							 then "state STATE" and "members N", the
 *							 group's state and members, as the
 *							 coordinator lists them)
 *
 * PRINCIPAL is e.g. User:alice, OPERATION one of Write, Read, Describe,
 * Create, All.  -X properties go to librdkafka (security.protocol, sasl.*,
 * ssl.*).  Exits 0 on success, 1 with a message on stderr otherwise.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define TIMEOUT_MS 30000

static rd_kafka_t *rk;
static rd_kafka_queue_t *queue;

/*
 * die: print a message and exit with status 1.
 */
static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "kafka_admin: %s%s%s\n", what, detail ? ": " : "",
			detail ? detail : "");
	exit(1);
}

/*
 * wait_result: wait for the result event of one admin request of type
 * want; dies on a request-level error.
 */
static rd_kafka_event_t *
wait_result(rd_kafka_event_type_t want)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(queue, TIMEOUT_MS + 5000);

	if (ev == NULL)
		die("no reply from the cluster", NULL);
	if (rd_kafka_event_type(ev) != want)
		die("unexpected event", rd_kafka_event_name(ev));
	if (rd_kafka_event_error(ev))
		die("request failed", rd_kafka_event_error_string(ev));
	return ev;
}

/*
 * admin_options: options for a request of kind api, with broker-side
 * operation timeout (so that the broker answers once the change is done).
 */
static rd_kafka_AdminOptions_t *
admin_options(rd_kafka_admin_op_t api)
{
	char		errstr[256];
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, api);

	rd_kafka_AdminOptions_set_request_timeout(o, TIMEOUT_MS, errstr, sizeof(errstr));
	if (api == RD_KAFKA_ADMIN_OP_CREATETOPICS || api == RD_KAFKA_ADMIN_OP_DELETETOPICS)
		rd_kafka_AdminOptions_set_operation_timeout(o, TIMEOUT_MS, errstr, sizeof(errstr));
	return o;
}

/*
 * check_topic_results: die if one of the topic results carries an error.
 */
static void
check_topic_results(const rd_kafka_topic_result_t **res, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rd_kafka_topic_result_error(res[i]))
			die(rd_kafka_topic_result_name(res[i]),
				rd_kafka_topic_result_error_string(res[i]));
}

/*
 * create_topic: argv = NAME PARTITIONS REPLICATION [config=value]...
 */
static void
create_topic(int argc, char **argv)
{
	char		errstr[512];
	rd_kafka_NewTopic_t *nt;
	rd_kafka_AdminOptions_t *o;
	rd_kafka_event_t *ev;
	const rd_kafka_CreateTopics_result_t *r;
	const rd_kafka_topic_result_t **res;
	size_t		n;

	if (argc < 3)
		die("usage: create-topic NAME PARTITIONS REPLICATION [config=value]...", NULL);
	nt = rd_kafka_NewTopic_new(argv[0], atoi(argv[1]), atoi(argv[2]),
							   errstr, sizeof(errstr));
	if (nt == NULL)
		die("bad topic", errstr);
	for (int i = 3; i < argc; i++)
	{
		char	   *eq = strchr(argv[i], '=');

		if (eq == NULL)
			die("topic config must be name=value", argv[i]);
		*eq = '\0';
		if (rd_kafka_NewTopic_set_config(nt, argv[i], eq + 1))
			die("bad topic config", argv[i]);
	}
	o = admin_options(RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_CreateTopics(rk, &nt, 1, o, queue);
	ev = wait_result(RD_KAFKA_EVENT_CREATETOPICS_RESULT);
	r = rd_kafka_event_CreateTopics_result(ev);
	res = rd_kafka_CreateTopics_result_topics(r, &n);
	check_topic_results(res, n);
	rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_NewTopic_destroy(nt);
}

/*
 * delete_topic: argv = NAME
 */
static void
delete_topic(int argc, char **argv)
{
	rd_kafka_DeleteTopic_t *dt;
	rd_kafka_AdminOptions_t *o;
	rd_kafka_event_t *ev;
	const rd_kafka_topic_result_t **res;
	size_t		n;

	if (argc < 1)
		die("usage: delete-topic NAME", NULL);
	dt = rd_kafka_DeleteTopic_new(argv[0]);
	o = admin_options(RD_KAFKA_ADMIN_OP_DELETETOPICS);
	rd_kafka_DeleteTopics(rk, &dt, 1, o, queue);
	ev = wait_result(RD_KAFKA_EVENT_DELETETOPICS_RESULT);
	res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
	check_topic_results(res, n);
	rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_DeleteTopic_destroy(dt);
}

/*
 * parse_operation: an ACL operation name (case-insensitive).
 */
static rd_kafka_AclOperation_t
parse_operation(const char *s)
{
	static const struct
	{
		const char *name;
		rd_kafka_AclOperation_t op;
	}			ops[] = {
		{"All", RD_KAFKA_ACL_OPERATION_ALL},
		{"Read", RD_KAFKA_ACL_OPERATION_READ},
		{"Write", RD_KAFKA_ACL_OPERATION_WRITE},
		{"Create", RD_KAFKA_ACL_OPERATION_CREATE},
		{"Delete", RD_KAFKA_ACL_OPERATION_DELETE},
		{"Describe", RD_KAFKA_ACL_OPERATION_DESCRIBE},
		{"IdempotentWrite", RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE},
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcasecmp(s, ops[i].name) == 0)
			return ops[i].op;
	die("unknown ACL operation", s);
	return RD_KAFKA_ACL_OPERATION_UNKNOWN;
}

/*
 * acl: argv = PRINCIPAL OPERATION TOPIC; grant (create) or revoke (delete)
 * an ALLOW ACL for that principal on that literal topic, from any host.
 */
static void
acl(int argc, char **argv, int grant)
{
	char		errstr[512];
	rd_kafka_AdminOptions_t *o;
	rd_kafka_event_t *ev;

	if (argc < 3)
		die("usage: allow|revoke PRINCIPAL OPERATION TOPIC", NULL);
	if (grant)
	{
		rd_kafka_AclBinding_t *b;
		const rd_kafka_acl_result_t **res;
		size_t		n;

		b = rd_kafka_AclBinding_new(RD_KAFKA_RESOURCE_TOPIC, argv[2],
									RD_KAFKA_RESOURCE_PATTERN_LITERAL,
									argv[0], "*", parse_operation(argv[1]),
									RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
									errstr, sizeof(errstr));
		if (b == NULL)
			die("bad ACL", errstr);
		o = admin_options(RD_KAFKA_ADMIN_OP_CREATEACLS);
		rd_kafka_CreateAcls(rk, &b, 1, o, queue);
		ev = wait_result(RD_KAFKA_EVENT_CREATEACLS_RESULT);
		res = rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &n);
		for (size_t i = 0; i < n; i++)
			if (rd_kafka_acl_result_error(res[i]))
				die("CreateAcls", rd_kafka_error_string(rd_kafka_acl_result_error(res[i])));
		rd_kafka_AclBinding_destroy(b);
	}
	else
	{
		rd_kafka_AclBindingFilter_t *f;
		const rd_kafka_DeleteAcls_result_response_t **res;
		size_t		n;

		f = rd_kafka_AclBindingFilter_new(RD_KAFKA_RESOURCE_TOPIC, argv[2],
										  RD_KAFKA_RESOURCE_PATTERN_LITERAL,
										  argv[0], "*", parse_operation(argv[1]),
										  RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
										  errstr, sizeof(errstr));
		if (f == NULL)
			die("bad ACL filter", errstr);
		o = admin_options(RD_KAFKA_ADMIN_OP_DELETEACLS);
		rd_kafka_DeleteAcls(rk, &f, 1, o, queue);
		ev = wait_result(RD_KAFKA_EVENT_DELETEACLS_RESULT);
		res = rd_kafka_DeleteAcls_result_responses(rd_kafka_event_DeleteAcls_result(ev), &n);
		for (size_t i = 0; i < n; i++)
			if (rd_kafka_DeleteAcls_result_response_error(res[i]))
				die("DeleteAcls",
					rd_kafka_error_string(rd_kafka_DeleteAcls_result_response_error(res[i])));
		rd_kafka_AclBinding_destroy(f);
	}
	rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(o);
}

static long delivered;
static long failed;

/*
 * delivery_report: count what the cluster acknowledged or refused (called
 * by rd_kafka_poll on the main thread).
 */
static void
delivery_report(rd_kafka_t *producer, const rd_kafka_message_t *m, void *opaque)
{
	(void) producer;
	(void) opaque;
	if (m->err)
	{
		if (failed++ < 10)
			fprintf(stderr, "kafka_admin: not delivered: %s\n", rd_kafka_err2str(m->err));
	}
	else
		delivered++;
}

/*
 * now_s: seconds on the monotonic clock.
 */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * produce: argv = TOPIC [RATE]; stdin lines KEY<TAB>EVENT-ID<TAB>VALUE.
 * The producer is idempotent and never times a message out, so that a
 * broker killed and restarted neither loses, reorders nor duplicates
 * anything: the only copies in the topic are the lines given twice.
 * Exits 1 unless every message was delivered.
 */
static void
produce(rd_kafka_conf_t *conf, int argc, char **argv)
{
	char		errstr[512];
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	double		rate = argc > 1 ? atof(argv[1]) : 0;
	double		t0 = now_s();
	long		n = 0;
	rd_kafka_t *producer;

	if (argc < 1)
		die("usage: produce TOPIC [RATE]", NULL);
	if (rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "message.timeout.ms", "0", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)))
		die("producer configuration", errstr);
	rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
	producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (producer == NULL)
		die("rd_kafka_new", errstr);
	while ((len = getline(&line, &cap, stdin)) > 0)
	{
		char	   *event = strchr(line, '\t');
		char	   *value = event ? strchr(event + 1, '\t') : NULL;
		rd_kafka_resp_err_t err;

		if (value == NULL)
			die("a line must be KEY<TAB>EVENT-ID<TAB>VALUE", line);
		*event++ = '\0';
		*value++ = '\0';
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		while (rate > 0 && n >= rate * (now_s() - t0))
			rd_kafka_poll(producer, 1);
		do
		{
			err = rd_kafka_producev(producer,
									RD_KAFKA_V_TOPIC(argv[0]),
									RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
									RD_KAFKA_V_KEY(line, strlen(line)),
									RD_KAFKA_V_VALUE(value, strlen(value)),
									RD_KAFKA_V_HEADER("outbox-event-id", event, -1),
									RD_KAFKA_V_END);
			if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(producer, 10);
			else if (err)
				die("produce", rd_kafka_err2str(err));
		} while (err);
		n++;
		rd_kafka_poll(producer, 0);
	}
	while (rd_kafka_outq_len(producer) > 0)
		rd_kafka_poll(producer, 100);
	if (rd_kafka_fatal_error(producer, errstr, sizeof(errstr)))
		die("fatal producer error", errstr);
	rd_kafka_destroy(producer);
	free(line);
	printf("delivered %ld\n", delivered);
	if (failed > 0 || delivered != n)
		die("some messages were not delivered", NULL);
}

/*
 * group_offsets: argv = GROUP TOPIC; print the offset GROUP committed for
 * each partition of TOPIC, as a consumer of that group that never joins
 * it (no rebalance is caused).
 */
static void
group_offsets(rd_kafka_conf_t *conf, int argc, char **argv)
{
	char		errstr[512];
	rd_kafka_t *consumer;
	rd_kafka_topic_t *topic;
	const rd_kafka_metadata_t *md;
	rd_kafka_topic_partition_list_t *list;
	const struct rd_kafka_group_list *groups;
	rd_kafka_resp_err_t err;

	if (argc < 2)
		die("usage: group-offsets GROUP TOPIC", NULL);
	if (rd_kafka_conf_set(conf, "group.id", argv[0], errstr, sizeof(errstr)))
		die("group.id", errstr);
	consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (consumer == NULL)
		die("rd_kafka_new", errstr);
	topic = rd_kafka_topic_new(consumer, argv[1], NULL);
	err = rd_kafka_metadata(consumer, 0, topic, &md, TIMEOUT_MS);
	if (err)
		die("metadata", rd_kafka_err2str(err));
	if (md->topic_cnt != 1 || md->topics[0].err)
		die("unknown topic", argv[1]);
	list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(list, argv[1], md->topics[0].partitions[i].id);
	rd_kafka_metadata_destroy(md);
	err = rd_kafka_committed(consumer, list, TIMEOUT_MS);
	if (err)
		die("committed", rd_kafka_err2str(err));
	for (int i = 0; i < list->cnt; i++)
		printf("%d %lld\n", (int) list->elems[i].partition,
			   list->elems[i].offset < 0 ? -1LL : (long long) list->elems[i].offset);
	rd_kafka_topic_partition_list_destroy(list);
	err = rd_kafka_list_groups(consumer, argv[0], &groups, TIMEOUT_MS);
	if (err)
		die("list groups", rd_kafka_err2str(err));
	for (int i = 0; i < groups->group_cnt; i++)
		printf("state %s\nmembers %d\n", groups->groups[i].state,
			   groups->groups[i].member_cnt);
	rd_kafka_group_list_destroy(groups);
	rd_kafka_topic_destroy(topic);
	rd_kafka_destroy(consumer);
}

int
main(int argc, char **argv)
{
	char		errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int			i = 1;

	if (argc == 2 && strcmp(argv[1], "version") == 0)
	{
		printf("%s\n", rd_kafka_version_str());
		return 0;
	}
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2)
	{
		if (strcmp(argv[i], "-b") == 0)
		{
			if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[i + 1],
								  errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
				die("bootstrap.servers", errstr);
		}
		else if (strcmp(argv[i], "-X") == 0)
		{
			char	   *eq = strchr(argv[i + 1], '=');

			if (eq == NULL)
				die("-X needs key=value", argv[i + 1]);
			*eq = '\0';
			if (rd_kafka_conf_set(conf, argv[i + 1], eq + 1,
								  errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
				die(argv[i + 1], errstr);
		}
		else
			die("unknown option", argv[i]);
	}
	if (i >= argc)
		die("usage: kafka_admin -b BOOTSTRAP [-X key=value]... "
			"create-topic|delete-topic|allow|revoke|produce|group-offsets ARGS...", NULL);
	if (strcmp(argv[i], "produce") == 0)
	{
		produce(conf, argc - i - 1, argv + i + 1);
		return 0;
	}
	if (strcmp(argv[i], "group-offsets") == 0)
	{
		group_offsets(conf, argc - i - 1, argv + i + 1);
		return 0;
	}

	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
		die("rd_kafka_new", errstr);
	queue = rd_kafka_queue_new(rk);

	if (strcmp(argv[i], "create-topic") == 0)
		create_topic(argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "delete-topic") == 0)
		delete_topic(argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "allow") == 0)
		acl(argc - i - 1, argv + i + 1, 1);
	else if (strcmp(argv[i], "revoke") == 0)
		acl(argc - i - 1, argv + i + 1, 0);
	else
		die("unknown command", argv[i]);

	rd_kafka_queue_destroy(queue);
	rd_kafka_destroy(rk);
	return 0;
}
