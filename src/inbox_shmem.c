/*-------------------------------------------------------------------------
 *
 * inbox_shmem.c
 *	  Shared memory of the inbox: one slot per database's inbox worker,
 *	  with its state, last error and the high watermarks of the partitions
 *	  it consumes, for outbox.inbox_status.
 *
 * The slots are a segment of their own ("outbox_kafka inbox"), apart from
 * the relay's, so that neither layout depends on the other.  A slot is
 * taken under the segment's spinlock-protected scan and freed when its
 * worker exits.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "inbox.h"
#include "outbox_kafka.h"

typedef struct InboxShared
{
	LWLock	   *lock;			/* protects slot assignment */
	int			nslots;
	InboxSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} InboxShared;

static InboxShared *InboxShmem = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size inbox_shmem_size(void);
static void inbox_shmem_request(void);
static void inbox_shmem_startup(void);

/*
 * inbox_shmem_size: one slot per possible background worker.
 */
static Size
inbox_shmem_size(void)
{
	return add_size(offsetof(InboxShared, slots),
					mul_size(max_worker_processes, sizeof(InboxSlot)));
}

/*
 * inbox_shmem_request: shmem_request_hook; chains the previous hook.
 */
static void
inbox_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(inbox_shmem_size());
	RequestNamedLWLockTranche("outbox_kafka inbox", 1);
}

/*
 * inbox_shmem_startup: shmem_startup_hook; creates or attaches the slots.
 */
static void
inbox_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	InboxShmem = ShmemInitStruct("outbox_kafka inbox", inbox_shmem_size(), &found);
	if (!found)
	{
		int			i;

		memset(InboxShmem, 0, inbox_shmem_size());
		InboxShmem->lock = &(GetNamedLWLockTranche("outbox_kafka inbox"))->lock;
		InboxShmem->nslots = max_worker_processes;
		for (i = 0; i < InboxShmem->nslots; i++)
			SpinLockInit(&InboxShmem->slots[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * inbox_shmem_install_hooks: called from _PG_init while preloading.
 */
void
inbox_shmem_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = inbox_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = inbox_shmem_startup;
}

/*
 * inbox_find_slot: the slot of dboid's inbox worker, or NULL (also when
 * the library was not preloaded).
 */
InboxSlot *
inbox_find_slot(Oid dboid)
{
	int			i;

	if (InboxShmem == NULL)
		return NULL;
	for (i = 0; i < InboxShmem->nslots; i++)
		if (InboxShmem->slots[i].dboid == dboid)
			return &InboxShmem->slots[i];
	return NULL;
}

/*
 * inbox_claim_slot: take the slot for dboid for this process.  Returns
 * NULL if a live worker already holds it (the caller exits quietly: one
 * inbox worker per database).  ERROR if no slot is free.
 */
InboxSlot *
inbox_claim_slot(Oid dboid)
{
	InboxSlot  *slot = NULL;
	int			i;

	LWLockAcquire(InboxShmem->lock, LW_EXCLUSIVE);
	for (i = 0; i < InboxShmem->nslots; i++)
	{
		InboxSlot  *s = &InboxShmem->slots[i];

		if (s->dboid == dboid)
		{
			if (s->pid != 0 && s->pid != MyProcPid && kill(s->pid, 0) == 0)
			{
				LWLockRelease(InboxShmem->lock);
				return NULL;
			}
			slot = s;
			break;
		}
		if (slot == NULL && s->dboid == InvalidOid)
			slot = s;
	}
	if (slot == NULL)
	{
		LWLockRelease(InboxShmem->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no free outbox_kafka inbox worker slot"),
				 errhint("Increase max_worker_processes.")));
	}
	SpinLockAcquire(&slot->mutex);
	slot->dboid = dboid;
	slot->pid = MyProcPid;
	slot->state = INBOX_STATE_STARTING;
	slot->last_error[0] = '\0';
	slot->last_error_at = 0;
	slot->nwatermarks = 0;
	SpinLockRelease(&slot->mutex);
	LWLockRelease(InboxShmem->lock);
	return slot;
}

/*
 * inbox_release_slot: free slot if this process still holds it.
 */
void
inbox_release_slot(InboxSlot *slot)
{
	if (slot == NULL)
		return;
	LWLockAcquire(InboxShmem->lock, LW_EXCLUSIVE);
	if (slot->pid == MyProcPid)
	{
		SpinLockAcquire(&slot->mutex);
		slot->pid = 0;
		slot->state = INBOX_STATE_STOPPED;
		slot->nwatermarks = 0;
		slot->dboid = InvalidOid;
		SpinLockRelease(&slot->mutex);
	}
	LWLockRelease(InboxShmem->lock);
}

/*
 * inbox_state_name: the name inbox_status shows for state.
 */
const char *
inbox_state_name(InboxState state)
{
	switch (state)
	{
		case INBOX_STATE_STOPPED:
			return "stopped";
		case INBOX_STATE_STARTING:
			return "starting";
		case INBOX_STATE_IDLE:
			return "idle";
		case INBOX_STATE_CONSUMING:
			return "consuming";
		case INBOX_STATE_BACKING_OFF:
			return "backing_off";
		case INBOX_STATE_MISCONFIGURED:
			return "misconfigured";
		case INBOX_STATE_WAITING_FOR_EXTENSION:
			return "waiting_for_extension";
		case INBOX_STATE_STANDBY:
			return "standby";
	}
	return "unknown";
}

/*
 * inbox_slot_set_state: publish the worker's state.
 */
void
inbox_slot_set_state(InboxSlot *slot, InboxState state)
{
	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	slot->state = state;
	SpinLockRelease(&slot->mutex);
}

/*
 * inbox_slot_set_error: remember message (NULL clears) as the worker's
 * last error, cut on a character boundary.
 */
void
inbox_slot_set_error(InboxSlot *slot, const char *message)
{
	if (slot == NULL)
		return;
	outbox_slot_store_error(&slot->mutex, slot->last_error, INBOX_ERROR_LEN,
							&slot->last_error_at, message);
}

/*
 * inbox_slot_set_watermarks: replace the slot's high watermarks with those
 * of the list (of InboxWatermark *); the ones beyond the slot's room are
 * not shown.
 */
void
inbox_slot_set_watermarks(InboxSlot *slot, List *watermarks)
{
	ListCell   *lc;
	int			n = 0;

	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	foreach(lc, watermarks)
	{
		if (n >= INBOX_MAX_WATERMARKS)
			break;
		slot->watermarks[n++] = *(InboxWatermark *) lfirst(lc);
	}
	slot->nwatermarks = n;
	SpinLockRelease(&slot->mutex);
}
