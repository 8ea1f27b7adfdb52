/*-------------------------------------------------------------------------
 *
 * chunk_produce.c
 *	  Handing a chunk's events to the producer, in id order, and taking
 *	  back the ones in flight when the producer goes away.
 *
 * Used alike by the batch's chunks (publish.c) and the held lane's
 * (held_lane.c).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/chunk_produce.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "relay_worker.h"

/* A partition events were produced to in one pass of relay_produce. */
typedef struct SentPartition
{
	const char *topic;
	int32		partition;
} SentPartition;

static bool same_partition(const SentPartition *p, const OutboxEvent *event);
static bool among(const SentPartition *set, int n, const OutboxEvent *event);
static void add_partition(SentPartition *set, int *n, const OutboxEvent *event);
static bool any_alone(OutboxChunk *chunk);

/*
 * same_partition: is event placed on partition p?
 */
static bool
same_partition(const SentPartition *p, const OutboxEvent *event)
{
	return p->partition == event->partition && strcmp(p->topic, event->topic) == 0;
}

/*
 * among: is event placed on one of the n partitions of set?
 */
static bool
among(const SentPartition *set, int n, const OutboxEvent *event)
{
	int			j;

	for (j = 0; j < n; j++)
		if (same_partition(&set[j], event))
			return true;
	return false;
}

/*
 * add_partition: add event's partition to the n of set (room for it is
 * the caller's).
 */
static void
add_partition(SentPartition *set, int *n, const OutboxEvent *event)
{
	set[*n].topic = event->topic;
	set[(*n)++].partition = event->partition;
}

/*
 * any_alone: has chunk an event to be produced alone (see
 * OUTBOX_VERDICT_RETRY_ALONE)?
 */
static bool
any_alone(OutboxChunk *chunk)
{
	int			i;

	for (i = chunk->recorded; i < chunk->nevents; i++)
		if (chunk->events[i].alone &&
			chunk->events[i].delivery == OUTBOX_DELIVERY_NONE)
			return true;
	return false;
}

/*
 * relay_produce: hand every event of chunk that is to be produced (not in
 * flight, not resolved, not held) to the producer, in id order, each to
 * the partition outbox_producer_place chooses.  An event whose partition
 * held (if not NULL) says is held aside is marked held instead: it goes
 * to its queue.  An event to be produced alone (its batch was refused for
 * one record) goes only when nothing of its partition went before it in
 * this pass, one such event per pass, and the events after it of its
 * partition wait until it is reported (chunk->deferred), as do those after
 * one that waits for a later pass (a key's later event must never overtake
 * it: once acknowledged, it would be delivered before it); the caller
 * produces a chunk's failed events again only once nothing of it is in
 * flight.  Stopping
 * at the first one the producer's local queue has no room for (the rest
 * follow on a later pass, in order).  Events that must wait for their
 * partition's first acknowledgement stay to be produced (chunk->deferred
 * says so; see outbox_producer_send).  Returns the librdkafka error that
 * refused an event for good reason to stop (queue full, fatal), else 0.
 */
int
relay_produce(OutboxChunk *chunk, OutboxPartitionHeldFn held)
{
	int			i;
	bool		any = false;
	int			err = 0;
	SentPartition *sent = NULL; /* partitions produced to, when any_alone */
	int			nsent = 0;
	SentPartition *waiting = NULL;	/* partitions whose events wait */
	int			nwaiting = 0;
	bool		alone_sent = false;	/* an event went alone in this pass */

	chunk->queue_full = false;
	chunk->deferred = false;
	if (any_alone(chunk))
	{
		sent = palloc(sizeof(SentPartition) * chunk->nevents);
		waiting = palloc(sizeof(SentPartition) * chunk->nevents);
	}
	for (i = chunk->recorded; i < chunk->nevents; i++)
	{
		OutboxEvent *event = &chunk->events[i];

		if (event->delivery != OUTBOX_DELIVERY_NONE || event->held)
			continue;
		if (outbox_producer_place(relay.producer, event, held) != 0)
			continue;			/* refused at once: settled like a report */
		if (held != NULL && held(event->topic, event->partition))
		{
			event->held = true;
			continue;
		}
		if (sent != NULL)
		{
			bool		before = among(sent, nsent, event);
			bool		behind = among(waiting, nwaiting, event);

			if (behind || (event->alone && (alone_sent || before)))
			{
				/* it waits, and everything after it of its partition */
				if (!behind)
					add_partition(waiting, &nwaiting, event);
				chunk->deferred = true;
				continue;
			}
			if (event->alone)
			{
				/* the events after it of its partition wait for its report */
				alone_sent = true;
				add_partition(waiting, &nwaiting, event);
			}
			else if (!before)
				add_partition(sent, &nsent, event);
		}
		err = outbox_producer_send(relay.producer, chunk, event);
		if (err == 0)
		{
			any = true;
			continue;
		}
		if (outbox_error_is_queue_full(err) || outbox_error_is_fatal(err))
		{
			/* not refused: produced again later, in order */
			event->delivery = OUTBOX_DELIVERY_NONE;
			chunk->queue_full = outbox_error_is_queue_full(err);
			break;
		}
		err = 0;				/* refused at once: settled like a report */
	}
	if (sent != NULL)
	{
		pfree(sent);
		pfree(waiting);
	}
	if (any)
	{
		chunk->produced_at = GetCurrentTimestamp();
		chunk->acked = 0;
		chunk->evidence_at = 0;
	}
	return err;
}

/*
 * relay_forget_in_flight: the producer is gone; its reports with it.
 * Events of chunk still in flight failed (purged): produce them again.
 */
void
relay_forget_in_flight(OutboxChunk *chunk)
{
	int			i;

	if (chunk == NULL || chunk->in_flight == 0)
		return;
	for (i = 0; i < chunk->nevents; i++)
	{
		if (chunk->events[i].delivery == OUTBOX_DELIVERY_IN_FLIGHT)
		{
			chunk->events[i].delivery = OUTBOX_DELIVERY_FAILED;
			chunk->events[i].error = OUTBOX_ERROR_CODE_PURGED;
		}
	}
	chunk->in_flight = 0;
}

/*
 * chunk_ms_until_stalled: how long until the events of chunk in flight
 * count as stalled (outbox_kafka.stall_timeout after they were last
 * produced); 0 if they do now.
 */
long
chunk_ms_until_stalled(OutboxChunk *chunk)
{
	TimestampTz stalled_at = TimestampTzPlusMilliseconds(chunk->produced_at,
														 outbox_stall_timeout_ms);

	return Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), stalled_at), 0);
}
