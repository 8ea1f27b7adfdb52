/*-------------------------------------------------------------------------
 *
 * latency_consumer.c
 *	  Benchmark consumer: reads a topic from its end and reports the delay
 *	  between an event's enqueue and its arrival at the consumer.
 *
 * Each payload must be JSON with a field "t" holding the enqueue time in
 * seconds since the epoch (the benchmark enqueues
 * jsonb_build_object('t', extract(epoch from clock_timestamp()))).  The
 * consumer fetches with fetch.wait.max.ms=1, like the consumers the
 * design's latency bar was measured with, and prints three lines:
 *	  windows_p99_ms=A,B,...
 *	  split_ms to_produce_p50=... to_produce_mean=... after_produce_p50=... after_produce_mean=...
 *	  count=N p50_ms=... p90_ms=... p99_ms=... max_ms=...
 * the first giving the p99 of each WINDOW_S seconds of arrivals (is the
 * tail flat over the run?), the second splitting each delay at the
 * message's create time, which librdkafka stamps when the producer hands
 * the message over (rd_kafka_producev): enqueue -> hand-over (for the
 * relay: the commit, the wake-up and the read) and hand-over -> arrival
 * (librdkafka's gathering, the broker, the fetch).  Kafka timestamps are
 * whole milliseconds, cut down: each is taken as its millisecond plus
 * 0.5 ms, which makes the means right over many messages; a single split
 * is off by up to half a millisecond, so read the split's p50s to that.
 *
 * Usage: latency_consumer BOOTSTRAP TOPIC PARTITIONS COUNT TIMEOUT_S
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  bench/latency_consumer.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "wall_clock.h"

/* cmp_double: qsort comparator. */
static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* mean: the mean of the n values of v. */
static double
mean(const double *v, long n)
{
	double		sum = 0;
	long		i;

	for (i = 0; i < n; i++)
		sum += v[i];
	return sum / n;
}

/* Width of the windows of arrival time whose p99 is reported. */
#define WINDOW_S 10.0

/* enqueue_time: the "t" field of a JSON payload, or -1. */
static double
enqueue_time(const char *payload, size_t len)
{
	char		buf[256];
	const char *p;

	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, payload, len);
	buf[len] = '\0';
	p = strstr(buf, "\"t\":");
	if (p == NULL)
		return -1;
	return strtod(p + 4, NULL);
}

/* main: consume COUNT messages (or until TIMEOUT_S) and print percentiles. */
int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *parts;
	char		errstr[512];
	int			partitions;
	long		want;
	double		deadline;
	double	   *lat;
	double	   *arrived;
	double	   *window;
	double	   *to_produce;
	double	   *after_produce;
	long		n = 0;
	long		first;
	int			i;

	if (argc != 6)
	{
		fprintf(stderr, "usage: %s BOOTSTRAP TOPIC PARTITIONS COUNT TIMEOUT_S\n", argv[0]);
		return 2;
	}
	partitions = atoi(argv[3]);
	want = atol(argv[4]);
	deadline = now_s() + atof(argv[5]);
	lat = calloc(want, sizeof(double));
	arrived = calloc(want, sizeof(double));
	window = calloc(want, sizeof(double));
	to_produce = calloc(want, sizeof(double));
	after_produce = calloc(want, sizeof(double));

	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "group.id", "outbox_kafka_bench", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "fetch.wait.max.ms", "1", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "fetch.error.backoff.ms", "1", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)))
	{
		fprintf(stderr, "config: %s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "consumer: %s\n", errstr);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);

	parts = rd_kafka_topic_partition_list_new(partitions);
	for (i = 0; i < partitions; i++)
		rd_kafka_topic_partition_list_add(parts, argv[2], i)->offset = RD_KAFKA_OFFSET_END;
	rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);

	/* tell the caller we are ready to receive */
	printf("ready\n");
	fflush(stdout);

	while (n < want && now_s() < deadline)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		double		t;

		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->payload != NULL &&
			(t = enqueue_time(m->payload, m->len)) > 0)
		{
			rd_kafka_timestamp_type_t type;
			int64_t		created_ms = rd_kafka_message_timestamp(m, &type);
			double		created = (created_ms + 0.5) / 1000.0;

			arrived[n] = now_s();
			lat[n] = (arrived[n] - t) * 1000.0;
			to_produce[n] = (created - t) * 1000.0;
			after_produce[n] = (arrived[n] - created) * 1000.0;
			n++;
		}
		rd_kafka_message_destroy(m);
	}

	/* the p99 of each window of arrivals, before lat is sorted */
	printf("windows_p99_ms=");
	for (first = 0; first < n;)
	{
		long		k = 0;

		while (first + k < n && arrived[first + k] < arrived[first] + WINDOW_S)
		{
			window[k] = lat[first + k];
			k++;
		}
		qsort(window, k, sizeof(double), cmp_double);
		printf("%s%.2f", first > 0 ? "," : "", window[(long) (k * 0.99)]);
		first += k;
	}
	printf("\n");

	if (n > 0)
	{
		double		to_mean = mean(to_produce, n);
		double		after_mean = mean(after_produce, n);

		qsort(to_produce, n, sizeof(double), cmp_double);
		qsort(after_produce, n, sizeof(double), cmp_double);
		printf("split_ms to_produce_p50=%.2f to_produce_mean=%.2f after_produce_p50=%.2f after_produce_mean=%.2f\n",
			   to_produce[n / 2], to_mean, after_produce[n / 2], after_mean);
	}

	qsort(lat, n, sizeof(double), cmp_double);
	if (n == 0)
		printf("count=0\n");
	else
		printf("count=%ld p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
			   n, lat[n / 2], lat[(long) (n * 0.90)], lat[(long) (n * 0.99)], lat[n - 1]);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	free(lat);
	free(arrived);
	free(window);
	free(to_produce);
	free(after_produce);
	return n == want ? 0 : 1;
}
