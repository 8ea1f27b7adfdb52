/*-------------------------------------------------------------------------
 *
 * publish.c
 *	  Publishing the open batch, chunk by chunk: record progress and fetch,
 *	  make sure the chunk's commits are durable, produce, settle failures,
 *	  hold aside topics that stall or are refused.
 *
 * Two chunks at most are in flight: the current one (relay.chunk) and the
 * one read after it (relay.ahead: the rest of the open batch, or the next
 * batch on a newer tick), so events committed while a chunk is delivered
 * leave without waiting for its slowest acknowledgement.  A chunk is done
 * once every event is acknowledged, dead-lettered or held (moved to its
 * topic's queue in outbox.held_event, see held_lane.c); then the batch
 * cursor moves past it, in memory (relay_batch.c saves it to
 * outbox.relay_state at most every outbox_kafka.progress_save_interval),
 * and the chunk read after it becomes current.
 *
 * Order (G3).  The chunk read after the current one is produced only while
 * every event of the current one is handed over, and an event of it only
 * once its partition has no event of the current chunk left to
 * acknowledge (relay_produce_after): a partition has one chunk's events in
 * flight at a time, as before, and the chunks overlap on the other
 * partitions and in time.  Events that failed for a reason that is
 * nobody's fault are produced again only once nothing of either chunk is
 * in flight, in id order; one to be tried alone never once a later event
 * of its key was acknowledged in either chunk.  So a later event of a key
 * is never handed over before an earlier one that failed, and a refused
 * request is never overtaken by a later one of its partition, whether or
 * not the broker checks sequence numbers; librdkafka's idempotence with
 * enable.gapless.guarantee keeps the broker from writing a later message
 * of a partition after an earlier one failed.
 *
 * Memory: at most two chunks of the batch, 2 x outbox_kafka.max_batch_bytes
 * (and outbox_kafka.batch_size events each), besides the held lane's and
 * the pinned chunks.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/publish.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "replication/syncrep.h"
#include "replication/walsender_private.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#include "relay_worker.h"

/* Back-off before failed events are produced again: MIN to MAX, doubling. */
#define RETRY_BACKOFF_MIN_MS	100
#define RETRY_BACKOFF_MAX_MS	10000
/* Leaderless partitions of one topic held at once, at most. */
#define LEADERLESS_MAX			1024
/* How long a metadata probe may take when a stall is suspected. */
#define STALL_PROBE_MS			500
/*
 * How long after the first acknowledgement of a chunk the relay asks the
 * cluster whether the partitions it still waits for have a leader, and
 * how often at most.
 */
#define LEADER_PROBE_AFTER_MS	20
#define LEADER_PROBE_EVERY_MS	100
/* Topics asked about in one probe, at most. */
#define LEADER_PROBE_TOPICS		8
/* How often to look again while waiting for standbys to confirm. */
#define STANDBY_POLL_MS			5
/*
 * Longest wait for room in librdkafka's queue when none of the chunk's own
 * events is in flight (held events fill it); delivery reports wake us.
 */
#define QUEUE_FULL_WAIT_MS		100

/* since when the current chunk waits for standbys to confirm; 0 if not */
static TimestampTz standby_wait_since = 0;
/* when the relay last asked for the leaders of partitions it waits for */
static TimestampTz leaders_probed_at = 0;

static bool own_in_flight(OutboxChunk *chunk);
static bool pipeline_in_flight(void);
static bool handed_over(OutboxChunk *chunk);
static bool failure_unsettled(void);
static long after_produce(OutboxChunk *chunk);
static bool chunk_done(OutboxChunk *chunk);
static long publish_chunks(void);
static long in_flight_wait(void);
static long produce_next(void);
static void settle_recorded(OutboxChunk *chunk, int from, int upto);
static void next_chunk(OutboxChunk *chunk);
static bool chunk_durable(OutboxChunk *chunk);
static void settle_failures(void);
static void hold_in_chunks(HeldTopic *ht);
static bool later_of_key_acked(OutboxChunk *chunk, int i);
static void note_answers(TimestampTz now);
static long check_stalls(void);
static TimestampTz cluster_silent(TimestampTz now, int unanswered,
								  TimestampTz oldest);
static long probe_leaders(OutboxChunk *chunk, TimestampTz now);
static int	hold_leaderless(const char *topic, const char *reason);
static void note_chunk_done(OutboxChunk *chunk);
static bool produce_durable(OutboxChunk *chunk, OutboxChunk *before);
static XLogRecPtr commits_to_flush(void);
static XLogRecPtr inserted_wal_end(void);
static void gather_until(TimestampTz done_at);

/*
 * own_in_flight: are events of the chunk in flight that are not held?
 * Held events in flight are the lane's to wait for (held_lane.c): they
 * keep neither the chunk nor the other topics waiting.
 */
static bool
own_in_flight(OutboxChunk *chunk)
{
	int			i;

	if (chunk->in_flight == 0)
		return false;
	for (i = chunk->recorded; i < chunk->nevents; i++)
		if (chunk->events[i].delivery == OUTBOX_DELIVERY_IN_FLIGHT &&
			!chunk->events[i].held)
			return true;
	return false;
}

