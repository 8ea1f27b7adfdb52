/*-------------------------------------------------------------------------
 *
 * floor_producer.c
 *	  Benchmark floor: a plain librdkafka producer, no database, producing
 *	  at a fixed rate with the relay's own delivery settings, so that
 *	  latency_consumer measures what the chain (producer, broker, consumer)
 *	  costs without outbox_kafka.
 *
 * Each message is JSON {"t": <send time, seconds since the epoch>} with a
 * key chosen among 1000, like the relay benchmark's events.  Settings as
 * the relay's defaults (src/producer_config.c): idempotence, acks=all,
 * linger.ms=1, Nagle off.
 *
 * Usage: floor_producer BOOTSTRAP TOPIC RATE SECONDS
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  bench/floor_producer.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int
main(int argc, char **argv)
{
	static const char *const settings[][2] = {
		{"enable.idempotence", "true"},
		{"acks", "all"},
		{"linger.ms", "1"},
		{"socket.nagle.disable", "true"},
	};
	char		errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	double		rate;
	long		total;
	double		t0;
	long		i;
	size_t		s;

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s BOOTSTRAP TOPIC RATE SECONDS\n", argv[0]);
		return 2;
	}
	rate = atof(argv[3]);
	total = (long) (rate * atof(argv[4]));

	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)))
	{
		fprintf(stderr, "%s\n", errstr);
		return 1;
	}
	for (s = 0; s < sizeof(settings) / sizeof(settings[0]); s++)
		if (rd_kafka_conf_set(conf, settings[s][0], settings[s][1], errstr, sizeof(errstr)))
		{
			fprintf(stderr, "%s\n", errstr);
			return 1;
		}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "%s\n", errstr);
		return 1;
	}

	t0 = now_s();
	for (i = 0; i < total; i++)
	{
		char		payload[64];
		char		key[16];
		rd_kafka_resp_err_t err;

		sleep_until(t0 + i / rate);
		snprintf(payload, sizeof(payload), "{\"t\": %.6f}", now_s());
		snprintf(key, sizeof(key), "%d", rand() % 1000);
		err = rd_kafka_producev(rk,
								RD_KAFKA_V_TOPIC(argv[2]),
								RD_KAFKA_V_KEY(key, strlen(key)),
								RD_KAFKA_V_VALUE(payload, strlen(payload)),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_END);
		if (err)
		{
			fprintf(stderr, "produce failed: %s\n", rd_kafka_err2str(err));
			return 1;
		}
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_flush(rk, 10000);
	rd_kafka_destroy(rk);
	return 0;
}
