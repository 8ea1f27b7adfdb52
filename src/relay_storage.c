/*-------------------------------------------------------------------------
 *
 * relay_storage.c
 *	  The worker's side of the relay API in SQL (outbox.open_batch,
 *	  next_events, ack_events, dead_letter, maintain), called through
 *	  kept SPI plans so the worker and the SQL tests share one
 *	  implementation of snapshot batching.
 *
 * Every function here expects a transaction to be open and SPI not to be
 * connected; the caller commits.  Chunk data is copied into chunk->cxt,
 * which outlives the transaction: no snapshot or transaction is ever held
 * while Kafka acknowledgements are awaited.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/relay_storage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "relay.h"

static SPIPlanPtr open_plan = NULL;
static SPIPlanPtr next_plan = NULL;
static SPIPlanPtr ack_plan = NULL;
static SPIPlanPtr dead_letter_plan = NULL;
static SPIPlanPtr maintain_plan = NULL;

static SPIPlanPtr keep_plan(SPIPlanPtr *plan, const char *sql, int nargs,
							Oid *argtypes);
static void copy_event(OutboxEvent *event, HeapTuple tuple, TupleDesc desc);

/*
 * keep_plan: prepare sql once per process and keep the plan.  The plan
 * cache re-plans by itself if the extension is dropped and re-created.
 */
static SPIPlanPtr
keep_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare(\"%s\") failed: %s", sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	return *plan;
}

/*
 * outbox_storage_extension_ready: is the extension installed in this
 * database?  Needs an open transaction.
 */
bool
outbox_storage_extension_ready(void)
{
	return OidIsValid(get_extension_oid("outbox_kafka", true));
}

/*
 * copy_event: fill event from one row of next_events(), copying every
 * value into the current memory context (the chunk's).
 */
static void
copy_event(OutboxEvent *event, HeapTuple tuple, TupleDesc desc)
{
	Datum		values[7];
	bool		nulls[7];

	/* one pass over the tuple: the varlena columns make getattr costly */
	heap_deform_tuple(tuple, desc, values, nulls);

	memset(event, 0, sizeof(OutboxEvent));
	event->id = DatumGetInt64(values[0]);
	event->topic = TextDatumGetCString(values[1]);
	if (!nulls[2])
	{
		text	   *key = DatumGetTextPCopy(values[2]);

		event->key = VARDATA_ANY(key);
		event->key_len = VARSIZE_ANY_EXHDR(key);
	}
	if (!nulls[3])
	{
		bytea	   *payload = DatumGetByteaPCopy(values[3]);

		event->payload = VARDATA_ANY(payload);
		event->payload_len = VARSIZE_ANY_EXHDR(payload);
	}
	event->payload_kind = DatumGetChar(values[4]);
	if (!nulls[5])
		event->headers = DatumGetJsonbPCopy(values[5]);
	event->created_at = DatumGetTimestampTz(values[6]);
	event->delivery = OUTBOX_DELIVERY_NONE;
}

/*
 * outbox_chunk_reset: empty chunk and free its events.  Nothing of it may
 * be in flight.
 */
void
outbox_chunk_reset(OutboxChunk *chunk)
{
	MemoryContextReset(chunk->cxt);
	chunk->events = NULL;
	chunk->nevents = 0;
	chunk->in_flight = 0;
	chunk->recorded = 0;
}

/*
 * outbox_storage_fetch_chunk: load the next max_events events (id order)
 * of the open batch into chunk, replacing what chunk held.  With after_id
 * 0 the batch is opened first if none is open and reading starts at the
 * batch cursor; otherwise (reading ahead) only events after after_id of an
 * already open batch are read.  chunk->nevents is 0 when there is nothing.
 */
void
outbox_storage_fetch_chunk(OutboxChunk *chunk, int max_events, int64 after_id)
{
	Oid			argtypes[2] = {INT4OID, INT8OID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	bool		isnull;
	MemoryContext old;
	uint64		i;

	outbox_chunk_reset(chunk);

	SPI_connect();
	if (after_id == 0)
	{
		int64		events;

		if (SPI_execute_plan(keep_plan(&open_plan,
									   "SELECT events FROM outbox.open_batch()",
									   0, NULL),
							 NULL, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "outbox.open_batch() failed");
		events = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull || events == 0)
		{
			SPI_finish();
			return;
		}
		nulls[1] = 'n';
	}

	values[0] = Int32GetDatum(max_events);
	values[1] = Int64GetDatum(after_id);
	if (SPI_execute_plan(keep_plan(&next_plan,
								   "SELECT id, topic, key, payload, payload_kind, headers, created_at"
								   " FROM outbox.next_events($1, $2)",
								   2, argtypes),
						 values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "outbox.next_events() failed");

	old = MemoryContextSwitchTo(chunk->cxt);
	chunk->events = palloc(sizeof(OutboxEvent) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
		copy_event(&chunk->events[i], SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	chunk->nevents = (int) SPI_processed;
	MemoryContextSwitchTo(old);

	SPI_finish();
}

/*
 * outbox_storage_finish_chunk: record the resolved head of chunk: the
 * longest run of events, from the first, that are acknowledged or to be
 * dead-lettered.  Dead letters of the run not yet recorded (from
 * chunk->recorded on) are written, then the batch cursor moves past the
 * run.  Returns the run's length; the caller stores it in chunk->recorded
 * once the transaction has committed.
 */
int
outbox_storage_finish_chunk(OutboxChunk *chunk)
{
	Oid			dl_types[3] = {INT8OID, TEXTOID, INT4OID};
	Oid			ack_types[2] = {INT8OID, INT8OID};
	Datum		values[3];
	int			resolved = chunk->recorded;
	int			i;

	while (resolved < chunk->nevents &&
		   (chunk->events[resolved].delivery == OUTBOX_DELIVERY_ACKED ||
			chunk->events[resolved].delivery == OUTBOX_DELIVERY_DEAD))
		resolved++;
	if (resolved == chunk->recorded)
		return resolved;

	SPI_connect();
	for (i = chunk->recorded; i < resolved; i++)
	{
		OutboxEvent *event = &chunk->events[i];

		if (event->delivery != OUTBOX_DELIVERY_DEAD)
			continue;
		values[0] = Int64GetDatum(event->id);
		values[1] = CStringGetTextDatum(outbox_error_text(event->error));
		values[2] = Int32GetDatum(Max(event->attempts, 1));
		if (SPI_execute_plan(keep_plan(&dead_letter_plan,
									   "SELECT outbox.dead_letter($1, $2, $3)",
									   3, dl_types),
							 values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "outbox.dead_letter() failed");
	}

	values[0] = Int64GetDatum(chunk->events[resolved - 1].id);
	values[1] = Int64GetDatum(resolved - chunk->recorded);
	if (SPI_execute_plan(keep_plan(&ack_plan,
								   "SELECT outbox.ack_events($1, $2)",
								   2, ack_types),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "outbox.ack_events() failed");
	SPI_finish();
	return resolved;
}

/*
 * outbox_storage_maintain: rotate and truncate the event tables.  Returns
 * the number of the event table that now takes new rows.
 */
int
outbox_storage_maintain(void)
{
	bool		isnull;
	int			current;

	SPI_connect();
	if (SPI_execute_plan(keep_plan(&maintain_plan,
								   "SELECT current_table FROM outbox.maintain()",
								   0, NULL),
						 NULL, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "outbox.maintain() failed");
	current = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return current;
}
