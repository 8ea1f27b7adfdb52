/*-------------------------------------------------------------------------
 *
 * inbox_storage.c
 *	  The inbox worker's reads of its tables outside a batch: the
 *	  subscriptions, the stored offsets of one subscription and rewinds by
 *	  timestamp.  (The de-duplication tables are inbox_dedupe.c's.)
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_storage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "inbox.h"
#include "relay.h"

/*
 * inbox_storage_subscriptions: every subscription whose handler and owner
 * exist, as a List of InboxSubscription * in the current memory context.
 * A subscription whose handler or owner was dropped is left out with a
 * WARNING.
 * Needs a transaction with a snapshot and SPI not connected.
 */
List *
inbox_storage_subscriptions(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *result = NIL;
	uint64		i;

	SPI_connect();
	if (SPI_execute("SELECT name, topic, handler::oid, owner::oid, max_attempts,"
					" on_poison = 'hold', concat_ws('|', name, topic, handler::oid,"
					" owner::oid, max_attempts, on_poison, dead_letter_topic),"
					" on_poison = 'hold_key', dead_letter_topic"
					" FROM outbox.inbox_subscription ORDER BY name", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read outbox.inbox_subscription");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		InboxSubscription *sub;
		MemoryContext old;
		Oid			handler = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));

		if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(handler)))
		{
			ereport(WARNING,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("inbox subscription \"%s\" is not consumed: its handler function %u does not exist",
							SPI_getvalue(tup, desc, 1), handler),
					 errhint("Subscribe again with an existing handler.")));
			continue;
		}
		if (!SearchSysCacheExists1(AUTHOID,
								   SPI_getbinval(tup, desc, 4, &isnull)))
		{
			ereport(WARNING,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("inbox subscription \"%s\" is not consumed: its owner, role %s, does not exist",
							SPI_getvalue(tup, desc, 1), SPI_getvalue(tup, desc, 4)),
					 errhint("Subscribe again as an existing role.")));
			continue;
		}
		old = MemoryContextSwitchTo(caller);
		sub = palloc0(sizeof(InboxSubscription));
		sub->name = SPI_getvalue(tup, desc, 1);
		sub->topic = SPI_getvalue(tup, desc, 2);
		sub->handler = handler;
		sub->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
		sub->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		sub->hold = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		sub->signature = SPI_getvalue(tup, desc, 7);
		sub->hold_key = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
		sub->dead_letter_topic = SPI_getvalue(tup, desc, 9);
		result = lappend(result, sub);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return result;
}

/*
 * rows_of_subscription: run sql (kept in *plan; $1 is the subscription's
 * name) and return the List of what row_to() makes of each row, made in
 * the caller's memory context.  Needs a transaction with a snapshot and
 * SPI not connected.
 */
static List *
rows_of_subscription(SPIPlanPtr *plan, const char *sql, const char *subscription,
					 void *(*row_to) (HeapTuple tup, TupleDesc desc))
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	List	   *result = NIL;
	uint64		i;

	SPI_connect();
	args[0] = CStringGetTextDatum(subscription);
	if (SPI_execute_plan(outbox_keep_plan(plan, sql, 1, argtypes),
						 args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run \"%s\"", sql);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		result = lappend(result, row_to(SPI_tuptable->vals[i], SPI_tuptable->tupdesc));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return result;
}

/*
 * position_of_row: an InboxPosition * from a row (partition, next_offset,
 * attempts) of outbox.inbox_offset.
 */
static void *
position_of_row(HeapTuple tup, TupleDesc desc)
{
	InboxPosition *pos = palloc(sizeof(InboxPosition));
	bool		isnull;

	pos->partition = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	pos->next_offset = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	pos->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	return pos;
}

/*
 * rewind_request_of_row: an InboxRewindRequest * from a row (partition,
 * timestamp, requested_at as text) of outbox.inbox_rewind_request.
 */
