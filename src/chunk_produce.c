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

/*
 * relay_produce: hand every event of chunk that is to be produced (not in
 * flight, not resolved, not held) to the producer, in id order, each to
 * the partition outbox_producer_place chooses.  An event whose partition
 * held (if not NULL) says is held aside is marked held instead: it goes
 * to its queue.  Stopping
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

	chunk->queue_full = false;
	chunk->deferred = false;
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
