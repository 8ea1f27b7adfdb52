/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database relay worker process: its slot, states, settings,
 *	  Kafka producer, main loop, shutdown and recovery from errors.
 *
 * One loop serves everything: each pass handles interrupts and reloads,
 * serves the producer (delivery reports, errors, log lines: also when idle,
 * so a fatal error or a log line never waits), then publishes (publish.c)
 * and works the queues of held topics (held_lane.c).  Between passes the
 * worker sleeps on its latch, a pipe librdkafka writes to when it has
 * something to serve, and postmaster death: a commit that enqueued, a
 * delivery report, a signal or a barrier wakes it at once, so no wait is
 * ever deaf.  outbox_kafka.poll_interval is only the idle fallback.
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

#include "librdkafka_version.h"
#include "pg_compat.h"
#include "producer_config.h"
#include "relay_worker.h"

/* Back-off after failures: from MIN to MAX, doubling. */
#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		30000
/* How often storage maintenance (rotation, truncation) runs. */
#define MAINTENANCE_INTERVAL_MS 1000
/* Longest sleep while messages are in flight without a wake-up pipe. */
#define NO_PIPE_POLL_MS		5

static void claim_slot(Oid dboid);
static void release_slot(int code, Datum arg);
static void pin_settings(void);
static char *current_producer_settings(void);
static void process_reload(void);
static bool ensure_producer(void);
static void relay_recreate_producer(const char *reason);
static void forget_rebuild_request(void);
static bool rebuild_if_requested(void);
static void serve_producer(void);
static bool check_extension(void);
static long relay_step(void);
static void run_maintenance(void);
static void wait_for_work(long timeout_ms);
static void shutdown_relay(void);
static void recover_from_error(void);

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
	pg_atomic_write_u32(&slot->listening, 1);
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
 * current_producer_settings: what a producer is built from (servers,
 * properties, the properties file's identity and the opt-out), as one
 * string in TopMemoryContext, to notice changes on reload.  It holds
 * secrets: never log it.
 */
static char *
current_producer_settings(void)
{
	char	   *signature = outbox_producer_settings_signature();
	char	   *result = MemoryContextStrdup(TopMemoryContext, signature);

	pfree(signature);
	return result;
}

/*
 * pin_settings: the relay's own session settings, whatever the database
 * or role defaults say (ALTER DATABASE ... SET default_transaction_read_only
 * = on, statement_timeout, a serializable default...).  Call once, after
 * connecting; PGC_S_OVERRIDE wins over every other source.
 */
static void
pin_settings(void)
{
	static const char *const pinned[][2] = {
		/*
		 * Progress commits do not wait for the disk; publish.c flushes them
		 * while the next chunk is on its way to Kafka, and before sleeping.
		 * A crash then re-publishes no more than what was in flight (G4).
		 */
		{"synchronous_commit", "off"},
		/* the relay's statements are small: compiling costs more than it saves */
		{"jit", "off"},

		/*
		 * In a lock conflict with DDL on the outbox (DROP EXTENSION, say), be
		 * the one that finds the deadlock and gives way: the relay retries.
		 */
		{"deadlock_timeout", "50ms"},
		/* the relay's plans do not depend on the values: plan them once */
		{"plan_cache_mode", "force_generic_plan"},

		/*
		 * Batches are read by index ranges on id and txid (relay_batch.c,
		 * event_scan.c): never by a scan of a whole event table,
		 * whatever the statistics of a table that was just truncated say.
		 */
		{"enable_seqscan", "off"},
		{"enable_bitmapscan", "off"},
		{"enable_sort", "off"},
		/* the relay writes, waits for nobody's timeouts, and reads committed */
		{"default_transaction_read_only", "off"},
		{"default_transaction_isolation", "read committed"},
		{"default_transaction_deferrable", "off"},
		{"statement_timeout", "0"},
		{"lock_timeout", "0"},
		{"idle_in_transaction_session_timeout", "0"},
		{"idle_session_timeout", "0"},
		{"session_replication_role", "origin"},
		{"search_path", "pg_catalog"},
	};
	int			i;

	for (i = 0; i < lengthof(pinned); i++)
		SetConfigOption(pinned[i][0], pinned[i][1], PGC_SUSET, PGC_S_OVERRIDE);
}


/*
 * process_reload: apply a pending SIGHUP.  A changed Kafka setting makes
 * the producer stale: ensure_producer() rebuilds it on this very pass,
 * whatever is in flight (in-flight events are produced again).
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

	if (relay.producer != NULL && relay.producer_stale)
	{
		ereport(LOG,
				(errmsg("outbox_kafka worker for database \"%s\" recreates its Kafka producer: settings changed",
						relay.dbname)));
		relay_recreate_producer(NULL);
	}
	if (relay.producer != NULL)
		return true;

	if (outbox_bootstrap_servers == NULL || *outbox_bootstrap_servers == '\0')
	{
		relay_enter_state(OUTBOX_STATE_MISCONFIGURED, WARNING,
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
	relay.producer_generation++;
	if (relay.producer == NULL)
	{
		relay_enter_state(OUTBOX_STATE_MISCONFIGURED, WARNING, errbuf);
		return false;
	}
	return true;
}

/*
 * relay_recreate_producer: destroy the producer (a fatal error when reason
 * is not NULL, else changed settings) and build a new one on the next
 * step.  Messages in flight are purged; their events come back as failed
 * and are produced again by the new producer, in id order.
 */
static void
relay_recreate_producer(const char *reason)
{
	ListCell   *lc;

	if (reason != NULL)
	{
		/*
		 * A fatal error that comes back at once (a cluster that refuses
		 * the producer id for good, say) must not rebuild the producer in
		 * a loop: each rebuild waits longer, until one delivers.
		 */
		relay.rebuild_at = outbox_backoff_schedule(&relay.rebuild_backoff_ms,
												   BACKOFF_MIN_MS, BACKOFF_MAX_MS);
		ereport(WARNING,
				(errmsg("outbox_kafka worker for database \"%s\" recreates its Kafka producer in %d ms after a fatal error",
						relay.dbname, relay.rebuild_backoff_ms),
				 errdetail_internal("%s", reason)));
		outbox_slot_set_error(relay.slot, reason);
	}
	outbox_producer_destroy(relay.producer, 0);
	relay.producer = NULL;
	relay.producer_generation++;
	forget_rebuild_request();

	/* purged messages whose reports were lost with the producer */
	relay_forget_in_flight(relay.chunk);
	relay_forget_in_flight(relay.lane);
	foreach(lc, relay.pinned)
		relay_forget_in_flight((OutboxChunk *) lfirst(lc));
}

/*
 * forget_rebuild_request: a request for a new producer (see
 * relay_request_rebuild) is void once the producer is gone.
 */
static void
forget_rebuild_request(void)
{
	if (relay.rebuild_reason != NULL)
	{
		pfree(relay.rebuild_reason);
		relay.rebuild_reason = NULL;
	}
}

/*
 * rebuild_if_requested: publish.c or the held lane found the producer in a
 * fatal state (relay_request_rebuild): rebuild it, as for a fatal error
 * reported by librdkafka.  Returns true if it did.
 */
static bool
rebuild_if_requested(void)
{
	char		reason[512];

	if (relay.rebuild_reason == NULL)
		return false;
	strlcpy(reason, relay.rebuild_reason, sizeof(reason));
	if (relay.producer != NULL)
		relay_recreate_producer(reason);
	forget_rebuild_request();
	return true;
}

/*
 * serve_producer: serve what librdkafka queued for us (reports, errors,
 * log lines) and act on a fatal error: on every pass, busy or idle.
 */
static void
serve_producer(void)
{
	char		reason[512];
	int			err;

	if (relay.producer == NULL)
		return;
	outbox_producer_serve(relay.producer);
	err = outbox_producer_take_fatal(relay.producer, reason, sizeof(reason));
	if (err == 0)
		return;
	relay_recreate_producer(reason);

	/*
	 * Refused for good (authorisation: the cluster's settings must change),
	 * or fatal again right after a rebuild: say so in the state.  A single
	 * fatal error (a gap after a refused event, say) keeps the state, and
	 * last_error keeps its reason.
	 */
	if (outbox_classify_error(err) == OUTBOX_ERROR_CLUSTER)
		relay_enter_state(OUTBOX_STATE_MISCONFIGURED, WARNING, reason);
	else if (relay.rebuild_backoff_ms > BACKOFF_MIN_MS)
		relay_enter_state(OUTBOX_STATE_BACKING_OFF, WARNING, reason);
}



/*
 * run_maintenance: rotation and truncation, at most every
 * MAINTENANCE_INTERVAL_MS, in a transaction of its own (which writes
 * nothing when there is nothing to do).
 */
static void
run_maintenance(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			current;

	if (now < relay.next_maintenance)
		return;
	relay.next_maintenance = TimestampTzPlusMilliseconds(now, MAINTENANCE_INTERVAL_MS);

	/*
	 * Maintenance truncates what the saved progress covers: save it first,
	 * flushed like every save (this worker commits asynchronously), or a
	 * crash could take back progress that outbox.status already showed.
	 */
	(void) relay_save_progress_at_most_every(true);
	relay_begin_step("outbox_kafka: storage maintenance");
	current = outbox_storage_maintain();
	relay_end_step();

	/* tell enqueuers which table takes new rows, sparing them a lookup */
	if (relay.slot != NULL)
		pg_atomic_write_u32(&relay.slot->current_table, (uint32) current + 1);
}

/*
 * check_extension: is the extension installed in this database, at the
 * version of its SQL objects this library was built for?  Sets
 * relay.extension_ready; when not, says why in outbox.status (a library
 * newer than the schema waits for ALTER EXTENSION ... UPDATE rather than
 * failing on objects that are not there yet).
 */
static bool
check_extension(void)
{
	char	   *version;
	char	   *problem = NULL;

	StartTransactionCommand();
	version = outbox_storage_extension_version();
	if (version != NULL && strcmp(version, OUTBOX_SCHEMA_VERSION) != 0)
		problem = MemoryContextStrdup(relay.loop_cxt,
									  psprintf("extension outbox_kafka is at version %s in this database, but the loaded library needs version %s; run ALTER EXTENSION outbox_kafka UPDATE",
											   version, OUTBOX_SCHEMA_VERSION));
	relay.extension_ready = (version != NULL && problem == NULL);
	CommitTransactionCommand();
	MemoryContextSwitchTo(relay.loop_cxt);

	if (version == NULL)
		relay_enter_state(OUTBOX_STATE_WAITING_FOR_EXTENSION, LOG,
						  "extension outbox_kafka is not installed in this database; run CREATE EXTENSION outbox_kafka");
	else if (problem != NULL)
		relay_enter_state(OUTBOX_STATE_MISCONFIGURED, WARNING, problem);
	return relay.extension_ready;
}

/*
 * relay_step: one pass of the worker loop.  Returns how long to sleep
 * before the next pass (0: go on at once); any wake-up cuts it short.
 */
static long
relay_step(void)
{
	long		wait_ms;
	long		lane_ms;

	if (RecoveryInProgress())
	{
		relay_enter_state(OUTBOX_STATE_STANDBY, LOG,
						  "the server is in recovery; publishing resumes after promotion");
		return Min(outbox_poll_interval_ms, 1000);
	}

	/* checked once, and again after any error (DROP EXTENSION, say) */
	if (!relay.extension_ready && !check_extension())
		return Min(outbox_poll_interval_ms, 1000);

	if (relay.producer == NULL && relay.rebuild_at > GetCurrentTimestamp())
		return outbox_ms_until(relay.rebuild_at);	/* after a fatal error */
	if (!ensure_producer())
		return Min(outbox_poll_interval_ms * 10L, 5000L);
	serve_producer();
	if (relay.producer == NULL)
		return outbox_ms_until(relay.rebuild_at);	/* recreated after a fatal error */
	/* a producer that delivers ends the back-offs */
	if (relay.rebuild_backoff_ms != 0 && outbox_producer_delivered(relay.producer))
		relay_note_progress();

	if (!relay.held_loaded)
		held_load();
	held_release_pinned();
	run_maintenance();

	wait_ms = relay_publish();
	if (rebuild_if_requested())
		return outbox_ms_until(relay.rebuild_at);
	lane_ms = held_run_lane();
	if (rebuild_if_requested())
		return outbox_ms_until(relay.rebuild_at);
	return Min(wait_ms, lane_ms);
}



/*
 * listen_for_commits: before sleeping, tell committing backends whether to
 * set our latch: not while a chunk is in flight (its delivery reports wake
 * us, and then relay_new_commits() says whether to look for more), nor
 * while gathering (the timeout wakes us).
 * Returns true if commits were counted since the last sleep while we were
 * not listening: then there is no sleeping.
 */
static bool
listen_for_commits(void)
{
	bool		listen = relay.chunk->in_flight == 0 && !relay_gathering();
	uint64		commits;

	if (relay.slot == NULL)
		return false;
	pg_atomic_write_u32(&relay.slot->listening, listen ? 1 : 0);
	/* listening is published before the count is read (shmem.c's order) */
	pg_memory_barrier();
	commits = pg_atomic_read_u64(&relay.slot->commits);
	if (commits == relay.commits_waited_at)
		return false;
	relay.commits_waited_at = commits;
	relay.commits_seen = true;
	return listen;
}

/*
 * wait_for_work: sleep up to timeout_ms on the latch (commits, signals,
 * barriers), the producer's wake-up pipe (delivery reports, errors, log
 * lines) and postmaster death, whichever comes first.  The wait event set
 * is kept, and rebuilt only when the producer (its pipe) changes.
 */
static void
wait_for_work(long timeout_ms)
{
	WaitEvent	event;
	int			fd = relay.producer ? outbox_producer_wake_fd(relay.producer) : -1;

	if (relay.wait_set == NULL ||
		relay.wait_set_generation != relay.producer_generation)
	{
		if (relay.wait_set != NULL)
			FreeWaitEventSet(relay.wait_set);
		relay.wait_set = outbox_create_wait_event_set(3);
		AddWaitEventToSet(relay.wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(relay.wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		if (fd >= 0)
			AddWaitEventToSet(relay.wait_set, WL_SOCKET_READABLE, fd, NULL, NULL);
		relay.wait_set_generation = relay.producer_generation;
	}
	if (fd < 0 && relay.producer != NULL)
		timeout_ms = Min(timeout_ms, NO_PIPE_POLL_MS);
	if (listen_for_commits())
		return;

	if (WaitEventSetWait(relay.wait_set, timeout_ms, &event, 1, PG_WAIT_EXTENSION) == 0)
		relay.commits_seen = true;	/* the poll_interval fallback */
	else if (event.events & WL_LATCH_SET)
	{
		relay.commits_seen = true;
		ResetLatch(MyLatch);
	}
}

/*
 * shutdown_relay: on SIGTERM: wait up to outbox_kafka.shutdown_timeout for
 * messages in flight (still serving interrupts and postmaster death),
 * record what was acknowledged, drop the producer.  Never hangs on an
 * unreachable cluster.
 */
static void
shutdown_relay(void)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   outbox_shutdown_timeout_ms);

	relay.stopping = true;
	if (relay.producer != NULL)
	{
		while (relay.chunk->in_flight > 0 && GetCurrentTimestamp() < deadline)
		{
			CHECK_FOR_INTERRUPTS();
			wait_for_work(Max(Min(outbox_ms_until(deadline), 100), 1));
			serve_producer();
			if (relay.producer == NULL)
				break;
		}
		if (relay.producer != NULL)
			relay_recreate_producer(NULL);
		if (!RecoveryInProgress() && relay.extension_ready)
		{
			if (relay.chunk->nevents > 0)
				relay_record_progress(false);
			(void) relay_save_progress_at_most_every(true);
		}
	}
	ereport(LOG,
			(errmsg("outbox_kafka worker for database \"%s\" stopped",
					relay.dbname ? relay.dbname : "?")));
}

/*
 * recover_from_error: after an ERROR escaped a step: report it, abort the
 * transaction, say so in outbox.status, forget the chunks and held topics
 * and try again after a back-off.  Nothing is lost: unrecorded events are
 * read again.
 */
static void
recover_from_error(void)
{
	ErrorData  *edata = outbox_abort_failed_step();

	relay.extension_ready = false;

	/*
	 * Start over from what storage has recorded: the chunks may belong to
	 * an extension that was dropped meanwhile.  Events delivered but not
	 * recorded are published again (at least once).  Chunk memory may be
	 * freed only when nothing of it is in flight: drop the producer first.
	 */
	if (relay.producer != NULL)
	{
		outbox_producer_destroy(relay.producer, 0);
		relay.producer = NULL;
		relay.producer_generation++;
	}
	forget_rebuild_request();
	held_drop_all_chunks();
	held_forget();
	outbox_batch_forget();
	relay.commits_seen = true;
	relay.retry_at = outbox_backoff_schedule(&relay.backoff_ms, 1000, BACKOFF_MAX_MS);
	relay_enter_state(OUTBOX_STATE_BACKING_OFF, WARNING,
					  outbox_failed_step_message(edata, relay.backoff_ms));
	FreeErrorData(edata);
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
	pin_settings();

	relay.loop_cxt = AllocSetContextCreate(TopMemoryContext,
										   "outbox_kafka worker loop",
										   ALLOCSET_DEFAULT_SIZES);
	relay.chunk = outbox_chunk_create();
	relay.ahead = outbox_chunk_create();
	relay.lane = outbox_chunk_create();
	relay.producer_settings = current_producer_settings();
	relay.commits_seen = true;

	StartTransactionCommand();
	relay.dbname = MemoryContextStrdup(TopMemoryContext,
									   get_database_name(relay.dboid));
	/* key: ('o','k') */
	outbox_guard_database(0x6f75, 0x746b, "worker", relay.dbname);
	CommitTransactionCommand();

	ereport(LOG,
			(errmsg("outbox_kafka worker started for database \"%s\" (librdkafka %s)",
					relay.dbname, outbox_librdkafka_version())));

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
		if (relay.retry_at != 0 && GetCurrentTimestamp() < relay.retry_at &&
			!relay.extension_ready)
			wait_ms = outbox_ms_until(relay.retry_at);		/* after an error */
		else
			wait_ms = relay_step();
		if (wait_ms > 0 && !ShutdownRequestPending)
			wait_for_work(wait_ms);
	}

	shutdown_relay();
	proc_exit(0);
}
