/*-------------------------------------------------------------------------
 *
 * held_lane.c
 *	  Topics and partitions held aside while Kafka refuses them, and the
 *	  lane that works their queues, so that one sick topic or partition
 *	  never stops the others (G6).
 *
 * A topic is held as a whole when an event of it fails with an error about
 * the topic (unknown, not authorised: class "topic refused").  A single
 * partition is held when an event of it fails with an error about the
 * partition (no leader, too few in-sync replicas: "topic unavailable") or
 * stays unacknowledged past outbox_kafka.stall_timeout while the cluster
 * otherwise answers; the other partitions of its topic keep flowing.  A
 * hold is a queue: from then on the events it covers are not produced from
 * the batch, they move, in id order, to outbox.held_event as the batch
 * cursor passes them.  An event goes to the queue of its partition if that
 * is held, else to its topic's; no partition of a topic held as a whole is
 * held by itself, so all events of a key are in one queue, in order.  The
 * lane produces the head of one queue at a time, with back-off;
 * acknowledged events leave the queue, and once the queue is empty (and no
 * event of it waits in the current chunk) the hold is released.
 * A topic Kafka refuses (class "topic refused") at every attempt for
 * longer than outbox_kafka.max_retry_time has its whole queue
 * dead-lettered; unavailable and stalled topics wait for as long as it
 * takes, and a topic that stalled for long and is then refused gets the
 * whole max_retry_time from its first refusal.  The refusal is counted in
 * memory; after a restart a topic last held as refused counts from
 * held_since (which outbox.held_topic keeps).
 *
 * A chunk recorded while held events of it are still in flight is pinned
 * (its memory stays, librdkafka reads it) until their reports are in.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/held_lane.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "relay_worker.h"

/* Back-off between attempts at a held topic's queue. */
#define LANE_BACKOFF_MIN_MS		500
#define LANE_BACKOFF_MAX_MS		10000
/* Pinned chunks at most; reaching it makes the producer be rebuilt (purging them). */
#define MAX_PINNED_CHUNKS		4
/* Why a topic is held whose own failure is not known (any more). */
#define HELD_BEHIND "held behind earlier events of the topic"
/* No queue: not an acknowledged held event (release_acked). */
#define NO_QUEUE				(-2)

static HeldTopic *held_add(const char *topic, int32 partition,
						   TimestampTz held_since, const char *reason,
						   const char *error_class);
static void held_remove(HeldTopic *ht);
static const char *hold_name(HeldTopic *ht);
static void note_refusal(HeldTopic *ht, bool refused);
static void release_acked(OutboxChunk *chunk, bool *began);
static bool in_queue(HeldTopic *ht, OutboxEvent *event);
static bool queue_in_flight(HeldTopic *ht);
static bool queue_waits_in_chunk(HeldTopic *ht);
static void lane_dead_letter(OutboxChunk *lane, OutboxEvent *first,
							 List *permanent);
static bool lane_failed(HeldTopic *ht, OutboxEvent *failed);
static void lane_next_attempt(HeldTopic *ht, bool released, bool failed);
static void settle_lane(void);
static HeldTopic *next_due_topic(long *wait_ms);
static void set_lane_aside(void);

/*
 * held_find: the hold of topic's partition (-1: of the whole topic), or
 * NULL.
 */
HeldTopic *
held_find(const char *topic, int32 partition)
{
	ListCell   *lc;

	foreach(lc, relay.held)
	{
		HeldTopic  *ht = (HeldTopic *) lfirst(lc);

		if (ht->partition == partition && strcmp(ht->topic, topic) == 0)
			return ht;
	}
	return NULL;
}

/*
 * held_partition: is partition of topic held aside, by itself or with its
 * whole topic?  (partition -1: is the whole topic held?)  An
 * OutboxPartitionHeldFn.
 */
bool
held_partition(const char *topic, int32 partition)
{
	if (relay.held == NIL)
		return false;
	return held_find(topic, -1) != NULL ||
		(partition >= 0 && held_find(topic, partition) != NULL);
}

