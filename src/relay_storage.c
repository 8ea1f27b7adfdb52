/*-------------------------------------------------------------------------
 *
 * relay_storage.c
 *	  The worker's reads and writes of outbox storage: chunks of the open
 *	  batch (read by index, event_scan.c; the batch itself is kept in
 *	  memory, relay_batch.c), and, through kept SPI plans, the relay API
 *	  in SQL for what is rare (dead letters, held topics, maintenance),
 *	  so the worker and the SQL tests share one implementation of it.
 *
 * Every function here expects a transaction to be open (unless it says
 * otherwise) and SPI not to be connected; the caller commits.  Chunk data
 * is copied into chunk->cxt, which outlives the transaction: no snapshot
 * or transaction is ever held while Kafka acknowledgements are awaited.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/relay_storage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "relay.h"

static SPIPlanPtr dead_letter_plan = NULL;
static SPIPlanPtr maintain_plan = NULL;
static SPIPlanPtr hold_plan = NULL;
static SPIPlanPtr held_topics_plan = NULL;
static SPIPlanPtr held_events_plan = NULL;
static SPIPlanPtr release_plan = NULL;
static SPIPlanPtr note_attempt_plan = NULL;
static SPIPlanPtr dead_letter_held_plan = NULL;

static void copy_event(OutboxEvent *event, Datum *values, bool *nulls);
static void append_event(void *arg, Datum *values, bool *nulls);
static void copy_events(OutboxChunk *chunk);
static Datum id_array(List *ids);
static void record_held(OutboxChunk *chunk, int from, int upto,
						OutboxHeldRouteFn route_fn);

/*
 * outbox_storage_extension_version: the version of outbox_kafka installed
 * in this database (palloc'd in the current context), or NULL if it is not
 * installed.  Needs an open transaction.
 */