/*
 * pipeline_in_flight: are events of the current chunk or of the one read
 * after it in flight that are not held?
 */
static bool
pipeline_in_flight(void)
{
	return own_in_flight(relay.chunk) || own_in_flight(relay.ahead);
}

/*
 * handed_over: is every event of chunk that is to be produced in flight
 * or resolved: none waits to be produced (first or again)?  Only then may
 * the chunk read after it be produced: a partition's events reach
 * librdkafka in id order.
 */
static bool
handed_over(OutboxChunk *chunk)
{
	int			i;

	for (i = chunk->recorded; i < chunk->nevents; i++)
		if ((chunk->events[i].delivery == OUTBOX_DELIVERY_NONE ||
			 chunk->events[i].delivery == OUTBOX_DELIVERY_FAILED) &&
			!chunk->events[i].held)
			return false;
	return true;
}

/*
 * failure_unsettled: has an event of the current chunk or the one read
 * after it failed without being settled yet (one to be tried alone waits
 * for every report of both chunks)?  Nothing more is produced meanwhile:
 * whether it may be produced again depends on what comes after it.
 */
static bool
failure_unsettled(void)
{
	OutboxChunk *chunks[2] = {relay.chunk, relay.ahead};
	int			c;
	int			i;

	for (c = 0; c < 2; c++)
		for (i = chunks[c]->recorded; i < chunks[c]->nevents; i++)
			if (chunks[c]->events[i].delivery == OUTBOX_DELIVERY_FAILED &&
				!chunks[c]->events[i].held)
				return true;
	return false;
}

/*
 * after_produce: how long to wait once the chunk was produced: for its
 * acknowledgements (delivery reports wake us), for room in librdkafka's
 * queue when only held events fill it, or for the first acknowledgement
 * on a partition held events are being sent to (outbox_producer_send), or
 * not at all.
 */
static long
after_produce(OutboxChunk *chunk)
{
	if (own_in_flight(chunk))
		return outbox_stall_timeout_ms;
	if (chunk->queue_full || chunk->deferred)
		return QUEUE_FULL_WAIT_MS;
	return 0;
}

/*
 * chunk_done: may the cursor move past the whole chunk?
 */
static bool
chunk_done(OutboxChunk *chunk)
{
	int			i;

	for (i = chunk->recorded; i < chunk->nevents; i++)
		if (!outbox_event_resolved(&chunk->events[i]))
			return false;
	return true;
}

/*
 * relay_record_progress: record the resolved head of the current chunk
 * (the cursor, in memory; dead letters and held events, in storage) and,
 * if fetch and the chunk is done, replace it with the next one.  A
 * transaction is opened only when storage is read or written.  A done
 * chunk whose held events are still in flight, or reported but not yet
 * settled (acknowledged while the relay gathered commits, say), is pinned
 * until held_release_pinned() settled them: an acknowledged held event
 * must leave its queue, or the lane would send it again.  A topic whose
 * events recording just queued is held, whatever happened to it meanwhile
 * (the lane may have given it up in this very pass).
 */
void
relay_record_progress(bool fetch)
{
	OutboxChunk *chunk = relay.chunk;
	int			from = chunk->recorded;
	int			recorded = outbox_chunk_resolved_head(chunk);
	bool		in_xact = outbox_chunk_head_needs_storage(chunk, recorded);

	if (in_xact)
		relay_begin_step("outbox_kafka: record dead letters and held events");
	outbox_storage_finish_chunk(chunk, recorded, in_xact, held_route);
	settle_recorded(chunk, from, recorded);
	if (in_xact)
	{
		relay_end_step();
		/* dead letters and held events are not re-done after a crash */
		XLogFlush(XactLastCommitEnd);
		relay.progress_saved_at = GetCurrentTimestamp();
	}
	chunk->recorded = recorded;

	if (fetch && recorded == chunk->nevents)
		next_chunk(chunk);
}

/*
 * settle_recorded: the events from .. upto of chunk were just recorded:
 * count what was published and dead-lettered, and hold the topics whose
 * events went to their queues (whatever happened to the topic meanwhile:
 * the lane may have given it up in this very pass).
 */
static void
settle_recorded(OutboxChunk *chunk, int from, int upto)
{
	uint64		published = 0;
	uint64		dead = 0;
	int			i;

	for (i = from; i < upto; i++)
	{
		OutboxEvent *event = &chunk->events[i];

		if (event->held && event->delivery != OUTBOX_DELIVERY_ACKED)
			held_hold_behind(event);
		if (event->delivery == OUTBOX_DELIVERY_ACKED)
		{
			published++;
			/* acknowledged before it was queued: nothing left to settle */
			if (event->held)
				event->delivery = OUTBOX_DELIVERY_NONE;
		}
		else if (event->delivery == OUTBOX_DELIVERY_DEAD && !event->held)
			dead++;
	}
	if (relay.slot != NULL && published > 0)
	{
		pg_atomic_fetch_add_u64(&relay.slot->events_published, published);
		SpinLockAcquire(&relay.slot->mutex);
		relay.slot->last_publish_at = GetCurrentTimestamp();
		SpinLockRelease(&relay.slot->mutex);
	}
	if (relay.slot != NULL && dead > 0)
		pg_atomic_fetch_add_u64(&relay.slot->events_dead_lettered, dead);
}

