/*-------------------------------------------------------------------------
 *
 * mock_kafka.c
 *	  Stand-alone Kafka mock cluster for the test suite.
 *
 * This program wraps librdkafka's built-in mock cluster
 * (<librdkafka/rdkafka_mock.h>, rd_kafka_mock_cluster_new() and friends) in
 * a process of its own, so that shell scripts and regression tests can talk
 * to a "Kafka cluster" on loopback without a JVM.
 *
 * Protocol:
 *	  - On start-up exactly one line "BOOTSTRAP=<host:port,...>" is written to
 *		stdout (and flushed).
 *	  - Newline-separated commands are then read from stdin, or from a FIFO
 *		when --control-fifo is given.  Every command produces exactly one
 *		reply line on stdout, "OK" or "ERR <reason>", flushed immediately.
 *		Blank lines and lines starting with '#' are ignored (no reply).
 *	  - EOF on stdin (stdin mode only), SIGTERM, SIGINT or SIGHUP destroy the
 *		cluster and exit with status 0.
 *
 * See README.md in this directory for the command list and caveats.
 *
 * The program also interposes accept() and accept4() so that every socket
 * accepted by the mock brokers gets TCP_NODELAY; librdkafka 2.0.2 leaves
 * Nagle's algorithm enabled on them, which adds ~40 ms to many round trips.
 * This relies on linking with -rdynamic so the library's calls bind to the
 * definitions in this executable.
 *
 * IDENTIFICATION
 *	  test/mock_kafka/mock_kafka.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Kafka protocol ApiKey of ProduceRequest */
#define MOCK_APIKEY_PRODUCE		0

/* Partition count librdkafka 2.0.2 hard-codes for auto-created topics */
#define MOCK_AUTO_PARTITIONS	4

/* Longest accepted command line, including the newline */
#define MAX_LINE_LEN			4096

/* Most whitespace-separated words in one command */
#define MAX_ARGS				256

/* Exit status for command line errors */
#define EXIT_USAGE				2

/*
 * How long an orderly cluster teardown may take before we just _exit().
 * See shutdown_cluster() for why this is needed.
 */
#define SHUTDOWN_GRACE_MS		200

/* Result of feeding input to the command interpreter */
typedef enum InputStatus
{
	INPUT_MORE,					/* keep going */
	INPUT_EOF,					/* input source is exhausted */
	INPUT_QUIT,					/* "quit" command was executed */
	INPUT_FATAL					/* unrecoverable I/O error */
} InputStatus;

/* Buffered, line-oriented reader for the command channel */
typedef struct InputState
{
	int			fd;				/* descriptor commands are read from */
	char		buf[MAX_LINE_LEN];	/* partial line carried between reads */
	size_t		len;			/* bytes used in buf */
	bool		discarding;		/* skipping the tail of an over-long line */
} InputState;

/* A command handler; on failure it fills errbuf and returns false */
typedef bool (*CommandFn) (int argc, char **argv, char *errbuf,
						   size_t errlen);

/* Entry in the command table */
typedef struct Command
{
	const char *name;			/* first word of the command */
	int			min_args;		/* minimum number of arguments after it */
	int			max_args;		/* maximum, or -1 for unlimited */
	CommandFn	fn;				/* handler */
	const char *usage;			/* usage text reported on bad arguments */
} Command;

/* Alternative (mostly Java client) spellings of Kafka error names */
typedef struct ErrorAlias
{
	const char *name;
	rd_kafka_resp_err_t code;
} ErrorAlias;

/* Function pointer types for the real accept()/accept4() */
typedef int (*accept_fn) (int, __SOCKADDR_ARG, socklen_t *);
typedef int (*accept4_fn) (int, __SOCKADDR_ARG, socklen_t *, int);

static rd_kafka_t *mock_rk = NULL;	/* handle owning the mock cluster */
static rd_kafka_mock_cluster_t *mcluster = NULL;	/* the mock cluster */
/* Kafka protocol ApiKeys (librdkafka's RD_KAFKAP_Produce, _Fetch) */
#define MOCK_API_PRODUCE 0
#define MOCK_API_FETCH	1
static int	broker_count = 1;	/* number of mock brokers */
static bool stdout_failed = false;	/* a reply could not be written */

/* Files to remove on exit */
static const char *fifo_path = NULL;	/* --control-fifo, if given */
static bool fifo_created = false;	/* we created fifo_path */
static const char *pidfile = NULL;	/* --pidfile, once written */

/* Shutdown watchdog state; see shutdown_cluster() */
static pthread_mutex_t shutdown_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t shutdown_cond = PTHREAD_COND_INITIALIZER;
static bool shutdown_done = false;
static int	shutdown_status = 0;

/* Cached addresses of the real accept()/accept4(); see resolve_next() */
static void *real_accept_ptr = NULL;
static void *real_accept4_ptr = NULL;