/*
 * held_route: the queue a held event goes to: its partition's if that is
 * held, else its topic's (-1); and, through reason and cls, why that is
 * held.  An OutboxHeldRouteFn, for outbox_storage_finish_chunk().
 */
int32
held_route(const OutboxEvent *event, const char **reason, const char **cls)
{
	HeldTopic  *ht = NULL;

	if (event->partition >= 0)
		ht = held_find(event->topic, event->partition);
	if (ht == NULL)
		ht = held_find(event->topic, -1);
	if (ht == NULL)
	{
		/* the lane released it in this very pass: held_hold_behind */
		*reason = HELD_BEHIND;
		*cls = "held";
		return -1;
	}
	*reason = ht->reason;
	*cls = ht->error_class;
	return ht->partition;
}

/*
 * held_add: remember topic's partition (-1: the whole topic) as held (in
 * TopMemoryContext).
 */
static HeldTopic *
held_add(const char *topic, int32 partition, TimestampTz held_since,
		 const char *reason, const char *error_class)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	HeldTopic  *ht = palloc0(sizeof(HeldTopic));

	ht->topic = pstrdup(topic);
	ht->partition = partition;
	strlcpy(ht->reason, reason, sizeof(ht->reason));
	ht->error_class = pstrdup(error_class);
	ht->refused_since = strcmp(error_class,
							   outbox_error_class_name(OUTBOX_ERROR_TOPIC_REFUSED)) == 0 ?
		held_since : 0;
	ht->held_since = held_since;
	ht->backoff_ms = LANE_BACKOFF_MIN_MS;
	ht->next_attempt_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  LANE_BACKOFF_MIN_MS);
	relay.held = lappend(relay.held, ht);
	MemoryContextSwitchTo(old);
	return ht;
}

/*
 * held_remove: forget a released topic.
 */
static void
held_remove(HeldTopic *ht)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	relay.held = list_delete_ptr(relay.held, ht);
	MemoryContextSwitchTo(old);
	pfree(ht->topic);
	pfree((char *) ht->error_class);
	pfree(ht);
	if (relay.held == NIL && outbox_state_flows(relay.state))
		outbox_slot_clear_error(relay.slot);
}

/*
 * held_load: read the held topics from outbox.held_topic (at start, and
 * after an error made the worker forget them).
 */
void
held_load(void)
{
	List	   *rows;
	ListCell   *lc;

	held_forget();
	relay_begin_step("outbox_kafka: read held topics");
	rows = outbox_storage_held_topics();
	foreach(lc, rows)
	{
		OutboxHeldTopicRow *row = (OutboxHeldTopicRow *) lfirst(lc);

		held_add(row->topic, row->partition, row->held_since, row->reason,
				 row->error_class);
	}
	relay_end_step();
	relay.held_loaded = true;
}

/*
 * held_forget: forget every held topic (they are read again).
 */
void
held_forget(void)
{
	while (relay.held != NIL)
	{
		HeldTopic  *ht = (HeldTopic *) linitial(relay.held);

		relay.held = list_delete_first(relay.held);
		pfree(ht->topic);
		pfree((char *) ht->error_class);
		pfree(ht);
	}
	relay.held_loaded = false;
}

/*
 * hold_name: "topic \"t\"" or "partition p of topic \"t\"", for messages.
 */
static const char *
hold_name(HeldTopic *ht)
{
	if (ht->partition < 0)
		return psprintf("topic \"%s\"", ht->topic);
	return psprintf("partition %d of topic \"%s\"", ht->partition, ht->topic);
}

/*
 * held_hold: hold topic's partition (-1: the whole topic) aside, or update
 * why it is held.  A partition of a topic held as a whole is not held by
 * itself: the topic's hold is updated instead (so that the events of a key
 * are never in two queues).  Says so in the log and in outbox.status when
 * it was not held yet.  Returns the hold.
 */