/*
 * next_chunk: chunk is recorded to its end: make the next one current,
 * the one read ahead, or a fetched one, or none when the batch is done
 * and no commit was counted since.  A chunk with held events not settled
 * yet is pinned rather than reused.
 */
static void
next_chunk(OutboxChunk *chunk)
{
	OutboxChunk *spare = chunk;

	if (held_unsettled(chunk))
	{
		held_pin_chunk(chunk);
		spare = outbox_chunk_create();
	}
	relay.chunk = spare;
	if (relay.ahead->nevents > 0)
	{
		/* the chunk read ahead becomes current */
		relay.chunk = relay.ahead;
		relay.ahead = spare;
		outbox_chunk_reset(spare);
		return;
	}
	if (chunk->batch_completed && outbox_batch_takes_new_tick(0) &&
		!relay.commits_seen && !relay_new_commits())
	{
		/*
		 * The batch is done and no commit was counted since its tick was
		 * taken: there is nothing new to look for (a commit is counted
		 * after it becomes visible).  Saves a transaction per batch when
		 * events trickle in.
		 */
		outbox_chunk_reset(spare);
		return;
	}

	/*
	 * Commits from now on are new, if this fetch opens a batch on a new
	 * snapshot.  One that reads on in the open batch sees none of them:
	 * they still count, or a commit made while a chunk was in flight would
	 * wait for poll_interval.
	 */
	if (outbox_batch_takes_new_tick(0))
		relay_look_for_commits();
	relay_begin_step("outbox_kafka: fetch events");
	outbox_storage_fetch_chunk(spare, outbox_batch_size,
							   (int64) outbox_max_batch_bytes_kb * 1024, 0);
	spare->durable_lsn = commits_to_flush();
	relay_end_step();
}

/*
 * relay_save_progress_at_most_every: save the batch state in memory to
 * outbox.relay_state and flush it, at most every
 * outbox_kafka.progress_save_interval (unless force): a crash then publishes again what was in flight plus at most
 * that much of acknowledged events (G4), and the relay spends no
 * transaction id, WAL or fsync per chunk.  Returns how long until a
 * deferred save is due (0 if nothing is left to save).  Opens its own
 * transaction: none may be open.
 */
long
relay_save_progress_at_most_every(bool force)
{
	TimestampTz now;
	TimestampTz due;

	if (!outbox_batch_unsaved())
		return 0;
	now = GetCurrentTimestamp();
	due = TimestampTzPlusMilliseconds(relay.progress_saved_at,
									  outbox_progress_save_interval_ms);
	if (!force && now < due)
		return Max(TimestampDifferenceMilliseconds(now, due), 1);
	relay_begin_step("outbox_kafka: save progress");
	outbox_batch_save();
	relay_end_step();
	XLogFlush(XactLastCommitEnd);
	relay.progress_saved_at = now;
	return 0;
}

/*
 * relay_save_progress: save the progress if a save is due.
 */
void
relay_save_progress(void)
{
	(void) relay_save_progress_at_most_every(false);
}

/*
 * commits_to_flush: how far WAL must be on disk (and, with
 * outbox_kafka.wait_for_standbys, confirmed by the synchronous standbys)
 * before the events just fetched may be published (G9); InvalidXLogRecPtr
 * if it already is.  Call after the fetch, in its transaction.  Without
 * standbys to wait for, only asynchronous commits of enqueuing
 * transactions need a flush (shmem.c tracks them); with them, everything
 * inserted so far must be confirmed.
 */
static XLogRecPtr
commits_to_flush(void)
{
	if (outbox_wait_for_standbys)
		return inserted_wal_end();
	return outbox_async_commits_end();
}

/*
 * inserted_wal_end: the end of the last WAL record inserted so far.
 * GetXLogInsertRecPtr() is where the next record goes: right after a page
 * header when the last record ended at a page boundary (after a WAL
 * switch, say), a position no record reaches yet.  XLogFlush() would fail
 * on it, and no standby could ever confirm it: step back over the header.
 */
