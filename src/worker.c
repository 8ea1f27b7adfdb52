/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database relay worker: reads committed events batch by batch
 *	  and publishes them to Kafka, at least once, in commit order per key.
 *
 * Loop: in one short transaction, record what the previous chunk achieved
 * and fetch the next chunk; commit; produce the chunk asynchronously; serve
 * delivery reports until every event is acknowledged or failed; classify
 * failures (dead letter, retry with back-off, recreate the producer);
 * repeat.  When there is nothing to do, sleep on the latch: a committing
 * enqueuer sets it, outbox_kafka.poll_interval is only the fallback.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogdefs.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/pmsignal.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "relay.h"

/* Back-off after failures: from MIN to MAX, doubling. */
#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		30000
/* How often a worker stuck in a bad state says so again in the log. */
#define REMINDER_INTERVAL_MS 60000
/* How often storage maintenance (rotation, truncation) runs. */
#define MAINTENANCE_INTERVAL_MS 1000
/* Delivery-report wait granularity (poll returns early on any report). */
#define DELIVERY_POLL_MS	100

typedef struct RelayWorker
{
	Oid			dboid;
	char	   *dbname;
	OutboxWorkerSlot *slot;
	OutboxProducer *producer;
	char	   *producer_settings;	/* settings the producer was built from */
	bool		producer_stale;		/* settings changed: rebuild when idle */
	OutboxChunk chunks[2];
	OutboxChunk *chunk;			/* being published */
	OutboxChunk *ahead;			/* read ahead while chunk is delivered */
	int			backoff_ms;
	TimestampTz retry_at;		/* no publishing before this */
	TimestampTz next_maintenance;
	OutboxWorkerState state;
	TimestampTz state_logged_at;
	bool		extension_ready;	/* extension seen installed */
	bool		stopping;		/* in shutdown_relay() */
	MemoryContext loop_cxt;		/* reset at every pass of the loop */
	XLogRecPtr	unflushed_progress; /* end of a progress commit not yet
									 * known to be on disk */
} RelayWorker;

static RelayWorker relay;

static void claim_slot(Oid dboid);
static void release_slot(int code, Datum arg);
static void guard_database(void);
static char *current_producer_settings(void);
static void enter_state(OutboxWorkerState state, int elevel, const char *detail);
static void process_reload(void);
static bool ensure_producer(void);
static long relay_step(void);
static long publish_chunk(void);
static void read_ahead(void);
static void begin_step(const char *activity);
static void end_step(void);
static void record_progress_and_fetch(bool fetch);
static void produce_pending(void);
static void flush_progress(void);
static void await_deliveries(int timeout_ms);
static int	settle_failures(void);
static void dead_letter(OutboxEvent *event);
static void recreate_producer(const char *reason);
static void run_maintenance(void);
static void shutdown_relay(void);
static void recover_from_error(void);
static long ms_until(TimestampTz t);

/*
 * ms_until: milliseconds from now until t, at least 0.
 */
static long
ms_until(TimestampTz t)
{
	long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), t);

	return Max(ms, 0);
}

/*
 * claim_slot: take the shared-memory slot for dboid.  If another live
 * worker already serves the database, exit quietly: exactly one relay per
 * database.
 */
