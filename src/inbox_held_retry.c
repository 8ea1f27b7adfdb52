/*-------------------------------------------------------------------------
 *
 * inbox_held_retry.c
 *	  Retrying the held keys of a subscription with on_poison = 'hold_key'
 *	  (inbox_held.c sets the messages aside).
 *
 * For every held key whose first message is due (its retry_at passed),
 * the handler runs on that message in a subtransaction; if it succeeds,
 * the message leaves outbox.inbox_held, its de-duplication key is
 * recorded (by inbox_dedupe.c, as for a batch) and the next message of
 * the key is tried, in offset order, in the same transaction, until one
 * fails (its attempts, error and next retry are stored) or the key has
 * nothing left (it is released: later messages of the key are applied as
 * they come).  Effects, removals and records commit together: exactly
 * once, as in a batch.  A message whose de-duplication key is already
 * recorded is removed without calling the handler, and so is a later copy
 * of a message applied in the same pass.  An error that is not the
 * message's fault counts no attempt.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_held_retry.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "inbox.h"
#include "relay.h"

/* The longest wait before looking at the held keys again. */
#define HELD_RECHECK_MS		1000

static SPIPlanPtr heads_plan = NULL;
static SPIPlanPtr key_plan = NULL;
static SPIPlanPtr remove_plan = NULL;
static SPIPlanPtr failed_plan = NULL;
static SPIPlanPtr count_plan = NULL;

static bool retry_key(InboxSubscription *sub, int32 partition, Datum key,
					  int64 *applied, int64 *duplicates);
static void remove_held(InboxSubscription *sub, int32 partition, int64 offset);
static void note_failure(InboxSubscription *sub, int32 partition, int64 offset,
						 ErrorData *edata, int attempts);
static void count_applied(InboxSubscription *sub, int32 partition,
						  int64 applied, int64 duplicates);

/*
 * remove_held: delete the held message at (partition, offset).  SPI
 * connected.
 */