static const ErrorAlias error_aliases[] = {
	{"NONE", RD_KAFKA_RESP_ERR_NO_ERROR},
	{"UNKNOWN_SERVER_ERROR", RD_KAFKA_RESP_ERR_UNKNOWN},
	{"CORRUPT_MESSAGE", RD_KAFKA_RESP_ERR_INVALID_MSG},
	{"UNKNOWN_TOPIC_OR_PARTITION", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART},
	{"INVALID_FETCH_SIZE", RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE},
	{"NOT_LEADER_OR_FOLLOWER", RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
	{"MESSAGE_TOO_LARGE", RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE},
	{"MESSAGE_SIZE_TOO_LARGE", RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE},
	{NULL, RD_KAFKA_RESP_ERR_NO_ERROR}
};


/* Kafka protocol ApiKey names accepted by the request error commands */
typedef struct ApiKeyName
{
	const char *name;
	int16_t		key;
} ApiKeyName;

static const ApiKeyName apikey_names[] = {
	{"Produce", 0},
	{"Fetch", 1},
	{"ListOffsets", 2},
	{"Metadata", 3},
	{"OffsetCommit", 8},
	{"OffsetFetch", 9},
	{"FindCoordinator", 10},
	{"JoinGroup", 11},
	{"Heartbeat", 12},
	{"LeaveGroup", 13},
	{"SyncGroup", 14},
	{"ApiVersions", 18},
	{"InitProducerId", 22},
	{"AddPartitionsToTxn", 24},
	{"EndTxn", 26},
	{NULL, 0}
};


/* ----------------------------------------------------------------------
 * TCP_NODELAY shim
 * ----------------------------------------------------------------------
 */

/*
 * resolve_next
 *		Return the next definition of symbol "name" after this executable
 *		(i.e. libc's), caching it in *cache.
 *
 * Several threads may race here; they all store the same value, so plain
 * atomic loads and stores are sufficient.
 */
static void *
resolve_next(void **cache, const char *name)
{
	void	   *fn = __atomic_load_n(cache, __ATOMIC_ACQUIRE);

	if (fn == NULL)
	{
		fn = dlsym(RTLD_NEXT, name);
		if (fn != NULL)
			__atomic_store_n(cache, fn, __ATOMIC_RELEASE);
	}
	return fn;
}

/*
 * set_nodelay
 *		Enable TCP_NODELAY on a freshly accepted socket, preserving errno.
 *
 * Failures (e.g. for non-TCP sockets) are deliberately ignored.
 */
static void
set_nodelay(int fd)
{
	int			save_errno = errno;
	int			on = 1;

	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	errno = save_errno;
}

/*
 * accept
 *		Interposed accept(2): forward to libc, then set TCP_NODELAY.
 *
 * librdkafka's mock broker calls accept() for every client connection;
 * because this executable is linked with -rdynamic, that call binds here.
 */
int
accept(int fd, __SOCKADDR_ARG addr, socklen_t *restrict addrlen)
{
	accept_fn	real = (accept_fn) resolve_next(&real_accept_ptr, "accept");
	int			s;

	if (real == NULL)
	{
		errno = ENOSYS;
		return -1;
	}
	s = real(fd, addr, addrlen);
	if (s >= 0)
		set_nodelay(s);
	return s;
}

/*
 * accept4
 *		Interposed accept4(2): forward to libc, then set TCP_NODELAY.
 *
 * Not used by librdkafka 2.0.2, but newer versions may switch to it.
 */
int
accept4(int fd, __SOCKADDR_ARG addr, socklen_t *restrict addrlen, int flags)
{
	accept4_fn	real = (accept4_fn) resolve_next(&real_accept4_ptr, "accept4");
	int			s;

	if (real == NULL)
	{
		errno = ENOSYS;
		return -1;
	}
	s = real(fd, addr, addrlen, flags);
	if (s >= 0)
		set_nodelay(s);
	return s;
}


/* ----------------------------------------------------------------------
 * Helpers
 * ----------------------------------------------------------------------
 */

/*
 * usage
 *		Print command line help to the given stream.
 */
static void
usage(FILE *out)
{
	fprintf(out,
			"Usage: mock_kafka [OPTION]...\n"
			"Run a librdkafka mock Kafka cluster on loopback.\n"
			"\n"
			"Options:\n"
			"  --brokers N               number of brokers (ids 1..N), default 1\n"
			"  --topic NAME[:PARTITIONS] create a topic at start-up (repeatable);\n"
			"                            default %d partitions\n"
			"  --auto-partitions P       partitions of auto-created topics; only\n"
			"                            %d is supported by librdkafka 2.0.2\n"
			"  --control-fifo PATH       read commands from FIFO PATH (created if\n"
			"                            missing) instead of stdin\n"
			"  --pidfile PATH            write the process id to PATH\n"
			"  --debug CONTEXTS          librdkafka debug contexts, e.g. \"mock\"\n"
			"  --help                    show this help\n"
			"\n"
			"Prints BOOTSTRAP=<host:port,...> and then answers each command with\n"
			"one line, OK or ERR <reason>.  Commands: ping, quit,\n"
			"broker_down ID, broker_up ID, rtt ID MS, leader TOPIC PART ID,\n"
			"create_topic NAME PARTITIONS, produce_errors COUNT ERR...,\n"
			"clear_produce_errors, request_errors APIKEY ERR...,\n"
			"clear_request_errors APIKEY, broker_request_errors ID APIKEY ERR[@MS]...,\n"
			"topic_error TOPIC ERR.\n",
			MOCK_AUTO_PARTITIONS, MOCK_AUTO_PARTITIONS);
}

/*
 * parse_long
 *		Parse a complete decimal integer within [min, max].
 *
 * Returns false if s is empty, has trailing garbage or is out of range.
 */
static bool
parse_long(const char *s, long min, long max, long *out)
{
	char	   *end;
	long		v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/*
 * parse_broker_id
 *		Parse a broker id: 1..broker_count, or -1 / "all" for every broker.
 */
static bool
parse_broker_id(const char *s, int32_t *out, char *errbuf, size_t errlen)
{
	long		v;

	if (strcasecmp(s, "all") == 0)
	{
		*out = -1;
		return true;
	}
	if (!parse_long(s, -1, INT32_MAX, &v) || v == 0)
	{
		snprintf(errbuf, errlen,
				 "invalid broker id \"%s\" (expected 1..%d, -1 or all)",
				 s, broker_count);
		return false;
	}
	*out = (int32_t) v;
	return true;
}

/*
 * parse_error_code
 *		Translate a Kafka error name or number into an rd_kafka_resp_err_t.
 *
 * Accepted forms: a decimal code (e.g. 10, or -195 for a librdkafka local
 * error), librdkafka's name with or without the "RD_KAFKA_RESP_ERR_" prefix
 * (MSG_SIZE_TOO_LARGE, _TRANSPORT), local error names without the leading
 * underscore (TRANSPORT), and a few Java client spellings
 * (MESSAGE_TOO_LARGE, NOT_LEADER_OR_FOLLOWER).  Matching ignores case.
 */
static bool
parse_error_code(const char *s, rd_kafka_resp_err_t *out)
{
	const struct rd_kafka_err_desc *descs;
	size_t		ndescs;
	size_t		i;
	long		v;
	int			pass;
	static const char prefix[] = "RD_KAFKA_RESP_ERR_";

	if (parse_long(s, INT16_MIN, INT16_MAX, &v))
	{
		*out = (rd_kafka_resp_err_t) v;
		return true;
	}

	if (strncasecmp(s, prefix, sizeof(prefix) - 1) == 0)
		s += sizeof(prefix) - 1;

	for (i = 0; error_aliases[i].name != NULL; i++)
	{
		if (strcasecmp(s, error_aliases[i].name) == 0)
		{
			*out = error_aliases[i].code;
			return true;
		}
	}

	rd_kafka_get_err_descs(&descs, &ndescs);

	/* Pass 0: exact name; pass 1: name minus its leading underscore */
	for (pass = 0; pass < 2; pass++)
	{
		for (i = 0; i < ndescs; i++)
		{
			const char *name = descs[i].name;

			if (name == NULL ||
				descs[i].code == RD_KAFKA_RESP_ERR__BEGIN ||
				descs[i].code == RD_KAFKA_RESP_ERR__END)
				continue;
			if (pass == 1)
			{
				if (name[0] != '_')
					continue;
				name++;
			}
			if (strcasecmp(s, name) == 0)
			{
				*out = descs[i].code;
				return true;
			}
		}
	}
	return false;
}

/*
 * parse_apikey
 *		Translate a Kafka protocol ApiKey, by number (0..32767) or by name
 *		(Produce, Metadata, InitProducerId, ..., case-insensitive).
 */
static bool
parse_apikey(const char *s, int16_t *out)
{
	long		v;
	int			i;

	if (parse_long(s, 0, INT16_MAX, &v))
	{
		*out = (int16_t) v;
		return true;
	}
	for (i = 0; apikey_names[i].name != NULL; i++)
	{
		if (strcasecmp(s, apikey_names[i].name) == 0)
		{
			*out = apikey_names[i].key;
			return true;
		}
	}
	return false;
}

/*
 * format_kafka_error
 *		Render a librdkafka error as "NAME: description" into errbuf.
 */
static void
format_kafka_error(rd_kafka_resp_err_t err, char *errbuf, size_t errlen)
{
	snprintf(errbuf, errlen, "%s: %s",
			 rd_kafka_err2name(err), rd_kafka_err2str(err));
}

/*
 * reply
 *		Write one reply line to stdout and flush it.
 *
 * Newlines in the text are replaced so that a reply is always exactly one
 * line.  On a write error stdout_failed is set, which ends the main loop.
 */
static void
reply(const char *fmt,...)
{
	char		line[MAX_LINE_LEN];
	va_list		ap;
	char	   *p;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	for (p = line; *p != '\0'; p++)
	{
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}

	if (fprintf(stdout, "%s\n", line) < 0 || fflush(stdout) != 0)
	{
		if (!stdout_failed)
			fprintf(stderr, "mock_kafka: could not write reply: %s\n",
					strerror(errno));
		stdout_failed = true;
	}
}

/*
 * create_topic
 *		Create a topic in the mock cluster, reporting failures in errbuf.
 */
static bool
create_topic(const char *name, long partitions, char *errbuf, size_t errlen)
{
	rd_kafka_resp_err_t err;
	int			replication = broker_count < 3 ? broker_count : 3;

	/*
	 * Note: librdkafka 2.0.2 only uses the replication factor for logging;
	 * replicas are always min(3, broker count).
	 */
	err = rd_kafka_mock_topic_create(mcluster, name, (int) partitions,
									 replication);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		format_kafka_error(err, errbuf, errlen);
		return false;
	}
	return true;
}


/* ----------------------------------------------------------------------
 * Command handlers
 * ----------------------------------------------------------------------
 */

/*
 * cmd_ping
 *		"ping": liveness check, always succeeds.
 */
static bool
cmd_ping(int argc, char **argv, char *errbuf, size_t errlen)
{
	(void) argc;
	(void) argv;
	(void) errbuf;
	(void) errlen;
	return true;
}

/*
 * cmd_broker_updown
 *		"broker_down ID" / "broker_up ID": take a broker off or back on line.
 *
 * Going down closes all of the broker's connections and refuses new ones;
 * partition leadership does not move.
 */
static bool
cmd_broker_updown(int argc, char **argv, char *errbuf, size_t errlen)
{
	int32_t		id;
	rd_kafka_resp_err_t err;

	(void) argc;
	if (!parse_broker_id(argv[1], &id, errbuf, errlen))
		return false;
	if (strcmp(argv[0], "broker_down") == 0)
		err = rd_kafka_mock_broker_set_down(mcluster, id);
	else
		err = rd_kafka_mock_broker_set_up(mcluster, id);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		format_kafka_error(err, errbuf, errlen);
		return false;
	}
	return true;
}