static void
claim_slot(Oid dboid)
{
	OutboxWorkerSlot *slot = NULL;
	int			i;

	LWLockAcquire(OutboxShmem->lock, LW_EXCLUSIVE);
	for (i = 0; i < OutboxShmem->nslots; i++)
	{
		OutboxWorkerSlot *s = &OutboxShmem->slots[i];

		if (s->dboid == dboid)
		{
			if (s->pid != 0 && s->pid != MyProcPid && kill(s->pid, 0) == 0)
			{
				pid_t		other = s->pid;

				LWLockRelease(OutboxShmem->lock);
				ereport(LOG,
						(errmsg("outbox_kafka worker exits: database %u is already served by process %d",
								dboid, (int) other)));
				proc_exit(0);
			}
			slot = s;
			break;
		}
		if (slot == NULL && s->dboid == InvalidOid)
			slot = s;
	}
	if (slot == NULL)
	{
		LWLockRelease(OutboxShmem->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no free outbox_kafka worker slot"),
				 errhint("Increase max_worker_processes.")));
	}

	SpinLockAcquire(&slot->mutex);
	slot->dboid = dboid;
	slot->pid = MyProcPid;
	slot->latch = &MyProc->procLatch;
	slot->state = OUTBOX_STATE_STARTING;
	slot->started_at = GetCurrentTimestamp();
	slot->last_error[0] = '\0';
	slot->last_error_at = 0;
	slot->last_publish_at = 0;
	SpinLockRelease(&slot->mutex);
	pg_atomic_write_u32(&slot->current_table, 0);
	pg_atomic_write_u32(&slot->inject_fatal, 0);
	pg_atomic_write_u64(&slot->events_published, 0);
	pg_atomic_write_u64(&slot->events_retried, 0);
	pg_atomic_write_u64(&slot->events_dead_lettered, 0);
	pg_atomic_write_u64(&slot->events_failed, 0);
	LWLockRelease(OutboxShmem->lock);

	relay.slot = slot;
	relay.state = OUTBOX_STATE_STARTING;
}

/*
 * release_slot: before_shmem_exit callback; frees our slot so the status
 * view stops showing a worker that is gone.
 */
static void
release_slot(int code, Datum arg)
{
	OutboxWorkerSlot *slot = relay.slot;

	if (slot == NULL)
		return;
	LWLockAcquire(OutboxShmem->lock, LW_EXCLUSIVE);
	if (slot->pid == MyProcPid)
	{
		SpinLockAcquire(&slot->mutex);
		slot->latch = NULL;
		slot->pid = 0;
		slot->state = OUTBOX_STATE_STOPPED;
		slot->dboid = InvalidOid;
		SpinLockRelease(&slot->mutex);
	}
	LWLockRelease(OutboxShmem->lock);
	relay.slot = NULL;
}

/*
 * guard_database: take a session advisory lock that only one relay per
 * database can hold, as a second guard besides the slot.  Needs an open
 * transaction; exits quietly when another relay holds the lock.
 */
static void
guard_database(void)
{
	LOCKTAG		tag;

	/* key: ('o','k') in the two-key advisory lock space of this database */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0x6f75, 0x746b, 2);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		ereport(LOG,
				(errmsg("outbox_kafka worker exits: another relay holds the lock of database \"%s\"",
						relay.dbname)));
		proc_exit(0);
	}
}

/*
 * current_producer_settings: the settings a producer is built from, as
 * one string, to notice changes on reload.
 */
static char *
current_producer_settings(void)
{
	return MemoryContextStrdup(TopMemoryContext,
							   psprintf("%s\n%s",
										outbox_bootstrap_servers ? outbox_bootstrap_servers : "",
										outbox_producer_properties ? outbox_producer_properties : ""));
}

/*
 * enter_state: publish state in shared memory; log detail (at elevel)
 * when the state changes, and again every REMINDER_INTERVAL_MS while a
 * bad state lasts.  detail may be NULL.
 */
static void
enter_state(OutboxWorkerState state, int elevel, const char *detail)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		changed = (state != relay.state);

	if (!changed && (detail == NULL || elevel < LOG ||
					 !TimestampDifferenceExceeds(relay.state_logged_at, now,
												 REMINDER_INTERVAL_MS)))
	{
		return;
	}

	if (changed)
		outbox_slot_set_state(relay.slot, state);
	relay.state = state;

	if (detail != NULL)
	{
		ereport(elevel,
				(errmsg("outbox_kafka worker for database \"%s\" is %s%s: %s",
						relay.dbname ? relay.dbname : "?",
						outbox_state_name(state),
						changed ? "" : " (still)",
						detail)));
		if (elevel >= WARNING)
			outbox_slot_set_error(relay.slot, detail);
		relay.state_logged_at = now;
	}
}

/*
 * process_reload: apply a pending SIGHUP.  A changed Kafka setting marks
 * the producer stale; it is rebuilt once no message is in flight.
 */