static void
remove_held(InboxSubscription *sub, int32 partition, int64 offset)
{
	Oid			argtypes[3] = {TEXTOID, INT4OID, INT8OID};
	Datum		args[3];

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(partition);
	args[2] = Int64GetDatum(offset);
	if (SPI_execute_plan(outbox_keep_plan(&remove_plan,
										  "DELETE FROM outbox.inbox_held"
										  " WHERE subscription = $1 AND \"partition\" = $2 AND \"offset\" = $3",
										  3, argtypes),
						 args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete from outbox.inbox_held");
}

/*
 * note_failure: store the attempts and error of the held message at
 * (partition, offset) and when to try it again.  SPI connected.
 */
static void
note_failure(InboxSubscription *sub, int32 partition, int64 offset,
			 ErrorData *edata, int attempts)
{
	Oid			argtypes[7] = {TEXTOID, INT4OID, INT8OID, INT4OID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID};
	Datum		args[7];

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(partition);
	args[2] = Int64GetDatum(offset);
	args[3] = Int32GetDatum(attempts);
	args[4] = CStringGetTextDatum(edata->message ? edata->message : "unknown error");
	args[5] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	args[6] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															  inbox_backoff_delay(Max(attempts, 1))));
	if (SPI_execute_plan(outbox_keep_plan(&failed_plan,
										  "UPDATE outbox.inbox_held"
										  " SET attempts = $4, last_error = $5, sqlstate = $6, retry_at = $7"
										  " WHERE subscription = $1 AND \"partition\" = $2 AND \"offset\" = $3",
										  7, argtypes),
						 args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update outbox.inbox_held");
}

/*
 * count_applied: add to the counts of the partition in
 * outbox.inbox_offset (not its offset).  SPI connected.
 */
static void
count_applied(InboxSubscription *sub, int32 partition, int64 applied,
			  int64 duplicates)
{
	Oid			argtypes[4] = {TEXTOID, INT4OID, INT8OID, INT8OID};
	Datum		args[4];

	if (applied == 0 && duplicates == 0)
		return;
	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(partition);
	args[2] = Int64GetDatum(applied);
	args[3] = Int64GetDatum(duplicates);
	if (SPI_execute_plan(outbox_keep_plan(&count_plan,
										  "UPDATE outbox.inbox_offset"
										  " SET applied = applied + $3, duplicates = duplicates + $4"
										  " WHERE subscription = $1 AND \"partition\" = $2",
										  4, argtypes),
						 args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update outbox.inbox_offset");
}

/*
 * retry_key: try the held messages of key (a bytea) in partition, in
 * offset order, until one fails.  Adds what it applied and skipped to
 * *applied and *duplicates.  Returns whether the key was released.  SPI
 * connected.
 */
static bool
retry_key(InboxSubscription *sub, int32 partition, Datum key, int64 *applied,
		  int64 *duplicates)
{
	Oid			argtypes[3] = {TEXTOID, INT4OID, BYTEAOID};
	Datum		args[3];
	SPITupleTable *rows;
	uint64		nrows;
	uint64		i;
	bytea	   *k = DatumGetByteaPP(key);
	InboxMessage *msgs;
	int		   *attempts;
	InboxDedupe *dedupe;

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(partition);
	args[2] = key;
	if (SPI_execute_plan(outbox_keep_plan(&key_plan,
										  "SELECT \"offset\", value, headers::text, \"timestamp\","
										  "       dedupe_key, attempts"
										  "  FROM outbox.inbox_held"
										  " WHERE subscription = $1 AND \"partition\" = $2 AND key = $3"
										  " ORDER BY \"offset\"",
										  3, argtypes),
						 args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read outbox.inbox_held");
	rows = SPI_tuptable;
	nrows = SPI_processed;
	msgs = palloc0(sizeof(InboxMessage) * Max(nrows, 1));
	attempts = palloc(sizeof(int) * Max(nrows, 1));
	for (i = 0; i < nrows; i++)
	{
		HeapTuple	tup = rows->vals[i];
		TupleDesc	desc = rows->tupdesc;
		InboxMessage *msg = &msgs[i];
		bool		isnull;
		Datum		d;

		msg->partition = partition;
		msg->offset = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		msg->key = VARDATA_ANY(k);
		msg->key_len = VARSIZE_ANY_EXHDR(k);
		d = SPI_getbinval(tup, desc, 2, &isnull);
		if (!isnull)
		{
			bytea	   *v = DatumGetByteaPP(d);

			msg->value = VARDATA_ANY(v);
			msg->value_len = VARSIZE_ANY_EXHDR(v);
		}
		msg->headers_json = SPI_getvalue(tup, desc, 3);
		d = SPI_getbinval(tup, desc, 4, &isnull);
		msg->timestamp = isnull ? 0 : DatumGetTimestampTz(d);
		msg->dedupe_key = SPI_getvalue(tup, desc, 5);
		attempts[i] = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
	}

	/* a copy of a message applied before, or earlier in this key, is skipped */
	dedupe = inbox_dedupe_begin(sub, msgs, (int) nrows);
	for (i = 0; i < nrows; i++)
	{
		InboxMessage *msg = &msgs[i];
		ErrorData  *edata;

		CHECK_FOR_INTERRUPTS();
		if (inbox_dedupe_recorded(dedupe, msg->dedupe_key))
		{
			remove_held(sub, partition, msg->offset);
			(*duplicates)++;
			continue;
		}
		edata = inbox_apply_message(sub, msg);
		if (edata == NULL)
		{
			remove_held(sub, partition, msg->offset);
			inbox_dedupe_add(dedupe, msg->dedupe_key);
			(*applied)++;
			continue;
		}
		if (!inbox_apply_error_is_transient(edata->sqlerrcode))
			attempts[i]++;
		note_failure(sub, partition, msg->offset, edata, attempts[i]);
		FreeErrorData(edata);
		break;
	}
	inbox_dedupe_write(dedupe);
	return i == nrows;
}

/*
 * inbox_held_retry: retry the held keys of sub that are due, in one
 * transaction of its own.  Returns how long (ms) until the next retry may
 * be due, at most HELD_RECHECK_MS.  Runs outside any transaction; ERRORs
 * out of it (the caller's recovery rolls back).
 */
long
inbox_held_retry(InboxSubscription *sub)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	SPITupleTable *heads;
	uint64		nheads;
	uint64		i;
	long		wait_ms = HELD_RECHECK_MS;
	int32		counted_partition = -1;
	int64		applied = 0;
	int64		duplicates = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	args[0] = CStringGetTextDatum(sub->name);
	if (SPI_execute_plan(outbox_keep_plan(&heads_plan,
										  "SELECT DISTINCT ON (\"partition\", key) \"partition\", key,"
										  "       ceil(extract(epoch FROM retry_at - now()) * 1000)::bigint"
										  "  FROM outbox.inbox_held WHERE subscription = $1"
										  " ORDER BY \"partition\", key, \"offset\"",
										  1, argtypes),
						 args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read outbox.inbox_held");
	heads = SPI_tuptable;
	nheads = SPI_processed;
	if (nheads > 0)
		pgstat_report_activity(STATE_RUNNING, "retrying held inbox keys");
	for (i = 0; i < nheads; i++)
	{
		bool		isnull;
		int32		partition = DatumGetInt32(SPI_getbinval(heads->vals[i], heads->tupdesc, 1, &isnull));
		Datum		key = SPI_getbinval(heads->vals[i], heads->tupdesc, 2, &isnull);
		int64		due_in = DatumGetInt64(SPI_getbinval(heads->vals[i], heads->tupdesc, 3, &isnull));

		if (due_in > 0)
		{
			wait_ms = Min(wait_ms, (long) due_in);
			continue;
		}
		if (partition != counted_partition)
		{
			count_applied(sub, counted_partition, applied, duplicates);
			counted_partition = partition;
			applied = duplicates = 0;
		}
		if (retry_key(sub, partition, key, &applied, &duplicates))
			ereport(LOG,
					(errmsg("outbox_kafka inbox: subscription \"%s\" released a held key of partition %d",
							sub->name, partition)));
		else
			wait_ms = Min(wait_ms, (long) INBOX_BACKOFF_MIN_MS);
	}
	count_applied(sub, counted_partition, applied, duplicates);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (nheads > 0)
		pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(caller);
	return Max(wait_ms, 1);
}