/*
 * cmd_rtt
 *		"rtt ID MS": delay every response of a broker by MS milliseconds.
 */
static bool
cmd_rtt(int argc, char **argv, char *errbuf, size_t errlen)
{
	int32_t		id;
	long		ms;
	rd_kafka_resp_err_t err;

	(void) argc;
	if (!parse_broker_id(argv[1], &id, errbuf, errlen))
		return false;
	if (!parse_long(argv[2], 0, 3600 * 1000, &ms))
	{
		snprintf(errbuf, errlen, "invalid rtt \"%s\" (0..3600000 ms)",
				 argv[2]);
		return false;
	}
	err = rd_kafka_mock_broker_set_rtt(mcluster, id, (int) ms);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		format_kafka_error(err, errbuf, errlen);
		return false;
	}
	return true;
}

/*
 * cmd_leader
 *		"leader TOPIC PARTITION ID": move a partition's leadership.
 *
 * ID -1 makes the partition leaderless.  A missing topic is auto-created
 * by librdkafka with the default partition count.
 */
static bool
cmd_leader(int argc, char **argv, char *errbuf, size_t errlen)
{
	long		partition;
	long		id;
	rd_kafka_resp_err_t err;

	(void) argc;
	if (!parse_long(argv[2], 0, INT32_MAX, &partition))
	{
		snprintf(errbuf, errlen, "invalid partition \"%s\"", argv[2]);
		return false;
	}
	if (!parse_long(argv[3], -1, INT32_MAX, &id) || id == 0)
	{
		snprintf(errbuf, errlen,
				 "invalid broker id \"%s\" (expected 1..%d or -1)",
				 argv[3], broker_count);
		return false;
	}
	err = rd_kafka_mock_partition_set_leader(mcluster, argv[1],
											 (int32_t) partition,
											 (int32_t) id);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		format_kafka_error(err, errbuf, errlen);
		return false;
	}
	return true;
}