static void
process_reload(void)
{
	char	   *settings;

	if (!ConfigReloadPending)
		return;
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);

	settings = current_producer_settings();
	if (relay.producer_settings == NULL ||
		strcmp(settings, relay.producer_settings) != 0)
		relay.producer_stale = true;
	pfree(settings);
	/* a new configuration deserves a fresh try at once */
	relay.retry_at = 0;
	relay.backoff_ms = 0;
}

/*
 * ensure_producer: make sure a producer built from the current settings
 * exists.  Returns false (state misconfigured) when it cannot be built.
 */
static bool
ensure_producer(void)
{
	char		errbuf[512];
	char	   *client_id;

	if (relay.producer != NULL && relay.producer_stale &&
		relay.chunk->in_flight == 0)
	{
		ereport(LOG,
				(errmsg("outbox_kafka worker for database \"%s\" recreates its Kafka producer: settings changed",
						relay.dbname)));
		outbox_producer_destroy(relay.producer, outbox_shutdown_timeout_ms);
		relay.producer = NULL;
	}
	if (relay.producer != NULL)
		return true;

	if (outbox_bootstrap_servers == NULL || *outbox_bootstrap_servers == '\0')
	{
		enter_state(OUTBOX_STATE_MISCONFIGURED, WARNING,
					"\"outbox_kafka.bootstrap_servers\" is not set");
		return false;
	}

	if (relay.producer_settings)
		pfree(relay.producer_settings);
	relay.producer_settings = current_producer_settings();
	relay.producer_stale = false;

	client_id = psprintf("outbox_kafka-%s", relay.dbname);
	relay.producer = outbox_producer_create(client_id, errbuf, sizeof(errbuf));
	pfree(client_id);
	if (relay.producer == NULL)
	{
		enter_state(OUTBOX_STATE_MISCONFIGURED, WARNING, errbuf);
		return false;
	}
	return true;
}

/*
 * recreate_producer: the producer is unusable (fatal error): destroy it
 * (in-flight events come back failed and are produced again) and build a
 * new one on the next step.
 */
static void
recreate_producer(const char *reason)
{
	OutboxChunk *chunk = relay.chunk;
	int			i;

	ereport(WARNING,
			(errmsg("outbox_kafka worker for database \"%s\" recreates its Kafka producer after a fatal error",
					relay.dbname),
			 errdetail_internal("%s", reason)));
	outbox_slot_set_error(relay.slot, reason);
	outbox_producer_destroy(relay.producer, 0);
	relay.producer = NULL;

	/* what was purged is produced again by the new producer, uncharged */
	for (i = 0; i < chunk->nevents; i++)
	{
		OutboxEvent *event = &chunk->events[i];

		if (event->delivery == OUTBOX_DELIVERY_FAILED ||
			event->delivery == OUTBOX_DELIVERY_IN_FLIGHT)
		{
			event->delivery = OUTBOX_DELIVERY_NONE;
			event->attempts = Max(event->attempts - 1, 0);
		}
	}
	chunk->in_flight = 0;
}

/*
 * begin_step: open the transaction (with a snapshot) of one unit of the
 * relay's work, shown as activity in pg_stat_activity.
 */