char *
outbox_storage_extension_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("outbox_kafka"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		value = heap_getattr(tuple, Anum_pg_extension_extversion,
										 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = TextDatumGetCString(value);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * copy_event: fill event from the values of one event (id, topic, key,
 * payload, payload_kind, headers, created_at, event_uuid), copying every value into
 * the current memory context (the chunk's).  Keys and headers are
 * converted to UTF-8 (payloads were stored in UTF-8 at enqueue); needs a
 * transaction.
 */
static void
copy_event(OutboxEvent *event, Datum *values, bool *nulls)
{
	memset(event, 0, sizeof(OutboxEvent));
	event->id = DatumGetInt64(values[0]);
	event->topic = TextDatumGetCString(values[1]);
	if (!nulls[2])
	{
		text	   *key = DatumGetTextPCopy(values[2]);

		/* keys are stored in the database encoding; Kafka gets UTF-8 */
		event->key = unconstify(char *,
								outbox_to_utf8(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key),
											   &event->key_len, "key"));
	}
	if (!nulls[3])
	{
		bytea	   *payload = DatumGetByteaPCopy(values[3]);

		event->payload = VARDATA_ANY(payload);
		event->payload_len = VARSIZE_ANY_EXHDR(payload);
	}
	event->payload_kind = DatumGetChar(values[4]);
	if (!nulls[5])
		event->headers = outbox_headers_to_utf8(DatumGetJsonbPCopy(values[5]));
	event->created_at = DatumGetTimestampTz(values[6]);
	/* events enqueued before 0.4 have no identity but their id */
	event->has_uuid = !nulls[7];
	if (event->has_uuid)
		event->event_uuid = *DatumGetUUIDP(values[7]);
	event->delivery = OUTBOX_DELIVERY_NONE;
	event->partition = -1;		/* not placed yet */
}

/*
 * copy_events: copy the rows of SPI_tuptable (id, topic, key, payload,
 * payload_kind, headers, created_at, event_uuid) into chunk's memory, replacing its
 * events.  SPI must be connected.
 */
static void
copy_events(OutboxChunk *chunk)
{
	MemoryContext old = MemoryContextSwitchTo(chunk->cxt);
	uint64		i;

	chunk->events = palloc(sizeof(OutboxEvent) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		Datum		values[8];
		bool		nulls[8];

		/* one pass over the tuple: the varlena columns make getattr costly */
		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, values, nulls);
		copy_event(&chunk->events[i], values, nulls);
		chunk->events[i].chunk = chunk;
	}
	chunk->nevents = (int) SPI_processed;
	MemoryContextSwitchTo(old);
}

/*
 * append_event: an OutboxEventEmitFn adding one event to the chunk arg,
 * whose events array has room for chunk->nevents + 1 (see
 * outbox_storage_fetch_chunk).
 */
static void
append_event(void *arg, Datum *values, bool *nulls)
{
	OutboxChunk *chunk = arg;
	MemoryContext old = MemoryContextSwitchTo(chunk->cxt);
	OutboxEvent *event = &chunk->events[chunk->nevents];

	copy_event(event, values, nulls);
	event->chunk = chunk;
	chunk->nevents++;
	MemoryContextSwitchTo(old);
}

/*
 * outbox_chunk_create: a new, empty chunk with a memory context of its own
 * under TopMemoryContext.
 */
OutboxChunk *
outbox_chunk_create(void)
{
	OutboxChunk *chunk = MemoryContextAllocZero(TopMemoryContext,
												sizeof(OutboxChunk));

	chunk->cxt = AllocSetContextCreate(TopMemoryContext,
									   "outbox_kafka chunk",
									   ALLOCSET_DEFAULT_SIZES);
	return chunk;
}

/*
 * outbox_chunk_free: free chunk and everything in it.  Nothing of it may be
 * in flight.
 */
void
outbox_chunk_free(OutboxChunk *chunk)
{
	Assert(chunk->in_flight == 0);
	MemoryContextDelete(chunk->cxt);
	pfree(chunk);
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
	chunk->produced_at = 0;
	chunk->batch_completed = false;
	chunk->acked = 0;
	chunk->queue_full = false;
	chunk->deferred = false;
	chunk->evidence_at = 0;
	chunk->durable_lsn = InvalidXLogRecPtr;
	chunk->lane_topic = NULL;
	chunk->lane_partition = -1;
}

/*
 * outbox_storage_fetch_chunk: load the next events (id order) of the open
 * batch into chunk, replacing what chunk held: at most max_events events
 * and, beyond the first, at most max_bytes of payload, key and headers.
 * With after_id 0 a batch is opened first if none is open (relay_batch.c)
 * and reading starts at the batch cursor; otherwise (reading ahead) only
 * events after after_id of the open batch are read.  chunk->nevents is 0
 * when there is nothing.  Needs an active snapshot.
 */
void
outbox_storage_fetch_chunk(OutboxChunk *chunk, int max_events,
						   int64 max_bytes, int64 after_id)
{
	Datum		args[4];
	int64		left;

	outbox_chunk_reset(chunk);
	if (!outbox_batch_open(max_events, max_bytes))
		return;

	outbox_batch_fetch_args(args, after_id);
	left = DatumGetInt64(args[3]) - DatumGetInt64(args[2]);
	/* room for every event the id range and max_events allow */
	chunk->events = MemoryContextAlloc(chunk->cxt,
									   sizeof(OutboxEvent) * Max(Min(left, max_events), 1));
	outbox_scan_events(args[0], args[1], DatumGetInt64(args[2]),
					   DatumGetInt64(args[3]), max_events, max_bytes,
					   append_event, chunk);
}

/*
 * outbox_event_resolved: may the batch cursor move past event?  Yes once
 * it is acknowledged, to be dead-lettered, or held aside with its topic.
 */
bool
outbox_event_resolved(OutboxEvent *event)
{
	return event->delivery == OUTBOX_DELIVERY_ACKED ||
		event->delivery == OUTBOX_DELIVERY_DEAD || event->held;
}

/*
 * id_array: a bigint[] datum of the int64 ids in ids (a List of pointers
 * to int64), in the current memory context.
 */
static Datum
id_array(List *ids)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(ids), 1));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, ids)
		elems[n++] = Int64GetDatum(*(int64 *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, INT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * record_held: move the held, unacknowledged events of chunk->events[from
 * .. upto) to their held queues, one call per queue (a topic, or one
 * partition of it), with the queue and the reason route_fn gives.  SPI
 * must be connected.
 */
static void
record_held(OutboxChunk *chunk, int from, int upto, OutboxHeldRouteFn route_fn)
{
	Oid			types[5] = {INT8ARRAYOID, TEXTOID, INT4OID, TEXTOID, TEXTOID};
	int32	   *queue = palloc(sizeof(int32) * (upto - from + 1));
	const char **reasons = palloc(sizeof(char *) * (upto - from + 1));
	const char **classes = palloc(sizeof(char *) * (upto - from + 1));
	bool	   *done = palloc0(sizeof(bool) * (upto - from + 1));
	int			i;

	for (i = from; i < upto; i++)
	{
		OutboxEvent *e = &chunk->events[i];

		if (!e->held || e->delivery == OUTBOX_DELIVERY_ACKED)
			done[i - from] = true;
		else
			queue[i - from] = route_fn(e, &reasons[i - from], &classes[i - from]);
	}
	for (i = from; i < upto; i++)
	{
		OutboxEvent *first = &chunk->events[i];
		List	   *ids = NIL;
		Datum		values[5];
		int			j;

		if (done[i - from])
			continue;
		for (j = i; j < upto; j++)
		{
			OutboxEvent *e = &chunk->events[j];

			if (!done[j - from] && queue[j - from] == queue[i - from] &&
				strcmp(e->topic, first->topic) == 0)
			{
				ids = lappend(ids, &e->id);
				done[j - from] = true;
			}
		}
		values[0] = id_array(ids);
		values[1] = CStringGetTextDatum(first->topic);
		values[2] = Int32GetDatum(queue[i - from]);
		values[3] = CStringGetTextDatum(reasons[i - from]);
		values[4] = CStringGetTextDatum(classes[i - from]);
		if (SPI_execute_plan(outbox_keep_plan(&hold_plan,
											  "SELECT outbox.hold_events($1, $2, $3, $4, $5)",
											  5, types),
							 values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "outbox.hold_events() failed");
		list_free(ids);
	}
	pfree(queue);
	pfree(reasons);
	pfree(classes);
	pfree(done);
}

/*
 * outbox_chunk_resolved_head: the length of the longest run of events of
 * chunk, from the first, that are acknowledged, to be dead-lettered or
 * held aside.  Needs no transaction.
 */
int
outbox_chunk_resolved_head(OutboxChunk *chunk)
{
	int			resolved = chunk->recorded;

	while (resolved < chunk->nevents &&
		   outbox_event_resolved(&chunk->events[resolved]))
		resolved++;
	return resolved;
}

/*
 * outbox_chunk_head_needs_storage: must recording the resolved head of
 * chunk up to resolved write to storage (dead letters or held events
 * among the events not recorded yet)?  Needs no transaction.
 */
bool
outbox_chunk_head_needs_storage(OutboxChunk *chunk, int resolved)
{
	int			i;

	for (i = chunk->recorded; i < resolved; i++)
		if (chunk->events[i].held || chunk->events[i].delivery == OUTBOX_DELIVERY_DEAD)
			return true;
	return false;
}

/*
 * outbox_storage_finish_chunk: record the resolved head of chunk, its
 * first resolved events (outbox_chunk_resolved_head).  With write
 * (outbox_chunk_head_needs_storage), the dead letters and held events of
 * it not yet recorded (from chunk->recorded on) are written, together with
 * the batch state, in the caller's transaction, which must then be open;
 * without, the cursor only moves in memory (relay_batch.c) and no
 * transaction is needed.  The caller stores resolved in chunk->recorded
 * once the transaction (if any) has committed.  Sets
 * chunk->batch_completed when that completed the open batch.
 */
void
outbox_storage_finish_chunk(OutboxChunk *chunk, int resolved, bool write,
							OutboxHeldRouteFn route_fn)
{
	Oid			dl_types[3] = {INT8OID, TEXTOID, INT4OID};
	Datum		values[3];
	int			i;

	if (resolved == chunk->recorded)
		return;

	if (write)
	{
		SPI_connect();
		record_held(chunk, chunk->recorded, resolved, route_fn);
		for (i = chunk->recorded; i < resolved; i++)
		{
			OutboxEvent *event = &chunk->events[i];

			if (event->delivery != OUTBOX_DELIVERY_DEAD || event->held)
				continue;
			values[0] = Int64GetDatum(event->id);
			values[1] = CStringGetTextDatum(outbox_error_text(event->error));
			values[2] = Int32GetDatum(Max(event->attempts, 1));
			if (SPI_execute_plan(outbox_keep_plan(&dead_letter_plan,
												  "SELECT outbox.dead_letter($1, $2, $3)",
												  3, dl_types),
								 values, NULL, false, 1) != SPI_OK_SELECT)
				elog(ERROR, "outbox.dead_letter() failed");
		}
		SPI_finish();
	}

	chunk->batch_completed = outbox_batch_advance(chunk->events[resolved - 1].id,
												  resolved - chunk->recorded);
	/* the cursor moves past them in the same transaction: never twice */
	if (write)
		outbox_batch_save();
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
	if (SPI_execute_plan(outbox_keep_plan(&maintain_plan,
								   "SELECT current_table FROM outbox.maintain()",
								   0, NULL),
						 NULL, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "outbox.maintain() failed");
	current = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return current;
}

/*
 * outbox_storage_held_topics: the topics and partitions held aside, as a
 * List of OutboxHeldTopicRow palloc'd in the current memory context.
 */
List *
outbox_storage_held_topics(void)
{
	List	   *topics = NIL;
	MemoryContext caller = CurrentMemoryContext;
	uint64		i;

	SPI_connect();
	if (SPI_execute_plan(outbox_keep_plan(&held_topics_plan,
								   "SELECT topic, held_since, reason, error_class, partition"
								   " FROM outbox.held_topic ORDER BY topic, partition",
								   0, NULL),
						 NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading outbox.held_topic failed");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(caller);
		OutboxHeldTopicRow *row = palloc(sizeof(OutboxHeldTopicRow));

		row->topic = SPI_getvalue(tuple, desc, 1);
		row->held_since = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 2, &isnull));
		row->reason = SPI_getvalue(tuple, desc, 3);
		row->error_class = SPI_getvalue(tuple, desc, 4);
		row->partition = DatumGetInt32(SPI_getbinval(tuple, desc, 5, &isnull));
		topics = lappend(topics, row);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return topics;
}

/*
 * outbox_storage_fetch_held: load the head of the held queue of topic's
 * partition (-1: the whole topic's) into chunk (a held lane chunk),
 * bounded like outbox_storage_fetch_chunk.
 */
void
outbox_storage_fetch_held(OutboxChunk *chunk, const char *topic,
						  int32 partition, int max_events, int64 max_bytes)
{
	Oid			types[4] = {TEXTOID, INT4OID, INT4OID, INT8OID};
	Datum		values[4];

	outbox_chunk_reset(chunk);
	SPI_connect();
	values[0] = CStringGetTextDatum(topic);
	values[1] = Int32GetDatum(partition);
	values[2] = Int32GetDatum(max_events);
	values[3] = Int64GetDatum(max_bytes);
	if (SPI_execute_plan(outbox_keep_plan(&held_events_plan,
								   "SELECT id, topic, key, payload, payload_kind, headers, created_at,"
								   " event_uuid FROM outbox.held_events($1, $2, $3, $4)",
								   4, types),
						 values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "outbox.held_events() failed");
	copy_events(chunk);
	chunk->lane_topic = MemoryContextStrdup(chunk->cxt, topic);
	chunk->lane_partition = partition;
	SPI_finish();
}

/*
 * outbox_storage_release_held: forget the published held events ids (a
 * List of pointers to int64) of the queue of topic's partition (-1: the
 * whole topic's); release it if the queue is then empty and release.
 * Returns true when it was released.
 */
bool
outbox_storage_release_held(const char *topic, int32 partition, List *ids,
							bool release)
{
	Oid			types[4] = {TEXTOID, INT4OID, INT8ARRAYOID, BOOLOID};
	Datum		values[4];
	bool		isnull;
	bool		released;

	SPI_connect();
	values[0] = CStringGetTextDatum(topic);
	values[1] = Int32GetDatum(partition);
	values[2] = id_array(ids);
	values[3] = BoolGetDatum(release);
	if (SPI_execute_plan(outbox_keep_plan(&release_plan,
								   "SELECT outbox.release_held_events($1, $2, $3, $4)",
								   4, types),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "outbox.release_held_events() failed");
	released = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return !isnull && released;
}

/*
 * outbox_storage_note_held_attempt: record a failed attempt to publish
 * the held queue of topic's partition (-1: the whole topic's), and why.
 */
void
outbox_storage_note_held_attempt(const char *topic, int32 partition,
								 const char *reason, const char *error_class)
{
	Oid			types[4] = {TEXTOID, INT4OID, TEXTOID, TEXTOID};
	Datum		values[4];

	SPI_connect();
	values[0] = CStringGetTextDatum(topic);
	values[1] = Int32GetDatum(partition);
	values[2] = CStringGetTextDatum(reason);
	values[3] = CStringGetTextDatum(error_class);
	if (SPI_execute_plan(outbox_keep_plan(&note_attempt_plan,
								   "SELECT outbox.note_held_attempt($1, $2, $3, $4)",
								   4, types),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "outbox.note_held_attempt() failed");
	SPI_finish();
}

/*
 * outbox_storage_dead_letter_held: move held events of the queue of
 * topic's partition (-1: the whole topic's) to the dead letters with
 * error: those of ids (a List of pointers to int64), or with ids NIL the
 * whole queue, which releases it.  Returns how many.
 */
int64
outbox_storage_dead_letter_held(const char *topic, int32 partition,
								const char *error, int attempts, List *ids)
{
	Oid			types[5] = {TEXTOID, INT4OID, TEXTOID, INT4OID, INT8ARRAYOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int64		n;

	SPI_connect();
	values[0] = CStringGetTextDatum(topic);
	values[1] = Int32GetDatum(partition);
	values[2] = CStringGetTextDatum(error);
	values[3] = Int32GetDatum(attempts);
	if (ids != NIL)
		values[4] = id_array(ids);
	else
		nulls[4] = 'n';
	if (SPI_execute_plan(outbox_keep_plan(&dead_letter_held_plan,
								   "SELECT outbox.dead_letter_held($1, $2, $3, $4, $5)",
								   5, types),
						 values, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "outbox.dead_letter_held() failed");
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return isnull ? 0 : n;
}
