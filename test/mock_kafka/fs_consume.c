/*-------------------------------------------------------------------------
 *
 * fs_consume.c
 *	  Background consumer for the fault tests: reads topics from the
 *	  beginning and prints one line per message with the time it arrived.
 *
 * kcat prints no arrival time, and re-reading whole topics after every
 * fault is slow and loses what the mock broker has already pruned (it keeps
 * only a few MB per partition).  This consumer runs for the whole test,
 * assigned to every partition of the given topics from offset 0 (no
 * consumer group), and writes to stdout, flushed per message:
 *
 *	  M <recv_us> <topic> <partition> <offset> <outbox-id|-> <key|-> <payload>
 *
 * recv_us is CLOCK_REALTIME in microseconds when the message was handed to
 * us.  Keys and payloads are printed as they are; the fault tests use only
 * printable ASCII without spaces in keys and without newlines anywhere.  A
 * payload is printed as "-" when it is NULL.  Consumer errors are printed
 * as "E <text>" lines.  The process stops on SIGTERM/SIGINT or when stdin
 * reaches EOF.
 *
 * Usage: fs_consume -b BOOTSTRAP -t TOPIC [-t TOPIC]...
 *
 * IDENTIFICATION
 *	  test/mock_kafka/fs_consume.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define MAX_TOPICS 64

static volatile sig_atomic_t stop = 0;

/*
 * on_signal
 *		SIGTERM/SIGINT handler: ask the main loop to stop.
 */
static void
on_signal(int sig)
{
	(void) sig;
	stop = 1;
}

/*
 * now_us
 *		Wall clock time in microseconds.
 */
static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long) ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/*
 * print_message
 *		Write one "M ..." line for a consumed message.
 */
static void
print_message(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs = NULL;
	const void *idval = NULL;
	size_t		idlen = 0;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
		rd_kafka_header_get_last(hdrs, "outbox-id", &idval, &idlen) !=
		RD_KAFKA_RESP_ERR_NO_ERROR)
		idval = NULL;

	printf("M %lld %s %d %lld ", now_us(), rd_kafka_topic_name(m->rkt),
		   (int) m->partition, (long long) m->offset);
	if (idval != NULL)
		fwrite(idval, 1, idlen, stdout);
	else
		fputs("-", stdout);
	fputc(' ', stdout);
	if (m->key != NULL)
		fwrite(m->key, 1, m->key_len, stdout);
	else
		fputs("-", stdout);
	fputc(' ', stdout);
	if (m->payload != NULL)
		fwrite(m->payload, 1, m->len, stdout);
	else
		fputs("-", stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

/*
 * main
 *		Parse options, assign every partition of the topics from offset 0,
 *		print messages until told to stop.
 */
int
main(int argc, char **argv)
{
	const char *bootstrap = NULL;
	const char *topics[MAX_TOPICS];
	int			ntopics = 0;
	char		errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *parts;
	int			opt;
	int			i;

	while ((opt = getopt(argc, argv, "b:t:")) != -1)
	{
		if (opt == 'b')
			bootstrap = optarg;
		else if (opt == 't' && ntopics < MAX_TOPICS)
			topics[ntopics++] = optarg;
		else
		{
			fprintf(stderr, "usage: fs_consume -b BOOTSTRAP -t TOPIC...\n");
			return 2;
		}
	}
	if (bootstrap == NULL || ntopics == 0)
	{
		fprintf(stderr, "usage: fs_consume -b BOOTSTRAP -t TOPIC...\n");
		return 2;
	}

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "group.id", "fs_consume", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "fetch.error.backoff.ms", "20", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "reconnect.backoff.ms", "20", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "200", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "1000", errstr, sizeof(errstr)))
	{
		fprintf(stderr, "fs_consume: %s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "fs_consume: %s\n", errstr);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);

	/* every partition of every topic, from the beginning */
	parts = rd_kafka_topic_partition_list_new(16);
	for (i = 0; i < ntopics; i++)
	{
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[i], NULL);
		const struct rd_kafka_metadata *md = NULL;
		int			p;
		rd_kafka_resp_err_t err;
		int			tries;

		for (tries = 0; tries < 100 && !stop; tries++)
		{
			err = rd_kafka_metadata(rk, 0, rkt, &md, 2000);
			if (err == RD_KAFKA_RESP_ERR_NO_ERROR &&
				md->topic_cnt == 1 && md->topics[0].err == 0 &&
				md->topics[0].partition_cnt > 0)
				break;
			if (md != NULL)
				rd_kafka_metadata_destroy(md);
			md = NULL;
			usleep(100000);
		}
		if (md == NULL)
		{
			fprintf(stderr, "fs_consume: no metadata for topic %s\n", topics[i]);
			return 1;
		}
		for (p = 0; p < md->topics[0].partition_cnt; p++)
			rd_kafka_topic_partition_list_add(parts, topics[i],
											  md->topics[0].partitions[p].id)->offset =
				RD_KAFKA_OFFSET_BEGINNING;
		rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rkt);
	}
	if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		fprintf(stderr, "fs_consume: assign failed\n");
		return 1;
	}
	rd_kafka_topic_partition_list_destroy(parts);
	printf("READY\n");
	fflush(stdout);

	fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
	while (!stop)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
		struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};

		if (m != NULL)
		{
			if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
				print_message(m);
			else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			{
				printf("E %s\n", rd_kafka_message_errstr(m));
				fflush(stdout);
			}
			rd_kafka_message_destroy(m);
		}
		/* EOF on stdin (the test went away) ends us too */
		if (poll(&pfd, 1, 0) > 0)
		{
			char		buf[256];
			ssize_t		n = read(STDIN_FILENO, buf, sizeof(buf));

			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				break;
		}
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return 0;
}
