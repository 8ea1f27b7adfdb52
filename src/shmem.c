/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory of outbox_kafka: one slot per database relay.
 *
 * A slot carries what committing backends need to wake the relay of their
 * database (its latch) and what outbox.status shows about it (state,
 * counters, last error).  Shared memory exists only when the library was
 * preloaded.  The functions a backend may call without it
 * (outbox_find_slot, outbox_wake_worker, the slot setters) cope with
 * OutboxShmem being NULL; the others run only in preloaded processes (the
 * launcher, the relay) or after checking it (enqueue.c).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "outbox_kafka.h"

OutboxShared *OutboxShmem = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size outbox_shmem_size(void);
static void outbox_shmem_request(void);
static void outbox_shmem_startup(void);
static void wake_launcher(void);

/*
 * outbox_shmem_size: bytes needed for the slot array.  There can never be
 * more relays than background worker processes.
 */
static Size
outbox_shmem_size(void)
{
	return add_size(offsetof(OutboxShared, slots),
					mul_size(max_worker_processes, sizeof(OutboxWorkerSlot)));
}

/*
 * outbox_shmem_request: shmem_request_hook; reserves our memory and lock.
 */
static void
outbox_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(outbox_shmem_size());
	RequestNamedLWLockTranche("outbox_kafka", 1);
}

/*
 * outbox_shmem_startup: shmem_startup_hook; creates or attaches to the
 * slot array.  Runs in the postmaster and in every EXEC_BACKEND child.
 */