static XLogRecPtr
inserted_wal_end(void)
{
	XLogRecPtr	insert = GetXLogInsertRecPtr();

	if (XLogSegmentOffset(insert, wal_segment_size) == SizeOfXLogLongPHD)
		return insert - SizeOfXLogLongPHD;
	if (insert % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		return insert - SizeOfXLogShortPHD;
	return insert;
}

/*
 * chunk_durable: are the commits of the chunk's events on disk (G9), and,
 * with outbox_kafka.wait_for_standbys, confirmed by the synchronous
 * standbys?  Flushes WAL as needed; returns false while standbys lag.
 * An application committing with synchronous_commit = off must never get
 * an event into Kafka that a crash then takes back.
 */
static bool
chunk_durable(OutboxChunk *chunk)
{
	XLogRecPtr	confirmed;
	bool		defined;

	if (chunk->durable_lsn == InvalidXLogRecPtr)
		return true;
	XLogFlush(chunk->durable_lsn);
	if (!outbox_wait_for_standbys)
	{
		chunk->durable_lsn = InvalidXLogRecPtr;
		return true;
	}
	/* synchronous_standby_names as this process reads it (reloaded on SIGHUP) */
	defined = SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0';
	LWLockAcquire(SyncRepLock, LW_SHARED);
	confirmed = WalSndCtl->lsn[SYNC_REP_WAIT_FLUSH];
	LWLockRelease(SyncRepLock);
	if (defined && confirmed < chunk->durable_lsn)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (standby_wait_since == 0)
			standby_wait_since = now;
		else if (TimestampDifferenceExceeds(standby_wait_since, now, 1000))
			relay_enter_state(OUTBOX_STATE_PUBLISHING, WARNING,
							  psprintf("waiting for the synchronous standbys to confirm WAL up to %X/%X before publishing (\"outbox_kafka.wait_for_standbys\" is on)",
									   LSN_FORMAT_ARGS(chunk->durable_lsn)));
		return false;
	}
	if (standby_wait_since != 0)
	{
		standby_wait_since = 0;
		outbox_slot_clear_error(relay.slot);
	}
	chunk->durable_lsn = InvalidXLogRecPtr;
	return true;
}



/*
 * hold_in_chunks: ht, a topic or a partition of one, was just held: every
 * event of it in the current chunk and the one read after it that is not
 * acknowledged or dead-lettered goes to its queue (those in flight stay in
 * flight; held_lane.c settles their reports).  Events whose partition is
 * not chosen yet are checked when they are produced (relay_produce).
 */
static void
hold_in_chunks(HeldTopic *ht)
{
	OutboxChunk *chunks[2] = {relay.chunk, relay.ahead};
	int			c;
	int			i;

	for (c = 0; c < 2; c++)
	{
		for (i = chunks[c]->recorded; i < chunks[c]->nevents; i++)
		{
			OutboxEvent *event = &chunks[c]->events[i];

			if (event->delivery == OUTBOX_DELIVERY_ACKED ||
				event->delivery == OUTBOX_DELIVERY_DEAD)
				continue;
			if ((ht->partition < 0 || event->partition == ht->partition) &&
				strcmp(event->topic, ht->topic) == 0)
			{
				event->held = true;
				if (event->delivery == OUTBOX_DELIVERY_FAILED)
					event->delivery = OUTBOX_DELIVERY_NONE;
			}
		}
	}
}

/*
 * later_of_key_acked: has an event after events[i] of chunk, of the same
 * topic and key, been acknowledged, in chunk or (chunk being the current
 * one) in the chunk read after it?  Then events[i] may not be produced
 * again (G3).  Keyless events have no order to keep.
 */
static bool
later_of_key_acked(OutboxChunk *chunk, int i)
{
	OutboxEvent *event = &chunk->events[i];

	if (event->key == NULL)
		return false;
	for (;;)
	{
		int			j;

		for (j = i + 1; j < chunk->nevents; j++)
		{
			OutboxEvent *later = &chunk->events[j];

			if (later->delivery == OUTBOX_DELIVERY_ACKED && later->key != NULL &&
				later->key_len == event->key_len &&
				memcmp(later->key, event->key, event->key_len) == 0 &&
				strcmp(later->topic, event->topic) == 0)
				return true;
		}
		if (chunk != relay.chunk)
			return false;
		chunk = relay.ahead;
		i = -1;
	}
}

/*
 * settle_failures: act on the verdict (outbox_event_verdict) about every
 * failed event of the current chunk and the one read after it:
 * dead-letter it, hold its topic or partition aside with the chunks'
 * other events of it (held_hold_failed), or produce it again later, with
 * back-off (alone, for an error Kafka gives a whole batch: not once a
 * later event of its key went through, which dead-letters it as before,
 * and only once every report of both chunks is in, so that such a later
 * event is known).
 */
