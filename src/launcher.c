/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: starts one relay worker and one inbox worker per
 *	  database listed in outbox_kafka.databases, and stops the workers of
 *	  databases that leave the list on reload.
 *
 * The launcher connects to no database (it only reads the shared catalog
 * pg_database).  It checks its workers every few seconds and right after a
 * reload, restarting any that stopped; a listed database that does not
 * exist is reported once and checked again later, never crash-looped.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/guc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "inbox.h"
#include "relay.h"

/* How often the launcher checks on its workers without a reload. */
#define LAUNCHER_CHECK_MS	5000
/* How long the postmaster waits before restarting a crashed worker. */
#define WORKER_RESTART_S	5

/* One started worker, as the launcher remembers it. */
typedef struct LaunchedWorker
{
	Oid			dboid;
	NameData	dbname;
	bool		inbox;			/* the inbox worker, not the relay */
	BackgroundWorkerHandle *handle;
} LaunchedWorker;

static List *launched = NIL;	/* of LaunchedWorker *, in TopMemoryContext */
static List *reported_missing = NIL;	/* names already reported missing */

static void start_worker(Oid dboid, const char *dbname, bool inbox);
static bool worker_running(Oid dboid, bool inbox);
static void stop_unlisted_workers(List *listed_oids);
static void reconcile_workers(void);
static void forget_launcher_latch(int code, Datum arg);
static Oid	lookup_database(const char *name);

/*
 * lookup_database: OID of the database called name, or InvalidOid.  A
 * plain scan of the shared catalog: the launcher has no database, so the
 * syscache and catalog indexes are out of reach.  Needs a transaction.
 */
static Oid
lookup_database(const char *name)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Oid			result = InvalidOid;

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), name) == 0)
		{
			result = db->oid;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * outbox_register_launcher: register the launcher; called from _PG_init
 * while shared_preload_libraries is processed.
 */
void
outbox_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "outbox_kafka");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "outbox_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "outbox_kafka launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "outbox_kafka launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * worker_running: does a worker (the relay, or the inbox worker if inbox)
 * for dboid run (or is one starting)?  Forgets workers that have stopped,
 * so they get started again.
 */
static bool
worker_running(Oid dboid, bool inbox)
{
	ListCell   *lc;
	OutboxWorkerSlot *slot;

	foreach(lc, launched)
	{
		LaunchedWorker *w = (LaunchedWorker *) lfirst(lc);
		pid_t		pid;

		if (w->dboid != dboid || w->inbox != inbox)
			continue;
		if (GetBackgroundWorkerPid(w->handle, &pid) != BGWH_STOPPED)
			return true;
		launched = foreach_delete_current(launched, lc);
		pfree(w->handle);
		pfree(w);
		break;
	}

	/* a worker started by an earlier launcher incarnation */
	if (inbox)
	{
		InboxSlot  *islot = inbox_find_slot(dboid);

		return islot != NULL && islot->pid != 0;
	}
	slot = outbox_find_slot(dboid);
	return slot != NULL && slot->pid != 0;
}

/*
 * start_worker: register a dynamic relay worker (or inbox worker, if
 * inbox) for dboid.
 */
static void
start_worker(Oid dboid, const char *dbname, bool inbox)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	LaunchedWorker *w;
	MemoryContext old;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = WORKER_RESTART_S;
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "outbox_kafka");
	if (inbox)
	{
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "outbox_inbox_worker_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "outbox_kafka inbox for database %s", dbname);
		snprintf(worker.bgw_type, BGW_MAXLEN, "outbox_kafka inbox");
	}
	else
	{
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "outbox_worker_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "outbox_kafka worker for database %s", dbname);
		snprintf(worker.bgw_type, BGW_MAXLEN, "outbox_kafka worker");
	}

	old = MemoryContextSwitchTo(TopMemoryContext);
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		MemoryContextSwitchTo(old);
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start outbox_kafka worker for database \"%s\"", dbname),
				 errhint("Increase max_worker_processes.")));
		return;
	}
	w = palloc(sizeof(LaunchedWorker));
	w->dboid = dboid;
	w->inbox = inbox;
	namestrcpy(&w->dbname, dbname);
	w->handle = handle;
	launched = lappend(launched, w);
	MemoryContextSwitchTo(old);

	ereport(LOG,
			(errmsg(inbox ? "outbox_kafka launcher started an inbox worker for database \"%s\"" :
					"outbox_kafka launcher started a worker for database \"%s\"", dbname)));
}

