/*-------------------------------------------------------------------------
 *
 * publish.c
 *	  Publishing the open batch, chunk by chunk: record progress and fetch,
 *	  make sure the chunk's commits are durable, produce, settle failures,
 *	  hold aside topics that stall or are refused.
 *
 * A chunk is done once every event is acknowledged, dead-lettered or held
 * (moved to its topic's queue in outbox.held_event, see held_lane.c); then
 * the batch cursor moves past it, in memory (relay_batch.c saves it to
 * outbox.relay_state at most every outbox_kafka.progress_save_interval),
 * and the next chunk is fetched.  Events that failed for a reason that is nobody's fault are
 * produced again only once nothing of the chunk is in flight, so a later
 * event of a key is never handed over before an earlier one that failed;
 * librdkafka's idempotence with enable.gapless.guarantee keeps the broker
 * from writing a later message of a partition after an earlier one failed.
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
static long after_produce(OutboxChunk *chunk);
static bool chunk_done(OutboxChunk *chunk);
static void settle_recorded(OutboxChunk *chunk, int from, int upto);
static void next_chunk(OutboxChunk *chunk);
static bool chunk_durable(OutboxChunk *chunk);
static void settle_failures(OutboxChunk *chunk);
static void hold_in_chunk(OutboxChunk *chunk, HeldTopic *ht);
static bool later_of_key_acked(OutboxChunk *chunk, int i);
static long check_stall(OutboxChunk *chunk);
static long probe_leaders(OutboxChunk *chunk, TimestampTz now);
static int	hold_leaderless(OutboxChunk *chunk, const char *topic,
							const char *reason);
static void note_chunk_done(OutboxChunk *chunk);
static void read_ahead(void);
static bool produce_durable(OutboxChunk *chunk);
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
	if (chunk->batch_completed && !relay.commits_seen && !relay_new_commits())
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
	if (outbox_batch_takes_new_tick())
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
 * hold_in_chunk: ht, a topic or a partition of one, was just held: every
 * event of it in chunk that is not acknowledged or dead-lettered goes to
 * its queue (those in flight stay in flight; held_lane.c settles their
 * reports).  Events whose partition is not chosen yet are checked when
 * they are produced (relay_produce).
 */