static void
settle_failures(void)
{
	OutboxChunk *chunks[2] = {relay.chunk, relay.ahead};
	OutboxChunk *chunk;
	int			c;
	int			dead = 0;
	int64		first_dead = 0;
	const char *dead_error = NULL;
	int			retry = 0;
	const char *retry_error = NULL;
	OutboxErrorClass retry_class = OUTBOX_ERROR_TRANSIENT;
	OutboxErrorClass cls;
	int			i;

	for (c = 0; c < 2; c++)
	{
		chunk = chunks[c];
		for (i = chunk->recorded; i < chunk->nevents; i++)
		{
			OutboxEvent *event = &chunk->events[i];
			OutboxVerdict verdict;

			if (event->delivery != OUTBOX_DELIVERY_FAILED || event->held)
				continue;
			verdict = outbox_event_verdict(event);
			if (verdict == OUTBOX_VERDICT_RETRY_ALONE)
			{
				/* decided once every report of both chunks is in */
				if (pipeline_in_flight())
					continue;
				/* never again after a later event of its key went through */
				if (later_of_key_acked(chunk, i))
					verdict = OUTBOX_VERDICT_DEAD;
			}
			switch (verdict)
			{
				case OUTBOX_VERDICT_DEAD:
					event->delivery = OUTBOX_DELIVERY_DEAD;
					if (dead++ == 0)
					{
						first_dead = event->id;
						dead_error = outbox_error_text(event->error);
					}
					break;
				case OUTBOX_VERDICT_HOLD_TOPIC:
				case OUTBOX_VERDICT_HOLD_PARTITION:
					hold_in_chunks(held_hold_failed(event, verdict));
					break;
				case OUTBOX_VERDICT_RETRY_ALONE:
					event->alone = true;
					/* FALLTHROUGH */
				case OUTBOX_VERDICT_RETRY:
					event->attempts = Max(event->attempts - 1, 0);
					event->delivery = OUTBOX_DELIVERY_NONE;
					cls = outbox_classify_error(event->error);
					if (retry++ == 0 || cls == OUTBOX_ERROR_CLUSTER)
					{
						retry_error = outbox_error_text(event->error);
						retry_class = cls;
					}
					break;
				case OUTBOX_VERDICT_WAIT:
				case OUTBOX_VERDICT_ACKED:
					break;			/* not failed */
			}
		}
	}

	if (relay.slot != NULL && dead + retry > 0)
	{
		pg_atomic_fetch_add_u64(&relay.slot->events_failed, dead + retry);
		pg_atomic_fetch_add_u64(&relay.slot->events_retried, retry);
	}
	if (dead > 0)
	{
		/* one line per pass, however many events: no log flood */
		ereport(WARNING,
				(errmsg_plural("outbox_kafka moves %d event to outbox.dead_letters, the first being event %lld: %s",
							   "outbox_kafka moves %d events to outbox.dead_letters, the first being event %lld: %s",
							   dead,
							   dead, (long long) first_dead, dead_error)));
	}
	/* an event refused alone and dead-lettered: the chunk moves on */
	if (dead > 0)
		relay_note_progress();
	if (retry > 0)
	{
		relay.retry_at = outbox_backoff_schedule(&relay.backoff_ms, RETRY_BACKOFF_MIN_MS,
												 RETRY_BACKOFF_MAX_MS);
		relay_enter_state(retry_class == OUTBOX_ERROR_CLUSTER ?
						  OUTBOX_STATE_MISCONFIGURED :
						  (outbox_producer_brokers_down(relay.producer) ?
						   OUTBOX_STATE_BROKER_UNREACHABLE : OUTBOX_STATE_BACKING_OFF),
						  WARNING,
						  psprintf("%d event(s) will be produced again: %s",
								   retry, retry_error));
	}
}

/*
 * note_answers: acknowledgements of the current chunk or the one read
 * after it came in since the last look: the cluster answers for what was
 * handed over up to the latest of their hand-overs (relay.answered_for).
 * Also notes each chunk's first answer (evidence_at).
 */
static void
note_answers(TimestampTz now)
{
	OutboxChunk *chunks[2] = {relay.chunk, relay.ahead};
	int			c;

	for (c = 0; c < 2; c++)
	{
		if (chunks[c]->acked == chunks[c]->acked_seen)
			continue;
		chunks[c]->acked_seen = chunks[c]->acked;
		if (chunks[c]->evidence_at == 0)
			chunks[c]->evidence_at = now;
		if (relay.answered_for < chunks[c]->acked_sent_at)
			relay.answered_for = chunks[c]->acked_sent_at;
	}
}

/*
 * check_stalls: watch the events of the current chunk and the one read
 * after it in flight, each on its own timer.  An event unacknowledged for
 * outbox_kafka.stall_timeout after it was handed over, and for
 * stall_timeout after the relay saw the cluster answer for something
 * handed over no earlier (another event of its produce or a later one
 * acknowledged, or a probe sent later succeeding), has its partition held
 * aside so that everything else flows.  Acknowledgements of events sent
 * before it are no evidence: a cluster slower than stall_timeout answers
 * those while later ones are on their way; and events handed over after
 * it do not restart its timer.  While nothing shows the cluster answering,
 * it is down or slow (or just back from an outage, with acknowledgements
 * on their way): say so, and wait (cluster_silent); holding partitions
 * then would only send events on a detour.  While it answers, the events
 * just wait for their partitions to be held: that is neither an outage nor
 * a slow cluster, and nothing is said.  Returns how long to wait before
 * looking again.
 */
static long
check_stalls(void)
{
	OutboxChunk *chunks[2] = {relay.chunk, relay.ahead};
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = DT_NOEND;	/* when to look again */
	int			unanswered = 0;
	TimestampTz oldest = 0;		/* the oldest of those unanswered */
	int			c;
	int			i;

	note_answers(now);
	for (c = 0; c < 2; c++)
	{
		OutboxChunk *chunk = chunks[c];
		long		probe_ms;

		if (!own_in_flight(chunk))
			continue;
		probe_ms = probe_leaders(chunk, now);
		if (probe_ms != LONG_MAX)
			next = Min(next, TimestampTzPlusMilliseconds(now, probe_ms));
		for (i = chunk->recorded; i < chunk->nevents; i++)
		{
			OutboxEvent *event = &chunk->events[i];
			TimestampTz due;

			if (event->delivery != OUTBOX_DELIVERY_IN_FLIGHT || event->held)
				continue;
			if (event->answered_at == 0 && relay.answered_for >= event->sent_at)
				event->answered_at = now;
			due = TimestampTzPlusMilliseconds(event->sent_at, outbox_stall_timeout_ms);
			if (now < due)
			{
				next = Min(next, due);
				continue;
			}
			if (event->answered_at == 0)
			{
				if (unanswered++ == 0 || event->sent_at < oldest)
					oldest = event->sent_at;
				continue;
			}
			due = TimestampTzPlusMilliseconds(event->answered_at, outbox_stall_timeout_ms);
			if (now < due)
			{
				next = Min(next, due);
				continue;
			}
			/* once per topic, or per partition that stalls with a leader */
			if (!held_partition(event->topic, event->partition))
				(void) hold_leaderless(event->topic, NULL);
			hold_in_chunks(held_hold_stalled(event->topic, event->partition));
			next = now;
		}
	}
	if (unanswered > 0)
	{
		TimestampTz again = cluster_silent(now, unanswered, oldest);

		next = Min(next, again);
	}
	if (next == DT_NOEND)
		return outbox_stall_timeout_ms;
	return Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next), 0);
}