HeldTopic *
held_hold(const char *topic, int32 partition, const char *reason,
		  const char *error_class, bool refused)
{
	HeldTopic  *ht = held_find(topic, -1);

	if (ht == NULL && partition >= 0)
		ht = held_find(topic, partition);
	if (ht == NULL)
	{
		char	   *detail;

		ht = held_add(topic, partition, GetCurrentTimestamp(), reason, error_class);
		detail = psprintf("%s is held aside, its events wait in order while everything else flows: %s",
						  hold_name(ht), reason);
		ereport(WARNING,
				(errmsg("outbox_kafka worker for database \"%s\": %s",
						relay.dbname, detail),
				 errhint("See outbox.held_topics.")));
		outbox_slot_set_error(relay.slot, detail);
	}
	else if (strcmp(ht->reason, reason) != 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		strlcpy(ht->reason, reason, sizeof(ht->reason));
		pfree((char *) ht->error_class);
		ht->error_class = pstrdup(error_class);
		MemoryContextSwitchTo(old);
	}
	note_refusal(ht, refused);
	return ht;
}

/*
 * held_hold_failed: event failed and its verdict holds its topic, or its
 * partition alone (OUTBOX_VERDICT_HOLD_TOPIC or _PARTITION): hold that,
 * with the error as the reason.  Returns the hold.
 */
HeldTopic *
held_hold_failed(const OutboxEvent *event, OutboxVerdict verdict)
{
	OutboxErrorClass cls = outbox_classify_error(event->error);

	Assert(verdict == OUTBOX_VERDICT_HOLD_TOPIC ||
		   verdict == OUTBOX_VERDICT_HOLD_PARTITION);
	return held_hold(event->topic,
					 verdict == OUTBOX_VERDICT_HOLD_PARTITION ? event->partition : -1,
					 outbox_error_text(event->error),
					 outbox_error_class_name(cls),
					 cls == OUTBOX_ERROR_TOPIC_REFUSED);
}

/*
 * note_refusal: the last attempt at a held topic failed; refused says
 * whether Kafka refused it.  A refusal starts the max_retry_time clock
 * unless it runs already; any other failure stops it.
 */
static void
note_refusal(HeldTopic *ht, bool refused)
{
	if (!refused)
		ht->refused_since = 0;
	else if (ht->refused_since == 0)
		ht->refused_since = GetCurrentTimestamp();
}

/*
 * held_hold_stalled: hold topic's partition (-1: the whole topic) because
 * its events went unacknowledged for outbox_kafka.stall_timeout while the
 * cluster answered (in a chunk of the batch or in the lane).  Returns the
 * hold.
 */
HeldTopic *
held_hold_stalled(const char *topic, int32 partition)
{
	return held_hold(topic, partition,
					 psprintf("no acknowledgement within %d ms while the cluster answers (partition without leader or too few in-sync replicas?)",
							  outbox_stall_timeout_ms),
					 "stalled", false);
}

/*
 * held_hold_behind: event was just queued (recorded while held): make sure
 * its queue is held, even if the lane released it in the same pass, so
 * that the queue is worked and later events follow it.
 */
void
held_hold_behind(const OutboxEvent *event)
{
	if (!held_partition(event->topic, event->partition))
		(void) held_hold(event->topic, -1, HELD_BEHIND, "held", false);
}

/*
 * held_unsettled: has chunk held events whose delivery reports are not
 * settled yet (in flight, or reported but not acted on)?
 */
bool
held_unsettled(OutboxChunk *chunk)
{
	int			i;

	for (i = 0; i < chunk->nevents; i++)
		if (chunk->events[i].held &&
			chunk->events[i].delivery != OUTBOX_DELIVERY_NONE)
			return true;
	return false;
}

/*
 * held_pin_chunk: chunk is recorded, but held events of it are still in
 * flight: keep its memory until their reports are in.  Too many pinned
 * chunks make the producer be rebuilt (purging them) on the next pass.
 */
void
held_pin_chunk(OutboxChunk *chunk)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	relay.pinned = lappend(relay.pinned, chunk);
	MemoryContextSwitchTo(old);
	if (list_length(relay.pinned) >= MAX_PINNED_CHUNKS)
		relay.producer_stale = true;
}

/*
 * release_acked: the held events of chunk acknowledged since the last
 * look leave their queues, one release per queue; *began says whether the
 * step that writes that is open (it is opened here if need be).
 */