/*
 * cmd_create_topic
 *		"create_topic NAME PARTITIONS": create a topic explicitly.
 */
static bool
cmd_create_topic(int argc, char **argv, char *errbuf, size_t errlen)
{
	long		partitions;

	(void) argc;
	if (!parse_long(argv[2], 1, 100000, &partitions))
	{
		snprintf(errbuf, errlen, "invalid partition count \"%s\"", argv[2]);
		return false;
	}
	return create_topic(argv[1], partitions, errbuf, errlen);
}

/*
 * cmd_produce_errors
 *		"produce_errors COUNT ERR...": fail the next COUNT ProduceRequests.
 *
 * The errors are pushed onto the cluster-wide error stack for the Produce
 * API; each of the next COUNT ProduceRequests (to any broker) fails, for
 * every partition in it, with the next error.  If fewer than COUNT errors
 * are listed they are repeated cyclically.
 */
static bool
cmd_produce_errors(int argc, char **argv, char *errbuf, size_t errlen)
{
	long		count;
	int			nerrs = argc - 2;
	rd_kafka_resp_err_t codes[MAX_ARGS];
	rd_kafka_resp_err_t *errs;
	long		i;

	if (!parse_long(argv[1], 1, 1000000, &count))
	{
		snprintf(errbuf, errlen, "invalid count \"%s\"", argv[1]);
		return false;
	}
	for (i = 0; i < nerrs; i++)
	{
		if (!parse_error_code(argv[2 + i], &codes[i]))
		{
			snprintf(errbuf, errlen, "unknown error \"%s\"", argv[2 + i]);
			return false;
		}
	}

	errs = malloc(sizeof(*errs) * (size_t) count);
	if (errs == NULL)
	{
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	for (i = 0; i < count; i++)
		errs[i] = codes[i % nerrs];
	rd_kafka_mock_push_request_errors_array(mcluster, MOCK_APIKEY_PRODUCE,
											(size_t) count, errs);
	free(errs);
	return true;
}

/*
 * cmd_clear_produce_errors
 *		"clear_produce_errors": drop any pending injected Produce errors.
 */
static bool
cmd_clear_produce_errors(int argc, char **argv, char *errbuf, size_t errlen)
{
	(void) argc;
	(void) argv;
	(void) errbuf;
	(void) errlen;
	rd_kafka_mock_clear_request_errors(mcluster, MOCK_APIKEY_PRODUCE);
	return true;
}

/*
 * cmd_request_errors
 *		"request_errors APIKEY ERR...": fail the next requests of one API.
 *
 * Each listed error is consumed by one request of type APIKEY (sent to any
 * broker), in order: "request_errors InitProducerId PRODUCER_FENCED" makes
 * the next InitProducerId request fail with PRODUCER_FENCED (for an
 * idempotent librdkafka 2.0.2 producer a fatal error).  NONE (0) lets one
 * request through.
 */
static bool
cmd_request_errors(int argc, char **argv, char *errbuf, size_t errlen)
{
	int16_t		apikey;
	int			nerrs = argc - 2;
	rd_kafka_resp_err_t codes[MAX_ARGS];
	int			i;

	if (!parse_apikey(argv[1], &apikey))
	{
		snprintf(errbuf, errlen, "unknown ApiKey \"%s\"", argv[1]);
		return false;
	}
	for (i = 0; i < nerrs; i++)
	{
		if (!parse_error_code(argv[2 + i], &codes[i]))
		{
			snprintf(errbuf, errlen, "unknown error \"%s\"", argv[2 + i]);
			return false;
		}
	}
	rd_kafka_mock_push_request_errors_array(mcluster, apikey,
											(size_t) nerrs, codes);
	return true;
}

/*
 * cmd_clear_request_errors
 *		"clear_request_errors APIKEY": drop the unused cluster-wide errors
 *		pushed for one API.
 */
static bool
cmd_clear_request_errors(int argc, char **argv, char *errbuf, size_t errlen)
{
	int16_t		apikey;

	(void) argc;
	if (!parse_apikey(argv[1], &apikey))
	{
		snprintf(errbuf, errlen, "unknown ApiKey \"%s\"", argv[1]);
		return false;
	}
	rd_kafka_mock_clear_request_errors(mcluster, apikey);
	return true;
}

/*
 * cmd_broker_request_errors
 *		"broker_request_errors ID APIKEY ERR[@MS]...": fail (or delay) the
 *		next requests of one API on one broker only.
 *
 * Each ERR@MS entry is consumed by one request of type APIKEY that broker
 * ID receives: the response carries ERR (NONE for success) and is sent MS
 * milliseconds late.  Broker errors take precedence over the cluster-wide
 * ones.  Since only the partitions led by that broker are affected, this
 * is how a single topic (all of whose partitions one broker leads) gets
 * Produce errors while the others do not.
 */
static bool
cmd_broker_request_errors(int argc, char **argv, char *errbuf, size_t errlen)
{
	int32_t		id;
	int16_t		apikey;
	int			i;

	if (!parse_broker_id(argv[1], &id, errbuf, errlen))
		return false;
	if (id < 1)
	{
		snprintf(errbuf, errlen, "broker_request_errors needs one broker id");
		return false;
	}
	if (!parse_apikey(argv[2], &apikey))
	{
		snprintf(errbuf, errlen, "unknown ApiKey \"%s\"", argv[2]);
		return false;
	}
	/* validate everything before pushing anything */
	for (i = 3; i < argc; i++)
	{
		char		tok[128];
		char	   *at;
		rd_kafka_resp_err_t code;
		long		ms = 0;

		snprintf(tok, sizeof(tok), "%s", argv[i]);
		at = strchr(tok, '@');
		if (at != NULL)
		{
			*at = '\0';
			if (!parse_long(at + 1, 0, 3600 * 1000, &ms))
			{
				snprintf(errbuf, errlen, "invalid delay in \"%s\"", argv[i]);
				return false;
			}
		}
		if (!parse_error_code(tok, &code))
		{
			snprintf(errbuf, errlen, "unknown error \"%s\"", tok);
			return false;
		}
	}
	for (i = 3; i < argc; i++)
	{
		char		tok[128];
		char	   *at;
		rd_kafka_resp_err_t code;
		rd_kafka_resp_err_t err;
		long		ms = 0;

		snprintf(tok, sizeof(tok), "%s", argv[i]);
		at = strchr(tok, '@');
		if (at != NULL)
		{
			*at = '\0';
			(void) parse_long(at + 1, 0, 3600 * 1000, &ms);
		}
		(void) parse_error_code(tok, &code);
		err = rd_kafka_mock_broker_push_request_error_rtts(mcluster, id,
														   apikey, 1,
														   code, (int) ms);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			format_kafka_error(err, errbuf, errlen);
			return false;
		}
	}
	return true;
}