/*
 * cluster_silent: unanswered events have been in flight for stall_timeout
 * (the oldest handed over at oldest) and the cluster has not been seen
 * answering since.  Ask it (at most every stall_timeout): if it answers,
 * their timers run from now; if not, it is down or slow, which
 * outbox.status says.  Returns when to look again.
 */
static TimestampTz
cluster_silent(TimestampTz now, int unanswered, TimestampTz oldest)
{
	char		errbuf[256];
	int			err;

	if (TimestampDifferenceExceeds(relay.stall_probed_at, now, outbox_stall_timeout_ms))
	{
		relay.stall_probed_at = now;
		if (outbox_producer_cluster_answers(relay.producer, STALL_PROBE_MS))
		{
			relay.answered_for = now;
			return now;
		}
	}
	err = outbox_producer_last_error(relay.producer, errbuf, sizeof(errbuf));
	relay_enter_state(err != 0 &&
					  outbox_classify_error(err) == OUTBOX_ERROR_CLUSTER ?
					  OUTBOX_STATE_MISCONFIGURED : OUTBOX_STATE_BROKER_UNREACHABLE,
					  WARNING,
					  psprintf("%d event(s) unacknowledged for %ld ms; the Kafka cluster does not answer, or answers slowly%s%s",
							   unanswered,
							   (long) TimestampDifferenceMilliseconds(oldest, now),
							   err != 0 ? ": " : "", err != 0 ? errbuf : ""));
	relay.slow = true;
	return TimestampTzPlusMilliseconds(now, Min(outbox_stall_timeout_ms, 1000));
}

/*
 * probe_leaders: events of chunk wait while the cluster acknowledged
 * others of it LEADER_PROBE_AFTER_MS ago: ask the cluster (once per
 * produce of the chunk, and at most every LEADER_PROBE_EVERY_MS) whether
 * their partitions have a leader, and hold those that have none at once,
 * instead of after stall_timeout.  Returns 0 if it held any (the chunk
 * may be done now), else how long until a probe is due (LONG_MAX: none
 * will be for this chunk).
 */
static long
probe_leaders(OutboxChunk *chunk, TimestampTz now)
{
	TimestampTz due;
	const char *probed[LEADER_PROBE_TOPICS];
	int			nprobed = 0;
	int			held = 0;
	int			i;

	if (chunk->evidence_at == 0 || leaders_probed_at >= chunk->produced_at)
		return LONG_MAX;
	due = Max(TimestampTzPlusMilliseconds(chunk->evidence_at, LEADER_PROBE_AFTER_MS),
			  TimestampTzPlusMilliseconds(leaders_probed_at, LEADER_PROBE_EVERY_MS));
	if (now < due)
		return Max(TimestampDifferenceMilliseconds(now, due), 1);

	leaders_probed_at = now;
	for (i = chunk->recorded; i < chunk->nevents && nprobed < LEADER_PROBE_TOPICS; i++)
	{
		OutboxEvent *event = &chunk->events[i];
		int			j;

		if (event->delivery != OUTBOX_DELIVERY_IN_FLIGHT || event->held ||
			held_partition(event->topic, event->partition))
			continue;
		for (j = 0; j < nprobed && strcmp(probed[j], event->topic) != 0; j++)
			;
		if (j < nprobed)
			continue;
		probed[nprobed++] = event->topic;
		held += hold_leaderless(event->topic, "the partition has no leader");
	}
	return held > 0 ? 0 : LONG_MAX;
}

/*
 * hold_leaderless: events of topic wait: hold every partition of it that
 * has no leader now, at once (a broker that went away leads several), and
 * its events in the chunks in flight with it.  reason says why (NULL:
 * they stalled for stall_timeout).  A topic held as a whole is left as it
 * is.  Returns how many partitions it held.
 */
static int
hold_leaderless(const char *topic, const char *reason)
{
	int32		partitions[LEADERLESS_MAX];
	int			n;
	int			held = 0;
	int			i;

	if (held_partition(topic, -1))
		return 0;
	n = outbox_producer_leaderless(relay.producer, topic, partitions,
								   LEADERLESS_MAX);
	for (i = 0; i < n; i++)
	{
		if (held_partition(topic, partitions[i]))
			continue;
		hold_in_chunks(reason == NULL ?
					   held_hold_stalled(topic, partitions[i]) :
					   held_hold(topic, partitions[i], reason,
								 outbox_error_class_name(OUTBOX_ERROR_TOPIC_UNAVAILABLE),
								 false));
		held++;
	}
	return held;
}

