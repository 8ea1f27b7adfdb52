/*-------------------------------------------------------------------------
 *
 * inbox_consumer.h
 *	  The inbox's Kafka consumer (inbox_consumer.c).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_consumer.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_INBOX_CONSUMER_H
#define OUTBOX_INBOX_CONSUMER_H

#include "inbox.h"

typedef struct InboxConsumer InboxConsumer;

extern InboxConsumer *inbox_consumer_create(const char *group_id, const char *topic,
											int wake_fd, char *errbuf,
											size_t errbuf_size);
extern void inbox_consumer_destroy(InboxConsumer *consumer);
extern int	inbox_consumer_partitions(InboxConsumer *consumer, int timeout_ms,
									  int32 **partitions, char *errbuf,
									  size_t errbuf_size);
extern void inbox_consumer_assign(InboxConsumer *consumer, int n,
								  const int32 *partitions, const int64 *offsets);
extern void inbox_consumer_pause(InboxConsumer *consumer, int32 partition);
extern void inbox_consumer_resume_at(InboxConsumer *consumer, int32 partition,
									 int64 offset);
extern int	inbox_consumer_poll(InboxConsumer *consumer, InboxMessage *out, int max);
extern bool inbox_consumer_take_error(InboxConsumer *consumer, char *errbuf,
									  size_t errbuf_size);
extern int64 inbox_consumer_high_watermark(InboxConsumer *consumer, int32 partition);
extern bool inbox_consumer_offsets_for_times(InboxConsumer *consumer, int n,
											 const int32 *partitions, int64 at_ms,
											 int timeout_ms, int64 *offsets,
											 char *errbuf, size_t errbuf_size);
extern void inbox_consumer_commit(InboxConsumer *consumer, int n,
								  const int32 *partitions, const int64 *offsets);
extern long inbox_consumer_commit_due(InboxConsumer *consumer);

#endif							/* OUTBOX_INBOX_CONSUMER_H */