/*
 * cmd_topic_error
 *		"topic_error TOPIC ERR": make Metadata responses report ERR for
 *		TOPIC (NONE clears it).
 *
 * librdkafka 2.0.2's mock only uses this in Metadata (and
 * AddPartitionsToTxn) responses: a client then treats the topic as
 * unavailable (e.g. TOPIC_AUTHORIZATION_FAILED fails its messages,
 * UNKNOWN_TOPIC_OR_PART makes them wait); Produce requests that still
 * reach the broker are accepted.
 */
static bool
cmd_topic_error(int argc, char **argv, char *errbuf, size_t errlen)
{
	rd_kafka_resp_err_t code;

	(void) argc;
	if (!parse_error_code(argv[2], &code))
	{
		snprintf(errbuf, errlen, "unknown error \"%s\"", argv[2]);
		return false;
	}
	rd_kafka_mock_topic_set_error(mcluster, argv[1], code);
	return true;
}

/*
 * cmd_quit
 *		"quit": acknowledged here; the caller then shuts down.
 */
static bool
cmd_quit(int argc, char **argv, char *errbuf, size_t errlen)
{
	(void) argc;
	(void) argv;
	(void) errbuf;
	(void) errlen;
	return true;
}

static const Command commands[] = {
	{"ping", 0, 0, cmd_ping, "ping"},
	{"quit", 0, 0, cmd_quit, "quit"},
	{"broker_down", 1, 1, cmd_broker_updown, "broker_down <id>"},
	{"broker_up", 1, 1, cmd_broker_updown, "broker_up <id>"},
	{"rtt", 2, 2, cmd_rtt, "rtt <broker_id> <ms>"},
	{"leader", 3, 3, cmd_leader, "leader <topic> <partition> <broker_id>"},
	{"create_topic", 2, 2, cmd_create_topic,
	"create_topic <name> <partitions>"},
	{"produce_errors", 2, -1, cmd_produce_errors,
	"produce_errors <count> <ERRNAME|code>..."},
	{"clear_produce_errors", 0, 0, cmd_clear_produce_errors,
	"clear_produce_errors"},
	{"request_errors", 2, -1, cmd_request_errors,
	"request_errors <apikey|name> <ERRNAME|code>..."},
	{"clear_request_errors", 1, 1, cmd_clear_request_errors,
	"clear_request_errors <apikey|name>"},
	{"broker_request_errors", 3, -1, cmd_broker_request_errors,
	"broker_request_errors <broker_id> <apikey|name> <ERRNAME|code>[@ms]..."},
	{"topic_error", 2, 2, cmd_topic_error, "topic_error <topic> <ERRNAME|code>"},
	{NULL, 0, 0, NULL, NULL}
};

/*
 * execute_line
 *		Tokenize and run one command line, writing exactly one reply.
 *
 * Blank lines and '#' comments produce no reply.  Returns INPUT_QUIT after
 * a successful "quit", otherwise INPUT_MORE.
 */