/*
 * note_chunk_done: the chunk is done: if the cluster took longer than
 * stall_timeout to answer it (its first acknowledgement, or all of them
 * when the chunk waited on nothing else) the cluster is slow, which
 * outbox.status says until a chunk goes through promptly again.  A chunk
 * that waited only for a partition to be held aside, while the cluster
 * answered promptly, is not a slow cluster.
 */
static void
note_chunk_done(OutboxChunk *chunk)
{
	long		took;

	if (chunk->produced_at == 0)
		return;
	/* from the first produce: one read ahead gets more events later */
	took = TimestampDifferenceMilliseconds(chunk->first_produced_at,
										   chunk->evidence_at != 0 ?
										   chunk->evidence_at : GetCurrentTimestamp());
	chunk->produced_at = 0;		/* noted once, however long it waits */
	if (took > outbox_stall_timeout_ms)
	{
		relay.slow = true;
		relay_enter_state(OUTBOX_STATE_PUBLISHING, WARNING,
						  psprintf("the cluster is slow: it took %ld ms to acknowledge the last %d event(s) (\"outbox_kafka.stall_timeout\" is %d ms)",
								   took, chunk->nevents, outbox_stall_timeout_ms));
	}
	else if (relay.slow)
	{
		relay.slow = false;
		relay_enter_state(OUTBOX_STATE_PUBLISHING, DEBUG1, NULL);
		outbox_slot_clear_error(relay.slot);
	}
}

/*
 * produce_next: while the current chunk is being delivered, read the chunk
 * after it and produce it: the rest of the open batch at once, or, once
 * the batch is read to its end, the next batch on a new tick, when
 * commits were counted since the last one and no sooner than linger.ms
 * after the last produce (gather_until).  Only while every event of the
 * current chunk is handed over and nothing is to be produced again (no
 * back-off, no failure unsettled): a partition's events reach librdkafka
 * in id order, and failures are produced again only once nothing is in
 * flight (publish_chunks).  Events of a partition with events of the current
 * chunk still to be acknowledged wait for them (relay_produce_after), and
 * are produced here once those are; so are the current chunk's events
 * that waited so while it was the chunk read ahead.
 * Returns how long until it is worth trying again (any wake-up cuts it
 * short; a commit wakes the worker while the relay listens).
 */
static long
produce_next(void)
{
	OutboxChunk *chunk = relay.chunk;
	OutboxChunk *ahead = relay.ahead;

	if (chunk->nevents == 0 || relay.backoff_ms != 0 || relay.producer == NULL ||
		relay.rebuild_reason != NULL || failure_unsettled())
		return outbox_stall_timeout_ms;
	if (!handed_over(chunk))
	{
		/* held back while the chunk before it was delivered, say */
		if (!produce_durable(chunk, NULL))
			return relay.rebuild_reason != NULL ? 0 : STANDBY_POLL_MS;
		if (!handed_over(chunk))
			return outbox_stall_timeout_ms;
	}
	if (ahead->nevents == 0)
	{
		int64		last_id = chunk->events[chunk->nevents - 1].id;

		if (outbox_batch_takes_new_tick(last_id))
		{
			int64		remaining_us = relay.fetch_not_before - GetCurrentTimestamp();

			if (remaining_us > 0)
				return (remaining_us + 999) / 1000;
			if (!relay.commits_seen && !relay_new_commits())
				return outbox_stall_timeout_ms;
			relay_look_for_commits();
		}
		relay_begin_step("outbox_kafka: read ahead");
		outbox_storage_fetch_chunk(ahead, outbox_batch_size,
								   (int64) outbox_max_batch_bytes_kb * 1024,
								   last_id);
		ahead->durable_lsn = commits_to_flush();
		relay_end_step();
		if (ahead->nevents == 0)
			return outbox_stall_timeout_ms;
	}
	else if (handed_over(ahead))
		return outbox_stall_timeout_ms;
	if (!produce_durable(ahead, chunk))
		return relay.rebuild_reason != NULL ? 0 : STANDBY_POLL_MS;
	return outbox_stall_timeout_ms;
}

/*
 * in_flight_wait: events of the chunks are in flight: produce the next
 * chunk if it is time (produce_next) and watch for stalls
 * (check_stalls).  Returns how long to wait.
 */
static long
in_flight_wait(void)
{
	long		wait = produce_next();
	long		stall_wait = check_stalls();

	return Min(wait, stall_wait);
}

/*
 * produce_durable: produce what is to be produced of chunk once its
 * commits are durable (events of held topics and partitions go to their
 * queues instead), holding back those of partitions with events of the
 * chunk before it still to be acknowledged (relay_produce_after).
 * Returns false when nothing could be produced: the commits are not
 * confirmed yet, or the producer turned out fatal (a rebuild is requested).
 */