static void
hold_in_chunk(OutboxChunk *chunk, HeldTopic *ht)
{
	int			i;

	for (i = chunk->recorded; i < chunk->nevents; i++)
	{
		OutboxEvent *event = &chunk->events[i];

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

/*
 * later_of_key_acked: has an event of chunk after events[i], of the same
 * topic and key, been acknowledged?  Then events[i] may not be produced
 * again (G3).  Keyless events have no order to keep.
 */
static bool
later_of_key_acked(OutboxChunk *chunk, int i)
{
	OutboxEvent *event = &chunk->events[i];
	int			j;

	if (event->key == NULL)
		return false;
	for (j = i + 1; j < chunk->nevents; j++)
	{
		OutboxEvent *later = &chunk->events[j];

		if (later->delivery == OUTBOX_DELIVERY_ACKED && later->key != NULL &&
			later->key_len == event->key_len &&
			memcmp(later->key, event->key, event->key_len) == 0 &&
			strcmp(later->topic, event->topic) == 0)
			return true;
	}
	return false;
}

/*
 * settle_failures: act on the verdict (outbox_event_verdict) about every
 * failed event of the chunk: dead-letter it, hold its topic or partition
 * aside with the chunk's other events of it (held_hold_failed), or
 * produce it again later, with back-off (alone, for an error Kafka gives a
 * whole batch: not once a later event of its key went through, which
 * dead-letters it as before, and only once every report of the chunk is
 * in, so that such a later event is known).
 */
static void
settle_failures(OutboxChunk *chunk)
{
	int			dead = 0;
	int64		first_dead = 0;
	const char *dead_error = NULL;
	int			retry = 0;
	const char *retry_error = NULL;
	OutboxErrorClass retry_class = OUTBOX_ERROR_TRANSIENT;
	OutboxErrorClass cls;
	int			i;

	for (i = chunk->recorded; i < chunk->nevents; i++)
	{
		OutboxEvent *event = &chunk->events[i];
		OutboxVerdict verdict;

		if (event->delivery != OUTBOX_DELIVERY_FAILED || event->held)
			continue;
		verdict = outbox_event_verdict(event);
		if (verdict == OUTBOX_VERDICT_RETRY_ALONE)
		{
			/* decided once every report of the chunk is in */
			if (own_in_flight(chunk))
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
				hold_in_chunk(chunk, held_hold_failed(event, verdict));
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

	if (relay.slot != NULL && dead + retry > 0)
	{
		pg_atomic_fetch_add_u64(&relay.slot->events_failed, dead + retry);
		pg_atomic_fetch_add_u64(&relay.slot->events_retried, retry);
	}
	if (dead > 0)
	{
		/* one line per chunk, however many events: no log flood */
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
 * check_stall: events of the chunk have been in flight for longer than
 * outbox_kafka.stall_timeout.  Once the cluster has been seen answering
 * while they wait (other events of the chunk acknowledged, or a metadata
 * request succeeding) and they are still unacknowledged stall_timeout
 * later, their partitions are held aside so that everything else flows.
 * While nothing shows the cluster answering, it is down or slow (or just
 * back from an outage, with acknowledgements on their way): say so, and
 * wait; holding partitions then would only send events on a detour.  While
 * it answers, the events just wait for their partitions to be held: that
 * is neither an outage nor a slow cluster, and nothing is said.  Returns
 * how long to wait before looking again.
 */
static long
check_stall(OutboxChunk *chunk)
{
	TimestampTz now = GetCurrentTimestamp();
	long		stall_ms = chunk_ms_until_stalled(chunk);
	char		errbuf[256];
	int			err;
	int			i;

	if (chunk->acked > 0 && chunk->evidence_at == 0)
		chunk->evidence_at = now;
	if (stall_ms > 0)
	{
		long		probe_ms = probe_leaders(chunk, now);

		return Min(stall_ms, probe_ms);
	}

	if (chunk->evidence_at == 0 &&
		TimestampDifferenceExceeds(relay.stall_probed_at, now, outbox_stall_timeout_ms))
	{
		relay.stall_probed_at = now;
		if (outbox_producer_cluster_answers(relay.producer, STALL_PROBE_MS))
			chunk->evidence_at = GetCurrentTimestamp();
	}
	if (chunk->evidence_at != 0 &&
		!TimestampDifferenceExceeds(chunk->evidence_at, now, outbox_stall_timeout_ms))
	{
		/*
		 * The cluster answers: the events wait for their partitions, which
		 * are held once stall_timeout has passed since.  Not an outage, and
		 * not worth a word yet.
		 */
		return Max(TimestampDifferenceMilliseconds(now,
												   TimestampTzPlusMilliseconds(chunk->evidence_at,
																			   outbox_stall_timeout_ms)), 1);
	}
	if (chunk->evidence_at == 0)
	{
		err = outbox_producer_last_error(relay.producer, errbuf, sizeof(errbuf));
		relay_enter_state(err != 0 &&
						  outbox_classify_error(err) == OUTBOX_ERROR_CLUSTER ?
						  OUTBOX_STATE_MISCONFIGURED : OUTBOX_STATE_BROKER_UNREACHABLE,
						  WARNING,
						  psprintf("%d event(s) unacknowledged for %ld ms; the Kafka cluster does not answer, or answers slowly%s%s",
								   chunk->in_flight,
								   (long) TimestampDifferenceMilliseconds(chunk->produced_at, now),
								   err != 0 ? ": " : "", err != 0 ? errbuf : ""));
		relay.slow = true;
		return Min(outbox_stall_timeout_ms, 1000);
	}

	for (i = chunk->recorded; i < chunk->nevents; i++)
	{
		OutboxEvent *event = &chunk->events[i];

		if (event->delivery != OUTBOX_DELIVERY_IN_FLIGHT || event->held)
			continue;
		/* once per topic, or per partition that stalls with a leader */
		if (!held_partition(event->topic, event->partition))
			(void) hold_leaderless(chunk, event->topic, NULL);
		hold_in_chunk(chunk, held_hold_stalled(event->topic, event->partition));
	}
	return 0;
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
		held += hold_leaderless(chunk, event->topic, "the partition has no leader");
	}
	return held > 0 ? 0 : LONG_MAX;
}

/*
 * hold_leaderless: events of topic wait: hold every partition of it that
 * has no leader now, at once (a broker that went away leads several), and
 * its events in chunk with it.  reason says why (NULL: they stalled for
 * stall_timeout).  A topic held as a whole is left as it is.  Returns
 * how many partitions it held.
 */
static int
hold_leaderless(OutboxChunk *chunk, const char *topic, const char *reason)
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
		hold_in_chunk(chunk, reason == NULL ?
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
	took = TimestampDifferenceMilliseconds(chunk->produced_at,
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
 * read_ahead: while the chunk is being delivered, read the next events of
 * the same batch (nothing is recorded), so the next round can produce at
 * once.  Only after a full chunk, and not while retrying.
 */
static void
read_ahead(void)
{
	OutboxChunk *chunk = relay.chunk;

	if (relay.ahead->nevents > 0 || chunk->nevents < outbox_batch_size ||
		relay.backoff_ms != 0)
		return;

	relay_begin_step("outbox_kafka: read ahead");
	outbox_storage_fetch_chunk(relay.ahead, outbox_batch_size,
							   (int64) outbox_max_batch_bytes_kb * 1024,
							   chunk->events[chunk->nevents - 1].id);
	relay.ahead->durable_lsn = commits_to_flush();
	relay_end_step();
}

/*
 * produce_durable: produce what is to be produced of chunk once its
 * commits are durable (events of held topics and partitions go to their
 * queues instead).
 * Returns false when nothing could be produced: the commits are not
 * confirmed yet, or the producer turned out fatal (a rebuild is requested).
 */
static bool
produce_durable(OutboxChunk *chunk)
{
	if (!chunk_durable(chunk))
		return false;
	if (outbox_error_is_fatal(relay_produce(chunk, held_partition)))
	{
		relay_request_rebuild("the producer refused a message: it is in a fatal state");
		return false;
	}
	/* a full chunk is batched by its size, and read_ahead() comes first */
	if (chunk->in_flight > 0 && chunk->nevents < outbox_batch_size)
		outbox_producer_push(relay.producer);
	return true;
}

/*
 * gather_until: a chunk was just delivered: the next fetch waits until
 * linger.ms after done_at (unless a full chunk is read ahead), so that
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
 * relay_publish: one pass of publishing the open batch.  Returns how long
 * the worker may sleep (any wake-up cuts it short): 0 to go on at once.
 */
long
relay_publish(void)
{
	OutboxChunk *chunk = relay.chunk;
	int64		remaining_us;

	if (chunk->nevents > 0 && !chunk_done(chunk))
	{
		settle_failures(chunk);
		if (own_in_flight(chunk))
			return check_stall(chunk);
		if (!chunk_done(chunk))
		{
			/* everything reported; some events are to be produced again */
			if (relay.retry_at != 0 && GetCurrentTimestamp() < relay.retry_at)
			{
				/* keep what succeeded meanwhile */
				relay_record_progress(false);
				relay_save_progress();
				return Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
														   relay.retry_at), 1);
			}
			if (!produce_durable(chunk))
				return relay.rebuild_reason != NULL ? 0 : STANDBY_POLL_MS;
			return after_produce(chunk);
		}
	}

	/* the chunk is done (or empty): record it and fetch the next one */
	if (chunk->nevents > 0)
	{
		if (relay.state != OUTBOX_STATE_PUBLISHING)
			relay_enter_state(OUTBOX_STATE_PUBLISHING, DEBUG1, NULL);
		if (chunk->produced_at != 0)
			gather_until(GetCurrentTimestamp());
		note_chunk_done(chunk);
	}
	relay.backoff_ms = 0;
	relay.retry_at = 0;
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

	if (!produce_durable(chunk))
		return relay.rebuild_reason != NULL ? 0 : STANDBY_POLL_MS;
	relay_save_progress();
	read_ahead();
	return after_produce(chunk);
}