static InputStatus
execute_line(char *line)
{
	char	   *argv[MAX_ARGS + 1];
	int			argc = 0;
	char	   *save = NULL;
	char	   *tok;
	const Command *cmd;
	char		errbuf[512];

	for (tok = strtok_r(line, " \t\r\v\f", &save);
		 tok != NULL;
		 tok = strtok_r(NULL, " \t\r\v\f", &save))
	{
		if (argc == MAX_ARGS)
		{
			reply("ERR too many arguments");
			return INPUT_MORE;
		}
		argv[argc++] = tok;
	}
	argv[argc] = NULL;

	if (argc == 0 || argv[0][0] == '#')
		return INPUT_MORE;

	for (cmd = commands; cmd->name != NULL; cmd++)
	{
		if (strcmp(cmd->name, argv[0]) == 0)
			break;
	}
	if (cmd->name == NULL)
	{
		reply("ERR unknown command \"%s\"", argv[0]);
		return INPUT_MORE;
	}
	if (argc - 1 < cmd->min_args ||
		(cmd->max_args >= 0 && argc - 1 > cmd->max_args))
	{
		reply("ERR usage: %s", cmd->usage);
		return INPUT_MORE;
	}

	errbuf[0] = '\0';
	if (!cmd->fn(argc, argv, errbuf, sizeof(errbuf)))
	{
		reply("ERR %s", errbuf[0] != '\0' ? errbuf : "failed");
		return INPUT_MORE;
	}
	reply("OK");
	return cmd->fn == cmd_quit ? INPUT_QUIT : INPUT_MORE;
}


/* ----------------------------------------------------------------------
 * Input handling
 * ----------------------------------------------------------------------
 */

/*
 * process_buffer
 *		Execute every complete line in the input buffer.
 *
 * If at_eof is true a trailing unterminated line is executed as well.
 * Over-long lines (MAX_LINE_LEN - 1 bytes or more without a newline; one
 * byte is kept free for a terminator) are rejected with a single ERR reply
 * and the rest of the line is skipped.
 */
static InputStatus
process_buffer(InputState *in, bool at_eof)
{
	for (;;)
	{
		char	   *nl = memchr(in->buf, '\n', in->len);
		size_t		linelen;

		if (nl == NULL)
		{
			if (in->len >= sizeof(in->buf) - 1)
			{
				/* Buffer full without a newline: reject the line */
				if (!in->discarding)
					reply("ERR line too long");
				in->discarding = true;
				in->len = 0;
			}
			else if (at_eof && in->len > 0)
			{
				bool		skip = in->discarding;

				in->buf[in->len] = '\0';
				in->len = 0;
				in->discarding = false;
				if (!skip)
					return execute_line(in->buf);
			}
			return INPUT_MORE;
		}

		*nl = '\0';
		linelen = (size_t) (nl - in->buf) + 1;
		if (in->discarding)
			in->discarding = false;
		else
		{
			/* execute_line() tokenizes in place; the line is dropped anyway */
			InputStatus st = execute_line(in->buf);

			if (st != INPUT_MORE)
				return st;
		}
		memmove(in->buf, in->buf + linelen, in->len - linelen);
		in->len -= linelen;
	}
}

/*
 * read_input
 *		Read whatever is available on the command channel and execute it.
 */
static InputStatus
read_input(InputState *in)
{
	ssize_t		n;
	InputStatus st;

	/* Keep one byte free for the terminator of an unterminated last line */
	n = read(in->fd, in->buf + in->len, sizeof(in->buf) - 1 - in->len);
	if (n < 0)
	{
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return INPUT_MORE;
		fprintf(stderr, "mock_kafka: read error: %s\n", strerror(errno));
		return INPUT_FATAL;
	}
	if (n == 0)
	{
		st = process_buffer(in, true);
		return st == INPUT_MORE ? INPUT_EOF : st;
	}
	in->len += (size_t) n;
	return process_buffer(in, false);
}

/*
 * open_fifo
 *		Create (if needed) and open the control FIFO.
 *
 * Besides the non-blocking read end, a write end is kept open by this
 * process itself: the FIFO then never reports EOF when a client closes it,
 * so successive writers (e.g. "echo cmd > fifo" from a shell) are served
 * without reopening and without the data-loss race of reopening.
 * *created tells whether this call created the FIFO.
 */
static bool
open_fifo(const char *path, int *rfd, int *wfd, bool *created)
{
	struct stat st;

	*created = false;
	if (mkfifo(path, 0600) == 0)
		*created = true;
	else if (errno != EEXIST)
	{
		fprintf(stderr, "mock_kafka: could not create FIFO \"%s\": %s\n",
				path, strerror(errno));
		return false;
	}

	if (stat(path, &st) != 0 || !S_ISFIFO(st.st_mode))
	{
		fprintf(stderr, "mock_kafka: \"%s\" exists and is not a FIFO\n", path);
		return false;
	}

	*rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (*rfd < 0)
	{
		fprintf(stderr, "mock_kafka: could not open FIFO \"%s\": %s\n",
				path, strerror(errno));
		return false;
	}
	*wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (*wfd < 0)
	{
		fprintf(stderr, "mock_kafka: could not open FIFO \"%s\" for writing: %s\n",
				path, strerror(errno));
		close(*rfd);
		return false;
	}
	return true;
}

/*
 * write_pidfile
 *		Write our process id to path.
 */
static bool
write_pidfile(const char *path)
{
	FILE	   *f = fopen(path, "w");

	if (f == NULL)
	{
		fprintf(stderr, "mock_kafka: could not create pidfile \"%s\": %s\n",
				path, strerror(errno));
		return false;
	}
	fprintf(f, "%ld\n", (long) getpid());
	if (fclose(f) != 0)
	{
		fprintf(stderr, "mock_kafka: could not write pidfile \"%s\": %s\n",
				path, strerror(errno));
		return false;
	}
	return true;
}

/*
 * log_cb
 *		librdkafka log callback: forward messages to stderr.
 *
 * Called from librdkafka's internal threads; stdio streams are locked.
 */
