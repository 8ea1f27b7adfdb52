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
			"create-topic|delete-topic|allow|revoke ARGS...", NULL);

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
