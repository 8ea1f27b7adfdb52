/*-------------------------------------------------------------------------
 *
 * slot_error.c
 *	  The last error of a background worker of outbox_kafka (the relay, the
 *	  inbox), as its shared-memory slot keeps it for the status views.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/slot_error.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "outbox_kafka.h"

/*
 * outbox_slot_store_error: under the slot's spinlock mutex, store message
 * in last_error (size bytes), cut on a character boundary so that status
 * never shows a broken character, and now in *last_error_at.  A NULL
 * message empties last_error and leaves *last_error_at alone.  Needs a
 * database encoding (call it after connecting).
 */
void
outbox_slot_store_error(slock_t *mutex, char *last_error, int size,
						TimestampTz *last_error_at, const char *message)
{
	TimestampTz now = GetCurrentTimestamp();
	int			len = 0;

	if (message != NULL)
		len = pg_mbcliplen(message, strlen(message), size - 1);
	SpinLockAcquire(mutex);
	if (message == NULL)
		last_error[0] = '\0';
	else
	{
		memcpy(last_error, message, len);
		last_error[len] = '\0';
		*last_error_at = now;
	}
	SpinLockRelease(mutex);
}