static void
release_acked(OutboxChunk *chunk, bool *began)
{
	int32	   *queue = palloc(sizeof(int32) * chunk->nevents);
	const char *reason;
	const char *cls_name;
	int			i;

	/* each event's queue, looked up once */
	for (i = 0; i < chunk->nevents; i++)
	{
		OutboxEvent *event = &chunk->events[i];

		queue[i] = event->held && event->delivery == OUTBOX_DELIVERY_ACKED ?
			held_route(event, &reason, &cls_name) : NO_QUEUE;
	}
	for (i = 0; i < chunk->nevents; i++)
	{
		const char *topic = chunk->events[i].topic;
		List	   *ids = NIL;
		HeldTopic  *ht;
		int			j;

		if (queue[i] == NO_QUEUE)
			continue;
		for (j = i; j < chunk->nevents; j++)
		{
			if (queue[j] != queue[i] || strcmp(chunk->events[j].topic, topic) != 0)
				continue;
			ids = lappend(ids, &chunk->events[j].id);
			chunk->events[j].delivery = OUTBOX_DELIVERY_NONE;
			if (j > i)
				queue[j] = NO_QUEUE;
		}
		if (!*began)
		{
			relay_begin_step("outbox_kafka: release published held events");
			*began = true;
		}
		(void) outbox_storage_release_held(topic, queue[i], ids, false);
		if (relay.slot != NULL)
			pg_atomic_fetch_add_u64(&relay.slot->events_published,
									list_length(ids));
		ht = held_find(topic, queue[i]);
		if (ht != NULL)
			ht->next_attempt_at = 0;	/* it answers again: look now */
		list_free(ids);
	}
	pfree(queue);
}

/*
 * held_release_pinned: settle the reports of pinned chunks: held events
 * that were acknowledged leave their queue; those that failed stay, and
 * their error says why their topic is held.  Each event is settled as its
 * report comes (a topic that answers again is not kept waiting by another
 * that still stalls in the same chunk); chunks whose reports are all in
 * are freed.
 */
void
held_release_pinned(void)
{
	ListCell   *lc;
	bool		began = false;

	foreach(lc, relay.pinned)
	{
		OutboxChunk *chunk = (OutboxChunk *) lfirst(lc);
		int			i;

		for (i = 0; i < chunk->nevents; i++)
		{
			OutboxEvent *event = &chunk->events[i];
			OutboxVerdict verdict;

			if (!event->held || event->delivery != OUTBOX_DELIVERY_FAILED)
				continue;
			/* it stays in its queue; a hold says why it waits */
			verdict = outbox_event_verdict(event);
			if (verdict == OUTBOX_VERDICT_HOLD_TOPIC ||
				verdict == OUTBOX_VERDICT_HOLD_PARTITION)
				(void) held_hold_failed(event, verdict);
			event->delivery = OUTBOX_DELIVERY_NONE;
		}
		release_acked(chunk, &began);
	}
	if (began)
		relay_end_step();

	foreach(lc, relay.pinned)
	{
		OutboxChunk *chunk = (OutboxChunk *) lfirst(lc);

		if (chunk->in_flight > 0)
			continue;
		relay.pinned = foreach_delete_current(relay.pinned, lc);
		outbox_chunk_free(chunk);
	}
}

/*
 * in_queue: does event belong to ht's queue: is it of ht's topic and, for
 * a held partition, of that partition?
 */
static bool
in_queue(HeldTopic *ht, OutboxEvent *event)
{
	return (ht->partition < 0 || event->partition == ht->partition) &&
		strcmp(event->topic, ht->topic) == 0;
}

/*
 * queue_in_flight: is an event of ht's queue in flight in the current chunk
 * or a pinned one, or a held one reported but not yet settled by
 * held_release_pinned() (an acknowledged event still sits in its queue)?
 * The current chunk counts as a whole, recorded events included: held
 * events recorded while the relay gathers commits are still in flight.
 * The lane waits for them: its events come before or after them in the
 * queue's order, and it must not send again what was just acknowledged.
 * Reports can be served in the middle of a pass (outbox_producer_push),
 * before the pinned chunks are settled at the start of the next one.
 */