static bool
produce_durable(OutboxChunk *chunk, OutboxChunk *before)
{
	TimestampTz produced_at = chunk->produced_at;

	if (!chunk_durable(chunk))
		return false;
	if (outbox_error_is_fatal(relay_produce_after(chunk, held_partition, before)))
	{
		relay_request_rebuild("the producer refused a message: it is in a fatal state");
		return false;
	}
	if (chunk->produced_at == produced_at)
		return true;			/* nothing handed over */
	/* the next chunk of a new tick comes no sooner than linger.ms later */
	gather_until(chunk->produced_at);
	/* a full chunk is batched by its size */
	if (chunk->nevents < outbox_batch_size)
		outbox_producer_push(relay.producer);
	return true;
}

/*
 * gather_until: a chunk was just produced or delivered (at done_at): the
 * next fetch on a new tick waits until linger.ms after done_at, so that
 * commits arriving meanwhile make one chunk.  The relay lingers here
 * rather than in librdkafka's queue: a pushed chunk leaves at once, and
 * the events committed while it is delivered wait in the table, not behind
 * it.  Chunks follow each other as often as with librdkafka's linger, so
 * the CPU per event stays the same, minus the linger in every event's
 * latency.
 */
static void
gather_until(TimestampTz done_at)
{
	if (relay.producer != NULL)
		relay.fetch_not_before = done_at +
			(int64) (outbox_producer_linger_ms(relay.producer) * 1000.0);
}

/*
 * relay_gathering: is the next fetch held back (gather_until)?  Commits
 * need not wake the worker then.
 */
bool
relay_gathering(void)
{
	return relay.fetch_not_before > GetCurrentTimestamp();
}

/*
 * publish_chunks: the current chunk is not done: settle failures, wait
 * while events are in flight (producing the next chunk meanwhile), and
 * produce what waits once nothing is in flight: the current chunk's
 * events first, then, once it is handed over, the next chunk's.  Returns
 * how long the worker may sleep.
 */
static long
publish_chunks(void)
{
	OutboxChunk *chunk = relay.chunk;

	settle_failures();
	if (pipeline_in_flight())
		return in_flight_wait();
	if (chunk_done(chunk))
		return 0;				/* recorded in the next pass */
	if (relay.retry_at != 0 && GetCurrentTimestamp() < relay.retry_at)
	{
		/* everything reported; keep what succeeded meanwhile */
		relay_record_progress(false);
		relay_save_progress();
		return Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
												   relay.retry_at), 1);
	}
	if (!produce_durable(chunk, NULL))
		return relay.rebuild_reason != NULL ? 0 : STANDBY_POLL_MS;
	if (relay.ahead->nevents > 0 && handed_over(chunk) &&
		!produce_durable(relay.ahead, chunk))
		return relay.rebuild_reason != NULL ? 0 : STANDBY_POLL_MS;
	relay_save_progress();
	if (pipeline_in_flight())
		return in_flight_wait();
	return after_produce(chunk);
}

/*
 * relay_publish: one pass of publishing the open batch.  Returns how long
 * the worker may sleep (any wake-up cuts it short): 0 to go on at once.
 */
long
relay_publish(void)
{
	OutboxChunk *chunk = relay.chunk;
	int64		remaining_us;

	if (chunk->nevents > 0 && !chunk_done(chunk))
		return publish_chunks();

	/* the chunk is done (or empty): record it; the next one becomes current */
	if (chunk->nevents > 0)
	{
		if (relay.state != OUTBOX_STATE_PUBLISHING)
			relay_enter_state(OUTBOX_STATE_PUBLISHING, DEBUG1, NULL);
		if (chunk->produced_at != 0 && relay.ahead->nevents == 0)
			gather_until(GetCurrentTimestamp());
		note_chunk_done(chunk);
	}
	/* a next chunk already produced keeps the back-off of its failures */
	if (relay.ahead->produced_at == 0)
	{
		relay.backoff_ms = 0;
		relay.retry_at = 0;
	}
	remaining_us = relay.fetch_not_before - GetCurrentTimestamp();
	if (relay.ahead->nevents == 0 && remaining_us > 0)
	{
		/* record what is done; fetch once the gathering is over */
		relay_record_progress(false);
		/* the wait counts whole milliseconds: round up, on the latch */
		return (remaining_us + 999) / 1000;
	}
	relay_record_progress(true);
	chunk = relay.chunk;
	if (chunk->nevents == 0)
	{
		long		flush_due = relay_save_progress_at_most_every(false);

		/* never "idle" while events of held topics wait */
		relay_enter_state(relay.held != NIL ? OUTBOX_STATE_HOLDING :
						  OUTBOX_STATE_IDLE, DEBUG1, NULL);
		/* a slow cluster stays reported while idle: nothing proved it fast */
		return flush_due > 0 ? Min(flush_due, outbox_poll_interval_ms) :
			outbox_poll_interval_ms;
	}
	if (relay.state != OUTBOX_STATE_PUBLISHING)
		relay_enter_state(OUTBOX_STATE_PUBLISHING, DEBUG1, NULL);
	if (chunk_done(chunk))
	{
		/* delivered while read ahead: record it now, go on at once */
		relay_record_progress(false);
		return 0;
	}
	return publish_chunks();
}