static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void) rk;
	fprintf(stderr, "mock_kafka: rdkafka[%d] %s: %s\n", level, fac, buf);
}

/*
 * create_cluster
 *		Create the rd_kafka_t handle and the mock cluster on top of it.
 */
static bool
create_cluster(const char *debug)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[512];

	/*
	 * The handle itself never connects anywhere, so silence its notice
	 * about the missing bootstrap.servers unless debugging was requested.
	 */
	if (rd_kafka_conf_set(conf, "client.id", "mock_kafka",
						  errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "log_level", debug != NULL ? "7" : "4",
						  errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		(debug != NULL &&
		 rd_kafka_conf_set(conf, "debug", debug,
						   errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK))
	{
		fprintf(stderr, "mock_kafka: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return false;
	}
	rd_kafka_conf_set_log_cb(conf, log_cb);

	mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (mock_rk == NULL)
	{
		fprintf(stderr, "mock_kafka: rd_kafka_new failed: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return false;
	}

	mcluster = rd_kafka_mock_cluster_new(mock_rk, broker_count);
	if (mcluster == NULL)
	{
		fprintf(stderr, "mock_kafka: could not create mock cluster\n");
		rd_kafka_destroy(mock_rk);
		mock_rk = NULL;
		return false;
	}

	/*
	 * From librdkafka 2.5.0 on, the mock answers a Produce v10+ or Fetch
	 * v12+ request for a partition it does not lead with the KIP-951
	 * CurrentLeader tag, read from the partition's leader: NULL after
	 * "leader TOPIC PART -1", and the mock dies of a segmentation fault
	 * (seen with 2.14.2).  Clients then get Produce v9 and Fetch v11 at
	 * most, which have no such tag; the errors, and what the relay does
	 * with them, are the same.
	 */
	if (rd_kafka_version() >= 0x020500ff)
	{
		rd_kafka_mock_set_apiversion(mcluster, MOCK_API_PRODUCE, 0, 9);
		rd_kafka_mock_set_apiversion(mcluster, MOCK_API_FETCH, 0, 11);
	}
	return true;
}

/*
 * destroy_cluster
 *		Tear down the mock cluster and its rd_kafka_t handle.
 */
static void
destroy_cluster(void)
{
	if (mcluster != NULL)
		rd_kafka_mock_cluster_destroy(mcluster);
	mcluster = NULL;
	if (mock_rk != NULL)
		rd_kafka_destroy(mock_rk);
	mock_rk = NULL;
}

/*
 * remove_files
 *		Remove the pidfile and the control FIFO (if we created it).
 */
static void
remove_files(void)
{
	if (fifo_path != NULL && fifo_created)
		unlink(fifo_path);
	if (pidfile != NULL)
		unlink(pidfile);
}

/*
 * shutdown_watchdog
 *		Thread body: if the teardown has not finished within
 *		SHUTDOWN_GRACE_MS, remove our files and _exit() right away.
 */
static void *
shutdown_watchdog(void *arg)
{
	struct timespec deadline;

	(void) arg;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_nsec += (long) SHUTDOWN_GRACE_MS * 1000000L;
	deadline.tv_sec += deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;

	pthread_mutex_lock(&shutdown_lock);
	while (!shutdown_done)
	{
		if (pthread_cond_timedwait(&shutdown_cond, &shutdown_lock,
								   &deadline) == ETIMEDOUT)
			break;
	}
	if (!shutdown_done)
	{
		/* Still holding the lock, so the main thread cannot race us */
		remove_files();
		_exit(shutdown_status);
	}
	pthread_mutex_unlock(&shutdown_lock);
	return NULL;
}

/*
 * shutdown_cluster
 *		Destroy the cluster, but never let that take much longer than
 *		SHUTDOWN_GRACE_MS.
 *
 * In librdkafka 2.0.2, rd_kafka_mock_cluster_destroy() first closes all
 * mock brokers (listeners and client connections) and then joins an
 * internal "dummy" broker thread; depending on timing that thread only
 * notices its TERMINATE op at the end of its 1 s queue wait, so roughly
 * every other destroy takes an extra second.  Since everything visible from
 * outside is gone by then, a watchdog thread simply _exit()s with the same
 * status when the teardown overruns.
 */
static void
shutdown_cluster(int status)
{
	pthread_t	tid;
	bool		have_watchdog;

	shutdown_status = status;
	have_watchdog = (pthread_create(&tid, NULL, shutdown_watchdog, NULL) == 0);

	destroy_cluster();

	pthread_mutex_lock(&shutdown_lock);
	shutdown_done = true;
	pthread_cond_signal(&shutdown_cond);
	pthread_mutex_unlock(&shutdown_lock);

	if (have_watchdog)
		pthread_join(tid, NULL);
}

/*
 * add_startup_topic
 *		Handle one --topic NAME[:PARTITIONS] option.
 */
static bool
add_startup_topic(const char *spec)
{
	char	   *name = strdup(spec);
	char	   *colon;
	long		partitions = MOCK_AUTO_PARTITIONS;
	char		errbuf[512];
	bool		ok;

	if (name == NULL)
		return false;
	colon = strrchr(name, ':');
	if (colon != NULL)
	{
		*colon = '\0';
		if (!parse_long(colon + 1, 1, 100000, &partitions))
		{
			fprintf(stderr, "mock_kafka: invalid partition count in --topic \"%s\"\n",
					spec);
			free(name);
			return false;
		}
	}
	if (name[0] == '\0')
	{
		fprintf(stderr, "mock_kafka: empty topic name in --topic \"%s\"\n", spec);
		free(name);
		return false;
	}
	ok = create_topic(name, partitions, errbuf, sizeof(errbuf));
	if (!ok)
		fprintf(stderr, "mock_kafka: could not create topic \"%s\": %s\n",
				name, errbuf);
	free(name);
	return ok;
}

/*
 * ensure_std_fds
 *		Make sure descriptors 0, 1 and 2 are open (on /dev/null if need be),
 *		so that no descriptor we open later is mistaken for one of them.
 */
static void
ensure_std_fds(void)
{
	int			fd;

	for (fd = 0; fd <= 2; fd++)
	{
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
		{
			int			nfd = open("/dev/null", O_RDWR);

			if (nfd >= 0 && nfd != fd)
			{
				dup2(nfd, fd);
				close(nfd);
			}
		}
	}
}

/*
 * main
 *		Parse options, start the cluster, then serve commands until told
 *		to stop.
 */
int
main(int argc, char **argv)
{
	const char *topics[256];
	int			ntopics = 0;
	const char *pidfile_arg = NULL;
	const char *debug = NULL;
	long		v;
	int			i;
	sigset_t	sigs;
	int			sfd;
	int			fifo_wfd = -1;
	InputState	in;
	int			status = 0;

	ensure_std_fds();

	for (i = 1; i < argc; i++)
	{
		const char *arg = argv[i];
		const char *val = (i + 1 < argc) ? argv[i + 1] : NULL;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
		{
			usage(stdout);
			return 0;
		}
		if (val == NULL)
		{
			fprintf(stderr, "mock_kafka: missing or unknown argument \"%s\"\n",
					arg);
			usage(stderr);
			return EXIT_USAGE;
		}
		if (strcmp(arg, "--brokers") == 0)
		{
			if (!parse_long(val, 1, 1000, &v))
			{
				fprintf(stderr, "mock_kafka: invalid --brokers \"%s\"\n", val);
				return EXIT_USAGE;
			}
			broker_count = (int) v;
		}
		else if (strcmp(arg, "--topic") == 0)
		{
			if (ntopics == (int) (sizeof(topics) / sizeof(topics[0])))
			{
				fprintf(stderr, "mock_kafka: too many --topic options\n");
				return EXIT_USAGE;
			}
			topics[ntopics++] = val;
		}
		else if (strcmp(arg, "--auto-partitions") == 0)
		{
			if (!parse_long(val, 1, 100000, &v))
			{
				fprintf(stderr, "mock_kafka: invalid --auto-partitions \"%s\"\n",
						val);
				return EXIT_USAGE;
			}
			if (v != MOCK_AUTO_PARTITIONS)
			{
				fprintf(stderr,
						"mock_kafka: --auto-partitions %ld is not supported: "
						"librdkafka %s's mock cluster always auto-creates topics "
						"with %d partitions and has no API to change that; "
						"pre-create topics with --topic NAME:PARTITIONS or "
						"create_topic instead\n",
						v, rd_kafka_version_str(), MOCK_AUTO_PARTITIONS);
				return EXIT_USAGE;
			}
		}
		else if (strcmp(arg, "--control-fifo") == 0)
			fifo_path = val;
		else if (strcmp(arg, "--pidfile") == 0)
			pidfile_arg = val;
		else if (strcmp(arg, "--debug") == 0)
			debug = val;
		else
		{
			fprintf(stderr, "mock_kafka: unknown option \"%s\"\n", arg);
			usage(stderr);
			return EXIT_USAGE;
		}
		i++;
	}

	/*
	 * Block the termination signals (and SIGPIPE) before any librdkafka
	 * thread exists, so that all threads inherit the mask; SIGTERM, SIGINT
	 * and SIGHUP are then received synchronously through a signalfd.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0)
	{
		fprintf(stderr, "mock_kafka: sigprocmask: %s\n", strerror(errno));
		return 1;
	}
	sigdelset(&sigs, SIGPIPE);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
	{
		fprintf(stderr, "mock_kafka: signalfd: %s\n", strerror(errno));
		return 1;
	}

	memset(&in, 0, sizeof(in));
	in.fd = STDIN_FILENO;
	if (fifo_path != NULL &&
		!open_fifo(fifo_path, &in.fd, &fifo_wfd, &fifo_created))
	{
		remove_files();
		return 1;
	}

	if (!create_cluster(debug))
	{
		status = 1;
		goto done;
	}

	for (i = 0; i < ntopics; i++)
	{
		if (!add_startup_topic(topics[i]))
		{
			status = 1;
			goto done;
		}
	}

	if (pidfile_arg != NULL)
	{
		if (!write_pidfile(pidfile_arg))
		{
			status = 1;
			goto done;
		}
		pidfile = pidfile_arg;
	}

	reply("BOOTSTRAP=%s", rd_kafka_mock_cluster_bootstraps(mcluster));

	while (!stdout_failed)
	{
		struct pollfd pfd[2];
		int			rc;

		pfd[0].fd = sfd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = in.fd;
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;

		rc = poll(pfd, 2, -1);
		if (rc < 0)
		{
			if (errno == EINTR)
				continue;
			fprintf(stderr, "mock_kafka: poll: %s\n", strerror(errno));
			status = 1;
			break;
		}

		if (pfd[0].revents & POLLIN)
		{
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t) sizeof(si))
				fprintf(stderr, "mock_kafka: received signal %u, exiting\n",
						si.ssi_signo);
			break;
		}

		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
		{
			InputStatus st;

			if (pfd[1].revents & POLLNVAL)
			{
				fprintf(stderr, "mock_kafka: command channel is not open\n");
				status = 1;
				break;
			}
			st = read_input(&in);
			if (st == INPUT_QUIT || st == INPUT_EOF)
				break;
			if (st == INPUT_FATAL)
			{
				status = 1;
				break;
			}
		}
	}
	if (stdout_failed)
		status = 1;

done:
	shutdown_cluster(status);
	if (fifo_path != NULL)
	{
		close(in.fd);
		close(fifo_wfd);
	}
	remove_files();
	close(sfd);
	return status;
}