static bool
queue_in_flight(HeldTopic *ht)
{
	ListCell   *lc;
	int			i;

	/* the whole chunk: held events recorded in it may still be in flight */
	for (i = 0; i < relay.chunk->nevents; i++)
	{
		OutboxEvent *event = &relay.chunk->events[i];

		if ((event->delivery == OUTBOX_DELIVERY_IN_FLIGHT ||
			 (event->held && event->delivery != OUTBOX_DELIVERY_NONE)) &&
			in_queue(ht, event))
			return true;
	}
	foreach(lc, relay.pinned)
	{
		OutboxChunk *chunk = (OutboxChunk *) lfirst(lc);

		for (i = 0; i < chunk->nevents; i++)
		{
			OutboxEvent *event = &chunk->events[i];

			if (event->held && event->delivery != OUTBOX_DELIVERY_NONE &&
				in_queue(ht, event))
				return true;
		}
	}
	return false;
}

/*
 * queue_waits_in_chunk: does the current chunk hold events of ht's queue
 * that are not in it yet?  Then the hold may not be released.
 */
static bool
queue_waits_in_chunk(HeldTopic *ht)
{
	int			i;

	for (i = relay.chunk->recorded; i < relay.chunk->nevents; i++)
	{
		OutboxEvent *event = &relay.chunk->events[i];

		if (event->held && in_queue(ht, event))
			return true;
	}
	return false;
}

/*
 * lane_dead_letter: the lane's events in permanent (ids) failed for good,
 * first of them first: move them to outbox.dead_letters.  In a step.
 */
static void
lane_dead_letter(OutboxChunk *lane, OutboxEvent *first, List *permanent)
{
	(void) outbox_storage_dead_letter_held(lane->lane_topic, lane->lane_partition,
										   outbox_error_text(first->error),
										   Max(first->attempts, 1), permanent);
	ereport(WARNING,
			(errmsg_plural("outbox_kafka moves %d held event of topic \"%s\" to outbox.dead_letters: %s",
						   "outbox_kafka moves %d held events of topic \"%s\" to outbox.dead_letters: %s",
						   list_length(permanent),
						   list_length(permanent), lane->lane_topic,
						   outbox_error_text(first->error))));
	if (relay.slot != NULL)
		pg_atomic_fetch_add_u64(&relay.slot->events_dead_lettered,
								list_length(permanent));
}

/*
 * lane_failed: the lane's attempt at ht's queue failed, failed being its
 * first event that did (not for good).  A queue Kafka refused at every
 * attempt for max_retry_time is dead-lettered as a whole: returns true,
 * the hold is to be released.  Otherwise the attempt is noted and the
 * hold says why it waits.  In a step.
 */
static bool
lane_failed(HeldTopic *ht, OutboxEvent *failed)
{
	OutboxErrorClass cls = outbox_classify_error(failed->error);
	const char *error = outbox_error_text(failed->error);
	int64		n;

	note_refusal(ht, cls == OUTBOX_ERROR_TOPIC_REFUSED);
	if (ht->refused_since == 0 ||
		!TimestampDifferenceExceeds(ht->refused_since, GetCurrentTimestamp(),
									outbox_max_retry_time_s * 1000))
	{
		outbox_storage_note_held_attempt(ht->topic, ht->partition, error,
										 outbox_error_class_name(cls));
		(void) held_hold(ht->topic, ht->partition, error,
						 outbox_error_class_name(cls),
						 cls == OUTBOX_ERROR_TOPIC_REFUSED);
		return false;
	}
	n = outbox_storage_dead_letter_held(ht->topic, ht->partition, error,
										ht->attempts + 1, NIL);
	ereport(WARNING,
			(errmsg_plural("outbox_kafka gives up on %s after %d s: %lld held event moved to outbox.dead_letters: %s",
						   "outbox_kafka gives up on %s after %d s: %lld held events moved to outbox.dead_letters: %s",
						   (unsigned long) n,
						   hold_name(ht), outbox_max_retry_time_s,
						   (long long) n, error)));
	if (relay.slot != NULL)
		pg_atomic_fetch_add_u64(&relay.slot->events_dead_lettered, n);
	return true;
}