static void
begin_step(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/*
 * end_step: commit the transaction opened by begin_step().
 */
static void
end_step(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* commit leaves TopMemoryContext current; keep loop garbage short-lived */
	MemoryContextSwitchTo(relay.loop_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * record_progress_and_fetch: in one transaction, record the resolved head
 * of the current chunk and (if fetch) load the next chunk.  Counters are
 * bumped only after the commit.
 */
static void
record_progress_and_fetch(bool fetch)
{
	OutboxChunk *chunk = relay.chunk;
	int			recorded;
	bool		replaced;
	uint64		published = 0;
	uint64		dead = 0;
	int			i;

	begin_step("outbox_kafka: record progress and fetch events");

	recorded = outbox_storage_finish_chunk(chunk);
	for (i = chunk->recorded; i < recorded; i++)
	{
		if (chunk->events[i].delivery == OUTBOX_DELIVERY_ACKED)
			published++;
		else
			dead++;
	}
	/* the whole chunk is done: the next one replaces it */
	replaced = fetch && recorded == chunk->nevents;
	if (replaced)
	{
		if (relay.ahead->nevents > 0)
		{
			/* the chunk read ahead becomes current */
			relay.chunk = relay.ahead;
			relay.ahead = chunk;
			outbox_chunk_reset(chunk);
		}
		else
			outbox_storage_fetch_chunk(chunk, outbox_batch_size, 0);
	}

	end_step();

	if (!replaced)
		chunk->recorded = recorded;
	if (recorded > 0)
		relay.unflushed_progress = XactLastCommitEnd;
	if (relay.slot != NULL)
	{
		if (published > 0)
		{
			pg_atomic_fetch_add_u64(&relay.slot->events_published, published);
			SpinLockAcquire(&relay.slot->mutex);
			relay.slot->last_publish_at = GetCurrentTimestamp();
			SpinLockRelease(&relay.slot->mutex);
		}
		if (dead > 0)
			pg_atomic_fetch_add_u64(&relay.slot->events_dead_lettered, dead);
	}
}

/*
 * flush_progress: make the last progress commit durable.  Called right
 * after the next chunk was handed to the producer (the flush overlaps its
 * round trip) and before the worker sleeps.
 */
static void
flush_progress(void)
{
	if (relay.unflushed_progress == InvalidXLogRecPtr)
		return;
	XLogFlush(relay.unflushed_progress);
	relay.unflushed_progress = InvalidXLogRecPtr;
}

/*
 * produce_pending: hand every event of the chunk that is not in flight or
 * resolved to the producer, in id order.  Events refused at once are
 * marked FAILED and settled like failed deliveries.
 */
static void
produce_pending(void)
{
	OutboxChunk *chunk = relay.chunk;
	int			i;

	for (i = 0; i < chunk->nevents; i++)
	{
		OutboxEvent *event = &chunk->events[i];
		int			err;

		if (event->delivery != OUTBOX_DELIVERY_NONE)
			continue;
		for (;;)
		{
			err = outbox_producer_send(relay.producer, chunk, event);
			/* local queue full: serve reports to make room, then retry */
			if (!outbox_error_is_queue_full(err))
				break;
			outbox_producer_poll(relay.producer, 10);
		}
	}
}

/*
 * await_deliveries: serve delivery reports until nothing of the chunk is
 * in flight, the producer turns fatal, shutdown is requested, or
 * timeout_ms (-1: no limit) passes.
 */
static void
await_deliveries(int timeout_ms)
{
	TimestampTz deadline = 0;
	char		reason[512];

	if (timeout_ms >= 0)
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	while (relay.chunk->in_flight > 0)
	{
		if (relay.slot != NULL &&
			pg_atomic_exchange_u32(&relay.slot->inject_fatal, 0) != 0)
			outbox_producer_inject_fatal(relay.producer);
		/*
		 * A partial chunk means no backlog: send it at once, ignoring
		 * linger.ms.  A full chunk leaves librdkafka free to batch.
		 */
		if (relay.chunk->nevents < outbox_batch_size)
			outbox_producer_flush(relay.producer, DELIVERY_POLL_MS);
		else
			outbox_producer_poll(relay.producer, DELIVERY_POLL_MS);

		if (outbox_producer_take_fatal(relay.producer, reason, sizeof(reason)))
		{
			recreate_producer(reason);
			return;
		}
		if (outbox_producer_brokers_down(relay.producer))
			enter_state(OUTBOX_STATE_BROKER_UNREACHABLE, WARNING,
						"all Kafka brokers are down; events wait");
		if (!PostmasterIsAlive())
			proc_exit(1);
		if (ShutdownRequestPending && timeout_ms < 0)
			return;
		if (deadline != 0 && GetCurrentTimestamp() >= deadline)
			return;
	}
}

/*
 * dead_letter: mark event for outbox.dead_letters and say so in the log;
 * the row is written with the next progress record.
 */
static void
dead_letter(OutboxEvent *event)
{
	event->delivery = OUTBOX_DELIVERY_DEAD;
	ereport(WARNING,
			(errmsg("outbox_kafka moves event %lld (topic \"%s\") to outbox.dead_letters: %s",
					(long long) event->id, event->topic,
					outbox_error_text(event->error))));
}

/*
 * settle_failures: decide about every FAILED event of the chunk: dead
 * letter (permanent error, or topic error beyond max_retry_time) or
 * produce again.  Returns how many events will be produced again.
 */
static int
settle_failures(void)
{
	OutboxChunk *chunk = relay.chunk;
	TimestampTz now = GetCurrentTimestamp();
	int			retry = 0;
	int			failed = 0;
	const char *last = NULL;
	OutboxErrorClass last_class = OUTBOX_ERROR_TRANSIENT;
	int			i;

	for (i = 0; i < chunk->nevents; i++)
	{
		OutboxEvent *event = &chunk->events[i];
		OutboxErrorClass cls;

		if (event->delivery != OUTBOX_DELIVERY_FAILED)
			continue;
		failed++;
		cls = outbox_classify_error(event->error);
		last = outbox_error_text(event->error);
		last_class = cls;
		switch (cls)
		{
			case OUTBOX_ERROR_PERMANENT:
				dead_letter(event);
				break;
			case OUTBOX_ERROR_TOPIC:
				if (event->first_failure == 0)
					event->first_failure = now;
				if (TimestampDifferenceExceeds(event->first_failure, now,
											   outbox_max_retry_time_s * 1000))
					dead_letter(event);
				else
				{
					event->delivery = OUTBOX_DELIVERY_NONE;
					retry++;
				}
				break;
			case OUTBOX_ERROR_TRANSIENT:
			case OUTBOX_ERROR_FATAL:
				/* cluster trouble is nobody's fault: no attempt charged */
				event->attempts = Max(event->attempts - 1, 0);
				event->delivery = OUTBOX_DELIVERY_NONE;
				retry++;
				break;
		}
	}

	if (failed > 0 && relay.slot != NULL)
	{
		pg_atomic_fetch_add_u64(&relay.slot->events_failed, failed);
		pg_atomic_fetch_add_u64(&relay.slot->events_retried, retry);
	}
	if (retry > 0)
	{
		char	   *detail = psprintf("%d event(s) will be retried: %s", retry, last);

		enter_state(last_class == OUTBOX_ERROR_TOPIC ?
					OUTBOX_STATE_BACKING_OFF :
					(outbox_producer_brokers_down(relay.producer) ?
					 OUTBOX_STATE_BROKER_UNREACHABLE : OUTBOX_STATE_BACKING_OFF),
					WARNING, detail);
		outbox_slot_set_error(relay.slot, detail);
	}
	else if (failed > 0 && last != NULL)
		outbox_slot_set_error(relay.slot, psprintf("dead-lettered: %s", last));
	return retry;
}

/*
 * read_ahead: while the chunk is being delivered, read the next events of
 * the same batch (no batch is opened and nothing is recorded), so the next
 * round can produce at once.  Only in a clean round: during retries the
 * chunk is settled first.
 */
static void
read_ahead(void)
{
	OutboxChunk *chunk = relay.chunk;

	if (relay.ahead->nevents > 0 || chunk->nevents < outbox_batch_size ||
		relay.backoff_ms != 0)
		return;

	begin_step("outbox_kafka: read ahead");
	outbox_storage_fetch_chunk(relay.ahead, outbox_batch_size,
							   chunk->events[chunk->nevents - 1].id);
	end_step();
}

/*
 * publish_chunk: one round of publishing: record progress, fetch, produce,
 * wait for the reports, settle failures.  Returns how long to wait before
 * the next round (0: go on at once).
 */
static long
publish_chunk(void)
{
	int			retry;

	record_progress_and_fetch(true);
	if (relay.chunk->nevents == 0)
	{
		flush_progress();
		enter_state(OUTBOX_STATE_IDLE, DEBUG1, NULL);
		return outbox_poll_interval_ms;
	}

	if (relay.state != OUTBOX_STATE_BROKER_UNREACHABLE &&
		relay.state != OUTBOX_STATE_BACKING_OFF)
		enter_state(OUTBOX_STATE_PUBLISHING, DEBUG1, NULL);

	produce_pending();
	flush_progress();
	read_ahead();
	await_deliveries(-1);
	if (relay.producer == NULL || ShutdownRequestPending)
		return 0;

	retry = settle_failures();
	if (retry == 0)
	{
		if (relay.state != OUTBOX_STATE_PUBLISHING)
		{
			bool		recovered = (relay.state == OUTBOX_STATE_BROKER_UNREACHABLE ||
									 relay.state == OUTBOX_STATE_BACKING_OFF);

			enter_state(OUTBOX_STATE_PUBLISHING, recovered ? LOG : DEBUG1,
						recovered ? "events flow again" : NULL);
		}
		relay.backoff_ms = 0;
		return 0;
	}

	/* keep what succeeded, back off, then produce the rest again */
	record_progress_and_fetch(false);
	flush_progress();
	relay.backoff_ms = relay.backoff_ms == 0 ? BACKOFF_MIN_MS :
		Min(relay.backoff_ms * 2, BACKOFF_MAX_MS);
	relay.retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												 relay.backoff_ms);
	return relay.backoff_ms;
}

/*
 * run_maintenance: rotation and truncation, at most every
 * MAINTENANCE_INTERVAL_MS, in a transaction of its own.
 */
static void
run_maintenance(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			current;

	if (now < relay.next_maintenance)
		return;
	relay.next_maintenance = TimestampTzPlusMilliseconds(now, MAINTENANCE_INTERVAL_MS);

	begin_step("outbox_kafka: storage maintenance");
	current = outbox_storage_maintain();
	end_step();

	/* tell enqueuers which table takes new rows, sparing them a lookup */
	if (relay.slot != NULL)
		pg_atomic_write_u32(&relay.slot->current_table, (uint32) current + 1);
}

/*
 * relay_step: one pass of the worker loop.  Returns how long to sleep on
 * the latch before the next pass (0: go on at once).
 */
static long
relay_step(void)
{
	if (RecoveryInProgress())
	{
		enter_state(OUTBOX_STATE_STANDBY, LOG,
					"the server is in recovery; publishing resumes after promotion");
		return Min(outbox_poll_interval_ms, 1000);
	}

	/* checked once, and again after any error (DROP EXTENSION, say) */
	if (!relay.extension_ready)
	{
		StartTransactionCommand();
		relay.extension_ready = outbox_storage_extension_ready();
		CommitTransactionCommand();
		MemoryContextSwitchTo(relay.loop_cxt);
	}
	if (!relay.extension_ready)
	{
		enter_state(OUTBOX_STATE_WAITING_FOR_EXTENSION, LOG,
					"extension outbox_kafka is not installed in this database; run CREATE EXTENSION outbox_kafka");
		return Min(outbox_poll_interval_ms, 1000);
	}

	if (!ensure_producer())
		return Min(outbox_poll_interval_ms * 10L, 5000L);

	if (relay.retry_at != 0 && GetCurrentTimestamp() < relay.retry_at)
		return Max(ms_until(relay.retry_at), 1);
	relay.retry_at = 0;

	run_maintenance();
	return publish_chunk();
}

/*
 * shutdown_relay: on SIGTERM: wait up to outbox_kafka.shutdown_timeout for
 * messages in flight, record what was acknowledged, drop the producer.
 */
static void
shutdown_relay(void)
{
	relay.stopping = true;
	if (relay.producer != NULL)
	{
		await_deliveries(outbox_shutdown_timeout_ms);
		if (relay.chunk->nevents > 0 && !RecoveryInProgress())
			record_progress_and_fetch(false);
		flush_progress();
		outbox_producer_destroy(relay.producer, 0);
		relay.producer = NULL;
	}
	ereport(LOG,
			(errmsg("outbox_kafka worker for database \"%s\" stopped",
					relay.dbname ? relay.dbname : "?")));
}

/*
 * recover_from_error: after an ERROR escaped a step: report it, abort the
 * transaction, forget the chunks and leave the loop ready for another try
 * after a back-off.  Nothing is lost: unrecorded events are read again.
 */
static void
recover_from_error(void)
{
	ErrorData  *edata;

	/* the callbacks of the failed step point into frames that are gone */
	error_context_stack = NULL;
	HOLD_INTERRUPTS();
	/* copy the error before the transaction's memory goes away */
	MemoryContextSwitchTo(TopMemoryContext);
	edata = CopyErrorData();
	EmitErrorReport();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(TopMemoryContext);
	FlushErrorState();
	pgstat_report_activity(STATE_IDLE, NULL);
	RESUME_INTERRUPTS();

	outbox_slot_set_error(relay.slot, edata->message ? edata->message : "unknown error");
	relay.extension_ready = false;

	/*
	 * Start over from what storage has recorded: the chunks may belong to
	 * an extension that was dropped meanwhile.  Events of the chunk that
	 * were delivered but not recorded are published again (at least once).
	 * The chunk's memory may be freed only when nothing of it is in flight.
	 */
	if (relay.producer != NULL && relay.chunk->in_flight > 0)
	{
		outbox_producer_destroy(relay.producer, 0);
		relay.producer = NULL;
	}
	outbox_chunk_reset(relay.chunk);
	outbox_chunk_reset(relay.ahead);
	FreeErrorData(edata);
	relay.backoff_ms = relay.backoff_ms == 0 ? 1000 : Min(relay.backoff_ms * 2, BACKOFF_MAX_MS);
	relay.retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), relay.backoff_ms);
}

