/*-------------------------------------------------------------------------
 *
 * event_verdict.c
 *	  What becomes of an event once its delivery is reported: the one
 *	  mapping of a delivery report and the class of its error to ack,
 *	  retry, hold or dead-letter.
 *
 * The batch's chunks (publish.c), the held lane and the pinned chunks
 * (held_lane.c) all act on this verdict; what they do with it differs
 * only in where the event is (in the batch, or already in a held queue).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/event_verdict.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "relay.h"

/*
 * outbox_event_verdict: what to do with event, given its delivery state
 * and, if it failed, the class of its error (error_class.c): a permanent
 * error dead-letters it (the key's order is given up for it:
 * docs/reliability.md); an error about its topic holds the topic, an
 * error about its partition holds the partition (the topic, if the
 * partition is not known); anything else (cluster trouble, a purge, a
 * fatal producer) produces it again, charging nobody.  An error Kafka
 * gives a whole batch for one bad record of it is only believed of an
 * event produced alone: before that, the event is tried alone (librdkafka
 * before 2.4 gives every record of the batch the error; later ones give
 * the innocent records _INVALID_DIFFERENT_RECORD, a transient error).
 */
OutboxVerdict
outbox_event_verdict(const OutboxEvent *event)
{
	switch (event->delivery)
	{
		case OUTBOX_DELIVERY_NONE:
		case OUTBOX_DELIVERY_IN_FLIGHT:
			return OUTBOX_VERDICT_WAIT;
		case OUTBOX_DELIVERY_ACKED:
			return OUTBOX_VERDICT_ACKED;
		case OUTBOX_DELIVERY_DEAD:
			return OUTBOX_VERDICT_DEAD;
		case OUTBOX_DELIVERY_FAILED:
			break;
	}
	switch (outbox_classify_error(event->error))
	{
		case OUTBOX_ERROR_PERMANENT:
			if (outbox_error_blames_batch(event->error) && !event->alone)
				return OUTBOX_VERDICT_RETRY_ALONE;
			return OUTBOX_VERDICT_DEAD;
		case OUTBOX_ERROR_TOPIC_REFUSED:
			return OUTBOX_VERDICT_HOLD_TOPIC;
		case OUTBOX_ERROR_TOPIC_UNAVAILABLE:
			return event->partition >= 0 ? OUTBOX_VERDICT_HOLD_PARTITION :
				OUTBOX_VERDICT_HOLD_TOPIC;
		case OUTBOX_ERROR_CLUSTER:
		case OUTBOX_ERROR_TRANSIENT:
		case OUTBOX_ERROR_FATAL:
			break;
	}
	return OUTBOX_VERDICT_RETRY;
}
