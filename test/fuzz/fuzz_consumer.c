/*-------------------------------------------------------------------------
 *
 * fuzz_consumer.c
 *	  Read whole topics and print every message byte for byte, in hex.
 *
 *	  fuzz_consumer BOOTSTRAP TIMEOUT_S TOPIC...
 *
 * One line per message, fields separated by tabs:
 *
 *	  topic partition offset key value headers
 *
 * key and value are lowercase hex, or "-" for null; headers is a comma
 * separated list of name_hex:value_hex (value "-" for a null value), or
 * empty.  Reads every partition of every topic from the beginning up to
 * its end at start-up and exits 0; exits 1 on an error or when TIMEOUT_S
 * pass first.  kcat -J does the same job, but decoding its JSON in Perl
 * is too slow for the fuzz test's tens of megabytes.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_consumer.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static void
print_hex(const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = data;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		putchar(digits[p[i] >> 4]);
		putchar(digits[p[i] & 15]);
	}
}

static void
print_message(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs = NULL;

	printf("%s\t%d\t%lld\t", rd_kafka_topic_name(m->rkt), (int) m->partition,
		   (long long) m->offset);
	if (m->key)
		print_hex(m->key, m->key_len);
	else
		putchar('-');
	putchar('\t');
	if (m->payload)
		print_hex(m->payload, m->len);
	else
		putchar('-');
	putchar('\t');
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		size_t		i;
		const char *name;
		const void *value;
		size_t		size;

		for (i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
			 RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		{
			if (i > 0)
				putchar(',');
			print_hex(name, strlen(name));
			putchar(':');
			if (value)
				print_hex(value, size);
			else
				putchar('-');
		}
	}
	putchar('\n');
}

int
main(int argc, char **argv)
{
	char		errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *parts;
	const struct rd_kafka_metadata *md;
	int			remaining = 0;
	int			i;
	time_t		deadline;

	if (argc < 4)
	{
		fprintf(stderr, "usage: %s BOOTSTRAP TIMEOUT_S TOPIC...\n", argv[0]);
		return 2;
	}
	deadline = time(NULL) + atoi(argv[2]);

	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "group.id", "fuzz_consumer", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "fetch.message.max.bytes", "10000000", errstr, sizeof(errstr)))
	{
		fprintf(stderr, "config: %s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!rk)
	{
		fprintf(stderr, "consumer: %s\n", errstr);
		return 1;
	}

	parts = rd_kafka_topic_partition_list_new(16);
	for (i = 3; i < argc; i++)
	{
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[i], NULL);
		rd_kafka_resp_err_t err;
		int			p;

		err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
		if (err || md->topic_cnt != 1 || md->topics[0].err)
		{
			fprintf(stderr, "metadata of %s: %s\n", argv[i],
					rd_kafka_err2str(err ? err : md->topics[0].err));
			return 1;
		}
		for (p = 0; p < md->topics[0].partition_cnt; p++)
		{
			rd_kafka_topic_partition_list_add(parts, argv[i],
											  md->topics[0].partitions[p].id)->offset =
				RD_KAFKA_OFFSET_BEGINNING;
			remaining++;
		}
		rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rkt);
	}
	if (rd_kafka_assign(rk, parts))
	{
		fprintf(stderr, "assign failed\n");
		return 1;
	}

	while (remaining > 0)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

		if (time(NULL) > deadline)
		{
			fprintf(stderr, "timed out with %d partitions not read to the end\n",
					remaining);
			return 1;
		}
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			remaining--;
		else if (m->err)
		{
			fprintf(stderr, "consume: %s\n", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			return 1;
		}
		else
			print_message(m);
		rd_kafka_message_destroy(m);
	}

	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return fflush(stdout) == 0 ? 0 : 1;
}
