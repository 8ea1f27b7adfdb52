/*-------------------------------------------------------------------------
 *
 * inbox_floor.c
 *	  The inbox benchmark's floor: a bare librdkafka consumer that reads a
 *	  topic from its beginning (every partition assigned by hand, as the
 *	  inbox does) and, per batch, COPYs the messages into a table and
 *	  stores one offset row per partition in the same transaction, through
 *	  libpq: the offset rows, the COMMIT and the next batch's BEGIN and
 *	  COPY go in one query string, so that the COPY is open before the
 *	  batch's first message arrives and a batch costs two round trips once
 *	  its messages are in (the end of the COPY, then that string).  Each row also gets the
 *	  wall-clock time its message came out of rd_kafka_consumer_poll()
 *	  (column r), so that a latency can be split into Kafka's part and the
 *	  database's.  The tables are made before the consumer starts: a
 *	  caller can wait for the first offset row to know it consumes.  No
 *	  handler, no savepoint, no de-duplication record: what an
 *	  exactly-once consumer cannot do with less work.  Its fetch settings
 *	  are the inbox's (src/inbox_consumer.c: fetch.wait.max.ms 100, Nagle
 *	  off): with Nagle's algorithm on, a fetch request can wait for the
 *	  acknowledgement of the one before, tens of milliseconds.
 *
 * Usage: inbox_floor BOOTSTRAP TOPIC PARTITIONS COUNT BATCH CONNINFO
 * Prints: count=N seconds=S msg_per_s=R (from the first message).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  bench/inbox_floor.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "wall_clock.h"

/* run: execute sql, exit on failure. */
static void
run(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK &&
		PQresultStatus(res) != PGRES_COPY_IN)
	{
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(conn));
		exit(1);
	}
	PQclear(res);
}

/* copy_escaped: append s[0..len) to buf as a COPY text field. */
static size_t
copy_escaped(char *buf, const char *s, size_t len)
{
	size_t		n = 0;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c == '\\' || c == '\t' || c == '\n' || c == '\r')
		{
			buf[n++] = '\\';
			c = (c == '\t') ? 't' : (c == '\n') ? 'n' : (c == '\r') ? 'r' : c;
		}
		buf[n++] = c;
	}
	return n;
}

int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *parts;
	PGconn	   *conn;
	char		errstr[512];
	int			partitions;
	long		count;
	int			batch;
	long		done = 0;
	long	   *next;
	double		t0 = 0;
	char	   *line;
	int			i;

	if (argc != 7)
	{
		fprintf(stderr, "usage: inbox_floor BOOTSTRAP TOPIC PARTITIONS COUNT BATCH CONNINFO\n");
		return 2;
	}
	partitions = atoi(argv[3]);
	if (partitions < 1 || partitions > 1024)
	{
		fprintf(stderr, "inbox_floor: 1 to 1024 partitions\n");
		return 2;
	}
	count = atol(argv[4]);
	batch = atoi(argv[5]);
	next = calloc(partitions, sizeof(long));
	line = malloc(4 * 1024 * 1024);

	conn = PQconnectdb(argv[6]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 1;
	}
	run(conn, "CREATE TABLE IF NOT EXISTS floor_msg (p int, o bigint, k text, v jsonb, r float8)");
	run(conn, "CREATE TABLE IF NOT EXISTS floor_offset (p int PRIMARY KEY, next bigint)");

	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "group.id", "inbox_floor", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "fetch.wait.max.ms", "100", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, sizeof(errstr)))
	{
		fprintf(stderr, "%s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "%s\n", errstr);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	parts = rd_kafka_topic_partition_list_new(partitions);
	for (i = 0; i < partitions; i++)
		rd_kafka_topic_partition_list_add(parts, argv[2], i)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(rk, parts);

	/* the first batch's COPY; each batch's last statement opens the next */
	run(conn, "BEGIN; COPY floor_msg FROM STDIN");
	while (done < count)
	{
		int			n = 0;
		int			touched[1024] = {0};
		char		sql[1024 * 32 + 200];
		size_t		len;

		while (n < batch && done + n < count)
		{
			rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, n == 0 ? 1000 : 0);

			if (m == NULL)
			{
				if (n > 0)
					break;
				continue;
			}
			if (m->err)
			{
				rd_kafka_message_destroy(m);
				continue;
			}
			if (t0 == 0)
				t0 = now_s();
			len = sprintf(line, "%d\t%lld\t", (int) m->partition, (long long) m->offset);
			len += copy_escaped(line + len, m->key ? m->key : "", m->key_len);
			line[len++] = '\t';
			len += copy_escaped(line + len, m->payload, m->len);
			len += sprintf(line + len, "\t%.6f\n", now_s());
			PQputCopyData(conn, line, (int) len);
			next[m->partition] = m->offset + 1;
			touched[m->partition] = 1;
			n++;
			rd_kafka_message_destroy(m);
		}
		PQputCopyEnd(conn, NULL);
		{
			PGresult   *res = PQgetResult(conn);

			if (PQresultStatus(res) != PGRES_COMMAND_OK)
			{
				fprintf(stderr, "COPY: %s", PQerrorMessage(conn));
				exit(1);
			}
			PQclear(res);
		}
		/* the offsets and the commit: one statement, one round trip */
		len = sprintf(sql, "INSERT INTO floor_offset VALUES ");
		for (i = 0; i < partitions; i++)
			if (touched[i])
				len += sprintf(sql + len, "%s(%d, %ld)",
							   sql[len - 1] == ')' ? ", " : "", i, next[i]);
		strcpy(sql + len, " ON CONFLICT (p) DO UPDATE SET next = EXCLUDED.next; COMMIT");
		done += n;
		if (done < count)
			strcat(sql, "; BEGIN; COPY floor_msg FROM STDIN");
		run(conn, sql);
	}
	printf("count=%ld seconds=%.3f msg_per_s=%.0f\n", done, now_s() - t0, done / (now_s() - t0));
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	PQfinish(conn);
	return 0;
}
