/*-------------------------------------------------------------------------
 *
 * floor_producer.c
 *	  Benchmark floor: a plain librdkafka producer, no database, with the
 *	  relay's own delivery settings, so that the benchmarks can show what
 *	  the chain (producer, broker, consumer) costs without outbox_kafka.
 *
 * Each message is JSON {"t": <send time, seconds since the epoch>} with a
 * key chosen among 1000, like the relay benchmark's events.  Settings as
 * the relay's defaults (src/producer_config.c): idempotence, acks=all,
 * linger.ms=1, Nagle off.  The environment variable FLOOR_LINGER_MS sets
 * another linger.ms: 0 sends each message as it comes, the latency floor
 * of the performance targets (bench/run.sh).  FLOOR_PUSH=1 has each
 * message pushed the way the relay pushes a chunk that is not full
 * (src/producer.c, outbox_producer_push: rd_kafka_flush() for 1 ms right
 * after the produce): with linger.ms=1 it shows what librdkafka and the
 * broker make of the relay's way of sending, without the relay.
 *
 * At a fixed RATE for SECONDS it is the floor of a latency run
 * (latency_consumer reads what it sends) and of the relay's CPU per event.
 * With RATE "backlog" it produces COUNT messages as fast as librdkafka
 * takes them: the floor of a backlog drain.
 *
 * At a fixed RATE it first sends one message {"t": 0} (latency_consumer
 * skips it) and waits for its acknowledgement, as the benchmarks let the
 * relay publish one event before they measure: the run then starts with a
 * connected producer that knows the topic and has its producer id, like
 * the running relay it is compared with.  A backlog starts cold, like the
 * relay's drain, which is timed from the relay's start.
 *
 * When every message is acknowledged it prints one line:
 *	  messages=N seconds=S cpu_s=C context_switches=W
 * S from the first measured send to the last acknowledgement; C and W for
 * the whole process, librdkafka's threads included (getrusage), from the
 * same moment.
 *
 * Usage: floor_producer BOOTSTRAP TOPIC RATE SECONDS
 *		  floor_producer BOOTSTRAP TOPIC backlog COUNT
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  bench/floor_producer.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "wall_clock.h"

/* sleep_until: sleep until wall-clock time t (seconds), if it is ahead. */
static void
sleep_until(double t)
{
	double		wait = t - now_s();
	struct timespec ts;

	if (wait <= 0)
		return;
	ts.tv_sec = (time_t) wait;
	ts.tv_nsec = (long) ((wait - ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/*
 * create_producer: a producer for bootstrap with the relay's delivery
 * settings; exits on failure.
 */
static rd_kafka_t *
create_producer(const char *bootstrap)
{
	static const char *const settings[][2] = {
		{"enable.idempotence", "true"},
		{"acks", "all"},
		{"linger.ms", "1"},
		{"socket.nagle.disable", "true"},
	};
	char		errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	size_t		s;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)))
	{
		fprintf(stderr, "%s\n", errstr);
		exit(1);
	}
	for (s = 0; s < sizeof(settings) / sizeof(settings[0]); s++)
		if (rd_kafka_conf_set(conf, settings[s][0], settings[s][1], errstr, sizeof(errstr)))
		{
			fprintf(stderr, "%s\n", errstr);
			exit(1);
		}
	if (getenv("FLOOR_LINGER_MS") != NULL &&
		rd_kafka_conf_set(conf, "linger.ms", getenv("FLOOR_LINGER_MS"), errstr, sizeof(errstr)))
	{
		fprintf(stderr, "FLOOR_LINGER_MS: %s\n", errstr);
		exit(1);
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "%s\n", errstr);
		exit(1);
	}
	return rk;
}

/*
 * send_one: produce one message to topic ({"t": now}, or {"t": 0} for the
 * warm-up), waiting for room in librdkafka's queue if it is full (a backlog
 * fills it); exits on any other error.
 */
static void
send_one(rd_kafka_t *rk, const char *topic, bool warm_up)
{
	char		payload[64];
	char		key[16];

	snprintf(payload, sizeof(payload), "{\"t\": %.6f}", warm_up ? 0.0 : now_s());
	snprintf(key, sizeof(key), "%d", rand() % 1000);
	for (;;)
	{
		rd_kafka_resp_err_t err;

		err = rd_kafka_producev(rk,
								RD_KAFKA_V_TOPIC(topic),
								RD_KAFKA_V_KEY(key, strlen(key)),
								RD_KAFKA_V_VALUE(payload, strlen(payload)),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			return;
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
		{
			fprintf(stderr, "produce failed: %s\n", rd_kafka_err2str(err));
			exit(1);
		}
		rd_kafka_poll(rk, 1);
	}
}

int
main(int argc, char **argv)
{
	rd_kafka_t *rk;
	bool		backlog;
	double		rate;
	long		total;
	double		t0;
	long		i;
	bool		push = getenv("FLOOR_PUSH") != NULL && strcmp(getenv("FLOOR_PUSH"), "1") == 0;
	struct rusage ru0;
	struct rusage ru;

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s BOOTSTRAP TOPIC RATE SECONDS\n"
				"       %s BOOTSTRAP TOPIC backlog COUNT\n", argv[0], argv[0]);
		return 2;
	}
	backlog = strcmp(argv[3], "backlog") == 0;
	rate = backlog ? 0 : atof(argv[3]);
	total = backlog ? atol(argv[4]) : (long) (rate * atof(argv[4]));
	rk = create_producer(argv[1]);
	if (!backlog)
	{
		send_one(rk, argv[2], true);
		if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			fprintf(stderr, "the warm-up message was not acknowledged within 60 s\n");
			return 1;
		}
	}

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_s();
	for (i = 0; i < total; i++)
	{
		if (!backlog)
			sleep_until(t0 + i / rate);
		send_one(rk, argv[2], false);
		if (!backlog && push)
			(void) rd_kafka_flush(rk, 1);
		else if (!backlog || i % 1024 == 0)
			rd_kafka_poll(rk, 0);
	}
	if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		fprintf(stderr, "not every message was acknowledged within 60 s\n");
		return 1;
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("messages=%ld seconds=%.3f cpu_s=%.3f context_switches=%ld\n",
		   total, now_s() - t0,
		   (ru.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
		   (ru.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		   ((ru.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
			(ru.ru_stime.tv_usec - ru0.ru_stime.tv_usec)) / 1e6,
		   (ru.ru_nvcsw - ru0.ru_nvcsw) + (ru.ru_nivcsw - ru0.ru_nivcsw));
	rd_kafka_destroy(rk);
	return 0;
}