static void
outbox_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	OutboxShmem = ShmemInitStruct("outbox_kafka", outbox_shmem_size(), &found);
	if (!found)
	{
		int			i;

		memset(OutboxShmem, 0, outbox_shmem_size());
		OutboxShmem->lock = &(GetNamedLWLockTranche("outbox_kafka"))->lock;
		OutboxShmem->nslots = max_worker_processes;
		for (i = 0; i < OutboxShmem->nslots; i++)
		{
			OutboxWorkerSlot *slot = &OutboxShmem->slots[i];

			SpinLockInit(&slot->mutex);
			pg_atomic_init_u64(&slot->events_published, 0);
			pg_atomic_init_u64(&slot->events_retried, 0);
			pg_atomic_init_u64(&slot->events_dead_lettered, 0);
			pg_atomic_init_u64(&slot->events_failed, 0);
			pg_atomic_init_u32(&slot->current_table, 0);
			pg_atomic_init_u64(&slot->commits, 0);
			pg_atomic_init_u32(&slot->listening, 1);
		}
		pg_atomic_init_u32(&OutboxShmem->async_committing, 0);
		pg_atomic_init_u64(&OutboxShmem->async_commit_end, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * outbox_shmem_install_hooks: called from _PG_init while preloading.
 */
void
outbox_shmem_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = outbox_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = outbox_shmem_startup;
}

/*
 * outbox_find_slot: the slot of the relay serving dboid, or NULL.  Reads
 * without a lock: a stale answer only means one missed or spurious wake-up.
 */
OutboxWorkerSlot *
outbox_find_slot(Oid dboid)
{
	int			i;

	if (OutboxShmem == NULL)
		return NULL;

	for (i = 0; i < OutboxShmem->nslots; i++)
	{
		if (OutboxShmem->slots[i].dboid == dboid)
			return &OutboxShmem->slots[i];
	}
	return NULL;
}

/*
 * outbox_set_launcher_latch: the launcher announces its latch (NULL when
 * it exits), so that a commit in a database without a relay can wake it.
 */
void
outbox_set_launcher_latch(Latch *latch)
{
	LWLockAcquire(OutboxShmem->lock, LW_EXCLUSIVE);
	OutboxShmem->launcher_latch = latch;
	LWLockRelease(OutboxShmem->lock);
}

/*
 * wake_launcher: a transaction that enqueued committed in a database no
 * relay serves yet (created after the launcher last looked, say): have
 * the launcher look at once, rather than at its next periodic check.  At
 * most once a second per backend, so that enqueuing in a database that is
 * not listed costs the launcher little.  Safe without a transaction.
 */
static void
wake_launcher(void)
{
	static TimestampTz last_woken = 0;
	TimestampTz now;
	Latch	   *latch;

	if (OutboxShmem == NULL)
		return;
	now = GetCurrentTimestamp();
	if (last_woken != 0 && !TimestampDifferenceExceeds(last_woken, now, 1000))
		return;
	last_woken = now;
	latch = OutboxShmem->launcher_latch;
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * outbox_wake_worker: tell the relay serving dboid, if any, that a
 * transaction that enqueued has committed (and is visible): count it, and
 * set the relay's latch if it listens.  While a chunk is in flight the
 * relay does not listen (it looks at the count when the chunk is done), so
 * a busy relay is not woken by every commit.  Safe in any backend, at
 * commit time, without a transaction.
 */
void
outbox_wake_worker(Oid dboid)
{
	OutboxWorkerSlot *slot = outbox_find_slot(dboid);
	Latch	   *latch;

	if (slot == NULL)
	{
		wake_launcher();
		return;
	}
	/* a full barrier: counted before listening is read (see the worker) */
	pg_atomic_fetch_add_u64(&slot->commits, 1);
	if (pg_atomic_read_u32(&slot->listening) == 0)
		return;
	latch = slot->latch;
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * outbox_async_commit_begin: the calling backend is about to commit, with
 * synchronous_commit = off, a transaction that enqueued.  Call at
 * pre-commit, before the commit can become visible; pair it with
 * outbox_async_commit_end().  Safe without a transaction.
 */
void
outbox_async_commit_begin(void)
{
	pg_atomic_fetch_add_u32(&OutboxShmem->async_committing, 1);
}

/*
 * outbox_async_commit_end: the transaction counted by
 * outbox_async_commit_begin() committed with its commit record ending at
 * commit_end (or, with InvalidXLogRecPtr, did not commit).  Must not throw.
 */
void
outbox_async_commit_end(XLogRecPtr commit_end)
{
	uint64		seen = pg_atomic_read_u64(&OutboxShmem->async_commit_end);

	while (seen < commit_end &&
		   !pg_atomic_compare_exchange_u64(&OutboxShmem->async_commit_end,
										   &seen, commit_end))
		;
	/* a full barrier: the position is published before the count drops */
	pg_atomic_fetch_sub_u32(&OutboxShmem->async_committing, 1);
}

/*
 * outbox_async_commits_end: how far WAL must be on disk for every commit
 * visible to a snapshot taken before this call to be on disk (G9): the
 * end of the latest asynchronous commit of an enqueuing transaction, or,
 * while one is between pre-commit and commit (its position not yet
 * known), the current insert position.  InvalidXLogRecPtr when that is
 * already flushed.  Synchronous commits are on disk before they are
 * visible, so they need nothing.
 */
XLogRecPtr
outbox_async_commits_end(void)
{
	XLogRecPtr	end;

	pg_memory_barrier();
	if (pg_atomic_read_u32(&OutboxShmem->async_committing) > 0)
		return GetXLogInsertRecPtr();
	pg_read_barrier();
	end = pg_atomic_read_u64(&OutboxShmem->async_commit_end);
	return end <= GetFlushRecPtr(NULL) ? InvalidXLogRecPtr : end;
}

/*
 * outbox_state_flows: do events flow in this state (idle, publishing, or
 * holding: everything flows but the held topics)?
 */
bool
outbox_state_flows(OutboxWorkerState state)
{
	return state == OUTBOX_STATE_IDLE || state == OUTBOX_STATE_PUBLISHING ||
		state == OUTBOX_STATE_HOLDING;
}

/*
 * outbox_state_name: the name outbox.status shows for a state.
 */
const char *
outbox_state_name(OutboxWorkerState state)
{
	switch (state)
	{
		case OUTBOX_STATE_STOPPED:
			return "stopped";
		case OUTBOX_STATE_STARTING:
			return "starting";
		case OUTBOX_STATE_IDLE:
			return "idle";
		case OUTBOX_STATE_PUBLISHING:
			return "publishing";
		case OUTBOX_STATE_BACKING_OFF:
			return "backing_off";
		case OUTBOX_STATE_BROKER_UNREACHABLE:
			return "broker_unreachable";
		case OUTBOX_STATE_MISCONFIGURED:
			return "misconfigured";
		case OUTBOX_STATE_WAITING_FOR_EXTENSION:
			return "waiting_for_extension";
		case OUTBOX_STATE_STANDBY:
			return "standby";
		case OUTBOX_STATE_HOLDING:
			return "holding";
	}
	return "unknown";
}

/*
 * outbox_slot_set_state: publish the worker's state.
 */
void
outbox_slot_set_state(OutboxWorkerSlot *slot, OutboxWorkerState state)
{
	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	slot->state = state;
	SpinLockRelease(&slot->mutex);
}

/*
 * outbox_slot_set_error: remember the last error and when it happened.
 * The message is cut to fit OUTBOX_ERROR_LEN.  Needs a database encoding
 * (call it after connecting).
 */
void
outbox_slot_set_error(OutboxWorkerSlot *slot, const char *message)
{
	if (slot == NULL)
		return;
	outbox_slot_store_error(&slot->mutex, slot->last_error, OUTBOX_ERROR_LEN,
							&slot->last_error_at, message);
}

/*
 * outbox_slot_clear_error: forget the last error: what it said is fixed.
 */
void
outbox_slot_clear_error(OutboxWorkerSlot *slot)
{
	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	slot->last_error[0] = '\0';
	slot->last_error_at = 0;
	SpinLockRelease(&slot->mutex);
}
