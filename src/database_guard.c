/*-------------------------------------------------------------------------
 *
 * database_guard.c
 *	  One worker of a kind per database: a session advisory lock as the
 *	  second guard besides the worker's shared-memory slot (the relay, the
 *	  inbox).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/database_guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lock.h"

#include "outbox_kafka.h"

/*
 * outbox_guard_database: take the session advisory lock (key1, key2) in the
 * two-key advisory lock space of this database, which only one worker of
 * a kind can hold.  Needs an open transaction.  When another worker holds
 * it, logs that the worker (named by who, e.g. "worker") of database
 * dbname exits, and exits quietly.
 */
void
outbox_guard_database(uint32 key1, uint32 key2, const char *who,
					  const char *dbname)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, key1, key2, 2);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		ereport(LOG,
				(errmsg("outbox_kafka %s exits: another one holds the lock of database \"%s\"",
						who, dbname)));
		proc_exit(0);
	}
}