static void *
rewind_request_of_row(HeapTuple tup, TupleDesc desc)
{
	InboxRewindRequest *req = palloc(sizeof(InboxRewindRequest));
	bool		isnull;

	req->partition = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	req->at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
	req->requested_at = SPI_getvalue(tup, desc, 3);
	return req;
}

/*
 * inbox_storage_positions: the stored offsets of subscription, a List of
 * InboxPosition * in the current memory context, by partition.  Needs a
 * transaction with a snapshot and SPI not connected.
 */
List *
inbox_storage_positions(const char *subscription)
{
	static SPIPlanPtr plan = NULL;

	return rows_of_subscription(&plan,
								"SELECT \"partition\", next_offset, attempts"
								" FROM outbox.inbox_offset WHERE subscription = $1"
								" ORDER BY \"partition\"",
								subscription, position_of_row);
}

/*
 * inbox_storage_rewind_requests: the rewinds by timestamp of subscription
 * not resolved yet, a List of InboxRewindRequest * in the current memory
 * context.  Needs a transaction with a snapshot and SPI not connected.
 */
List *
inbox_storage_rewind_requests(const char *subscription)
{
	static SPIPlanPtr plan = NULL;

	return rows_of_subscription(&plan,
								"SELECT \"partition\", \"timestamp\", requested_at::text"
								" FROM outbox.inbox_rewind_request WHERE subscription = $1"
								" ORDER BY \"partition\"",
								subscription, rewind_request_of_row);
}

/*
 * inbox_storage_rewind_partition: store offset as the next offset of
 * partition, compare-and-set on expected (the offset the worker consumes
 * from; -1 if none is stored).  ERROR (40001) if it changed meanwhile.
 * Needs a transaction with a snapshot and SPI not connected.
 */
void
inbox_storage_rewind_partition(const char *subscription, int32 partition,
							   int64 expected, int64 offset)
{
	Oid			argtypes[4] = {TEXTOID, INT4OID, INT8OID, INT8OID};
	Datum		args[4];
	int			rc;

	SPI_connect();
	args[0] = CStringGetTextDatum(subscription);
	args[1] = Int32GetDatum(partition);
	args[2] = Int64GetDatum(offset);
	args[3] = Int64GetDatum(expected);
	if (expected < 0)
		rc = SPI_execute_with_args("INSERT INTO outbox.inbox_offset"
								   " (subscription, \"partition\", next_offset)"
								   " SELECT $1, $2, $3 WHERE $4 < 0"
								   " ON CONFLICT (subscription, \"partition\") DO NOTHING",
								   4, argtypes, args, NULL, false, 0);
	else
		rc = SPI_execute_with_args("UPDATE outbox.inbox_offset"
								   " SET next_offset = $3, attempts = 0, updated_at = now()"
								   " WHERE subscription = $1 AND \"partition\" = $2"
								   "   AND next_offset = $4",
								   4, argtypes, args, NULL, false, 0);
	if (rc < 0)
		elog(ERROR, "could not write outbox.inbox_offset");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the stored offset of partition %d of inbox subscription \"%s\" changed while a rewind by timestamp was resolved",
						partition, subscription),
				 errhint("The rewind is resolved again from the stored offset.")));
	SPI_finish();
}

/*
 * inbox_storage_rewind_done: forget request of subscription, unless it
 * was replaced by a newer one meanwhile.  Needs a transaction with a
 * snapshot and SPI not connected.
 */
void
inbox_storage_rewind_done(const char *subscription, InboxRewindRequest *request)
{
	Oid			argtypes[3] = {TEXTOID, INT4OID, TEXTOID};
	Datum		args[3];

	SPI_connect();
	args[0] = CStringGetTextDatum(subscription);
	args[1] = Int32GetDatum(request->partition);
	args[2] = CStringGetTextDatum(request->requested_at);
	if (SPI_execute_with_args("DELETE FROM outbox.inbox_rewind_request"
							  " WHERE subscription = $1 AND \"partition\" = $2"
							  "   AND requested_at = $3::timestamptz",
							  3, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete from outbox.inbox_rewind_request");
	SPI_finish();
}