/*
 * lane_next_attempt: after the lane's attempt at ht's queue: release the
 * hold, or back off after a failure, or go on with the queue at once.
 */
static void
lane_next_attempt(HeldTopic *ht, bool released, bool failed)
{
	if (released)
	{
		ereport(LOG,
				(errmsg("outbox_kafka worker for database \"%s\": %s is released, its events flow again",
						relay.dbname, hold_name(ht))));
		held_remove(ht);
	}
	else if (failed)
	{
		ht->attempts++;
		ht->next_attempt_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														  ht->backoff_ms);
		ht->backoff_ms = outbox_backoff_next(ht->backoff_ms, LANE_BACKOFF_MIN_MS,
											 LANE_BACKOFF_MAX_MS);
	}
	else
	{
		ht->refused_since = 0;
		ht->next_attempt_at = 0;
		ht->backoff_ms = LANE_BACKOFF_MIN_MS;
	}
}

/*
 * settle_lane: every report of the lane is in.  Acknowledged events leave
 * the queue (releasing the topic when it is empty); a permanent error
 * dead-letters its event (the lane does not try events alone: its queue
 * is a batch); other failures back off, and a refused topic past
 * max_retry_time has its whole queue dead-lettered.
 */
static void
settle_lane(void)
{
	OutboxChunk *lane = relay.lane;
	HeldTopic  *ht = held_find(lane->lane_topic, lane->lane_partition);
	List	   *acked = NIL;
	List	   *permanent = NIL;
	OutboxEvent *first_permanent = NULL;
	OutboxEvent *failed = NULL;
	bool		released;
	int			i;

	for (i = 0; i < lane->nevents; i++)
	{
		OutboxEvent *event = &lane->events[i];
		OutboxVerdict verdict;

		if (event->delivery == OUTBOX_DELIVERY_ACKED)
			acked = lappend(acked, &event->id);
		if (event->delivery != OUTBOX_DELIVERY_FAILED)
			continue;
		verdict = outbox_event_verdict(event);
		if (verdict == OUTBOX_VERDICT_DEAD || verdict == OUTBOX_VERDICT_RETRY_ALONE)
		{
			permanent = lappend(permanent, &event->id);
			if (first_permanent == NULL)
				first_permanent = event;
		}
		else if (failed == NULL)
			failed = event;
	}

	relay_begin_step("outbox_kafka: settle held events");
	if (permanent != NIL)
		lane_dead_letter(lane, first_permanent, permanent);
	released = outbox_storage_release_held(lane->lane_topic, lane->lane_partition,
										   acked, failed == NULL &&
										   (ht == NULL || !queue_waits_in_chunk(ht)));
	if (failed != NULL && ht != NULL && lane_failed(ht, failed))
		released = true;
	relay_end_step();

	if (relay.slot != NULL && acked != NIL)
	{
		pg_atomic_fetch_add_u64(&relay.slot->events_published, list_length(acked));
		SpinLockAcquire(&relay.slot->mutex);
		relay.slot->last_publish_at = GetCurrentTimestamp();
		SpinLockRelease(&relay.slot->mutex);
	}
	if (ht != NULL)
		lane_next_attempt(ht, released, failed != NULL);
	outbox_chunk_reset(lane);
}

/*
 * next_due_topic: a hold whose turn has come and whose queue has nothing
 * in flight, or NULL; then *wait_ms says when the next one is due.
 */
static HeldTopic *
next_due_topic(long *wait_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	ListCell   *lc;

	*wait_ms = 1000;
	foreach(lc, relay.held)
	{
		HeldTopic  *ht = (HeldTopic *) lfirst(lc);

		if (ht->next_attempt_at > now)
		{
			*wait_ms = Min(*wait_ms,
						   Max(TimestampDifferenceMilliseconds(now, ht->next_attempt_at), 1));
			continue;
		}
		if (queue_in_flight(ht))
			continue;
		/* round robin: the topic served goes to the end of the list */
		relay.held = list_delete_ptr(relay.held, ht);
		relay.held = lappend(relay.held, ht);
		return ht;
	}
	return NULL;
}