/*
 * outbox_worker_main: entry point of a relay worker.  main_arg is the OID
 * of the database to serve.
 */
void
outbox_worker_main(Datum main_arg)
{
	sigjmp_buf	local_sigjmp_buf;

	memset(&relay, 0, sizeof(relay));
	relay.dboid = DatumGetObjectId(main_arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	claim_slot(relay.dboid);
	before_shmem_exit(release_slot, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(relay.dboid, InvalidOid, 0);
	/*
	 * Progress commits do not wait for the disk; flush_progress() flushes
	 * them while the next chunk is on its way to Kafka, and before sleeping.
	 * A crash then re-publishes no more than what was in flight (G4).
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/* the relay's statements are small: compiling them costs more than it saves */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * In a lock conflict with DDL on the outbox (DROP EXTENSION, say), be
	 * the one that finds the deadlock and gives way: the relay just retries.
	 */
	SetConfigOption("deadlock_timeout", "50ms", PGC_SUSET, PGC_S_OVERRIDE);
	/* the relay's plans do not depend on the values: plan them once */
	SetConfigOption("plan_cache_mode", "force_generic_plan", PGC_SUSET, PGC_S_OVERRIDE);

	relay.chunks[0].cxt = AllocSetContextCreate(TopMemoryContext,
												"outbox_kafka chunk",
												ALLOCSET_DEFAULT_SIZES);
	relay.chunks[1].cxt = AllocSetContextCreate(TopMemoryContext,
												"outbox_kafka chunk read ahead",
												ALLOCSET_DEFAULT_SIZES);
	relay.loop_cxt = AllocSetContextCreate(TopMemoryContext,
										   "outbox_kafka worker loop",
										   ALLOCSET_DEFAULT_SIZES);
	relay.chunk = &relay.chunks[0];
	relay.ahead = &relay.chunks[1];
	relay.producer_settings = current_producer_settings();

	StartTransactionCommand();
	relay.dbname = MemoryContextStrdup(TopMemoryContext,
									   get_database_name(relay.dboid));
	guard_database();
	CommitTransactionCommand();

	ereport(LOG,
			(errmsg("outbox_kafka worker started for database \"%s\"", relay.dbname)));

	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		recover_from_error();
		/* an error while stopping: nothing left to save, just go */
		if (relay.stopping)
			proc_exit(1);
	}
	PG_exception_stack = &local_sigjmp_buf;

	while (!ShutdownRequestPending)
	{
		long		wait_ms;

		/* error texts, details and the like of the last pass go away here */
		MemoryContextSwitchTo(relay.loop_cxt);
		MemoryContextReset(relay.loop_cxt);
		CHECK_FOR_INTERRUPTS();
		process_reload();
		wait_ms = relay_step();
		if (wait_ms > 0 && !ShutdownRequestPending)
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}

	shutdown_relay();
	proc_exit(0);
}