/*
 * stop_unlisted_workers: terminate workers whose database left the list,
 * including ones an earlier launcher started (found in shared memory).
 */
static void
stop_unlisted_workers(List *listed_oids)
{
	ListCell   *lc;
	int			i;

	foreach(lc, launched)
	{
		LaunchedWorker *w = (LaunchedWorker *) lfirst(lc);

		if (list_member_oid(listed_oids, w->dboid))
			continue;
		TerminateBackgroundWorker(w->handle);
		ereport(LOG,
				(errmsg(w->inbox ? "outbox_kafka launcher stops the inbox worker for database \"%s\": no longer listed in \"outbox_kafka.databases\"" :
						"outbox_kafka launcher stops the worker for database \"%s\": no longer listed in \"outbox_kafka.databases\"",
						NameStr(w->dbname))));
		launched = foreach_delete_current(launched, lc);
		pfree(w->handle);
		pfree(w);
	}

	/*
	 * A relay of an unlisted database that this launcher did not start (it
	 * was restarted meanwhile): signal it only while holding the slot lock,
	 * under which a live worker cannot release its slot, and only if the
	 * pid still belongs to a backend of that database, never to a process
	 * that reused the pid of a worker that died without releasing it.
	 */
	LWLockAcquire(OutboxShmem->lock, LW_SHARED);
	for (i = 0; i < OutboxShmem->nslots; i++)
	{
		OutboxWorkerSlot *slot = &OutboxShmem->slots[i];
		pid_t		pid = slot->pid;
		PGPROC	   *proc;

		if (pid == 0 || !OidIsValid(slot->dboid) ||
			list_member_oid(listed_oids, slot->dboid))
			continue;
		proc = BackendPidGetProc(pid);
		if (proc != NULL && proc->databaseId == slot->dboid)
			kill(pid, SIGTERM);
	}
	LWLockRelease(OutboxShmem->lock);
}

/*
 * reconcile_workers: make the running workers match the list.
 */
static void
reconcile_workers(void)
{
	List	   *names;
	List	   *listed_oids = NIL;
	List	   *still_missing = NIL;
	ListCell   *lc;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	names = outbox_database_list();
	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc);
		Oid			dboid = lookup_database(name);

		if (!OidIsValid(dboid))
		{
			if (!outbox_name_in_list(reported_missing, name))
				ereport(WARNING,
						(errcode(ERRCODE_UNDEFINED_DATABASE),
						 errmsg("database \"%s\" listed in \"outbox_kafka.databases\" does not exist", name),
						 errhint("Create the database, or remove it from \"outbox_kafka.databases\" and reload.")));
			{
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				still_missing = lappend(still_missing, pstrdup(name));
				MemoryContextSwitchTo(old);
			}
			continue;
		}
		listed_oids = lappend_oid(listed_oids, dboid);
		if (!worker_running(dboid, false))
			start_worker(dboid, name, false);
		if (!worker_running(dboid, true))
			start_worker(dboid, name, true);
	}
	stop_unlisted_workers(listed_oids);
	PopActiveSnapshot();
	CommitTransactionCommand();

	list_free_deep(reported_missing);
	reported_missing = still_missing;
}

/*
 * forget_launcher_latch: before_shmem_exit callback: nobody may set the
 * latch of a launcher that is gone.
 */
static void
forget_launcher_latch(int code, Datum arg)
{
	outbox_set_launcher_latch(NULL);
}

/*
 * outbox_launcher_main: entry point of the launcher.
 */
void
outbox_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	/* commits in a database without a relay wake us (shmem.c) */
	outbox_set_launcher_latch(MyLatch);
	before_shmem_exit(forget_launcher_latch, (Datum) 0);
	ereport(LOG, (errmsg("outbox_kafka launcher started")));

	while (!ShutdownRequestPending)
	{
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		reconcile_workers();

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 LAUNCHER_CHECK_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	/* exit 1 so that a terminated launcher is restarted by the postmaster */
	proc_exit(1);
}