/*
 * set_lane_aside: the lane chunk's topic stalls (a partition without a
 * leader, with no message timeout, keeps it in flight for ever): pin the
 * chunk like a recorded one, so that its reports are settled whenever they
 * come (held_release_pinned), and give the lane a new chunk for the other
 * held topics.  The stalled topic is in flight, so it is not served again
 * until its reports are in.  outbox.held_topics says so: the stall is the
 * last failure of the queue's head, not the refusal it was first held for.
 * Runs outside any transaction.
 */
static void
set_lane_aside(void)
{
	OutboxChunk *lane = relay.lane;
	HeldTopic  *ht;
	int			i;

	for (i = 0; i < lane->nevents; i++)
		lane->events[i].held = true;	/* they are in the topic's queue */
	ht = held_hold_stalled(lane->lane_topic, lane->lane_partition);
	relay_begin_step("outbox_kafka: note a stalled held topic");
	outbox_storage_note_held_attempt(ht->topic, ht->partition, ht->reason,
									 ht->error_class);
	relay_end_step();
	held_pin_chunk(lane);
	relay.lane = outbox_chunk_create();
}

/*
 * held_run_lane: one pass of the lane: settle the lane chunk once all its
 * reports are in, then start on the next due queue.  Returns how long the
 * worker may sleep as far as the lane is concerned.
 */
long
held_run_lane(void)
{
	OutboxChunk *lane = relay.lane;
	HeldTopic  *ht;
	long		wait_ms;
	MemoryContext old;

	if (lane->nevents > 0)
	{
		if (lane->in_flight > 0)
		{
			long		stall_ms = chunk_ms_until_stalled(lane);

			if (stall_ms > 0)
				return Min(stall_ms, 1000);
			set_lane_aside();
			lane = relay.lane;
		}
		else
			settle_lane();
	}
	if (relay.held == NIL)
		return outbox_poll_interval_ms;

	old = MemoryContextSwitchTo(TopMemoryContext);
	ht = next_due_topic(&wait_ms);
	MemoryContextSwitchTo(old);
	if (ht == NULL)
		return wait_ms;

	relay_begin_step("outbox_kafka: read held events");
	outbox_storage_fetch_held(lane, ht->topic, ht->partition, outbox_batch_size,
							  (int64) outbox_max_batch_bytes_kb * 1024);
	if (lane->nevents == 0 && !queue_waits_in_chunk(ht) &&
		outbox_storage_release_held(ht->topic, ht->partition, NIL, true))
	{
		relay_end_step();
		ereport(LOG,
				(errmsg("outbox_kafka worker for database \"%s\": %s is released, its events flow again",
						relay.dbname, hold_name(ht))));
		held_remove(ht);
		return 0;
	}
	relay_end_step();
	if (lane->nevents == 0)
	{
		ht->next_attempt_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														  LANE_BACKOFF_MIN_MS);
		return LANE_BACKOFF_MIN_MS;
	}
	if (outbox_error_is_fatal(relay_produce(lane, NULL)))
		relay_request_rebuild("the producer refused a message: it is in a fatal state");
	return 1000;
}

/*
 * held_drop_all_chunks: after the producer is gone (nothing is in flight
 * any more): empty the current, read-ahead and lane chunks and free the
 * pinned ones.
 */
void
held_drop_all_chunks(void)
{
	relay.chunk->in_flight = 0;
	relay.lane->in_flight = 0;
	outbox_chunk_reset(relay.chunk);
	outbox_chunk_reset(relay.ahead);
	outbox_chunk_reset(relay.lane);
	while (relay.pinned != NIL)
	{
		OutboxChunk *chunk = (OutboxChunk *) linitial(relay.pinned);

		relay.pinned = list_delete_first(relay.pinned);
		chunk->in_flight = 0;
		outbox_chunk_free(chunk);
	}
}
