/*-------------------------------------------------------------------------
 *
 * relay_batch.c
 *	  The worker's open batch, kept in memory and saved to
 *	  outbox.relay_state at most every so often.
 *
 * A batch is the set of events visible in one snapshot (its tick) and not
 * in the last completed tick (see outbox._batch_bounds).  The worker reads
 * outbox.relay_state once, then opens batches, moves their cursor and
 * completes them in memory: no row is locked or written, no transaction id
 * is used and no WAL is written per chunk or per batch.  The state is
 * saved (one UPDATE) when the worker decides so (publish.c: at most every
 * outbox_kafka.progress_save_interval, before maintenance, with dead letters and held events,
 * at shutdown).  A crash therefore publishes again what was acknowledged
 * since the last save, never less: the saved state is always one the
 * worker has been in.
 *
 * outbox.relay_state belongs to the running relay.  If anybody else
 * changes it meanwhile (the SQL relay API), the next save notices, raises
 * an error and the worker starts over from what the table says.  If the
 * extension is dropped and created again, the state in memory belongs to
 * tables that are gone: a relcache invalidation of outbox.relay_state makes
 * the next batch look whether the table is still the one the state was read
 * from, and raise an error before anything of the new tables is read with
 * the old state (which would publish events again once the save failed).
 *
 * Every function here expects a transaction to be open (except
 * outbox_batch_forget and outbox_batch_unsaved) and SPI not to be
 * connected.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/relay_batch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "relay.h"

typedef struct OpenBatch
{
	bool		loaded;			/* read from outbox.relay_state */
	Datum		prev_tick;		/* pg_snapshot of the last completed tick */
	TimestampTz prev_tick_at;
	Datum		tick;			/* pg_snapshot of the open batch; 0 if none */
	int64		first_id;
	int64		last_id;
	int64		events;
	int64		done_id;		/* the cursor: events up to here are done */
	int64		done_events;
	TimestampTz opened_at;
	int64		batches_done;	/* as the worker counts them */
	int64		published_max_id;
	bool		unsaved;		/* differs from outbox.relay_state */
	/* what outbox.relay_state holds, to notice changes by others */
	int64		saved_batches_done;
	int64		saved_done_id;	/* 0 for NULL (ids start at 1) */
} OpenBatch;

static OpenBatch batch;

/* outbox.relay_state the batch was read from, and whether it may be gone */
static Oid	state_relid = InvalidOid;
static bool state_invalidated = false;
static bool inval_callback_registered = false;

static SPIPlanPtr load_plan = NULL;
static SPIPlanPtr save_plan = NULL;

static Datum keep_snapshot(Datum snapshot, Datum old);
static int64 get_int8(int col, int64 if_null);
static void load_batch(void);
static void note_relation_inval(Datum arg, Oid relid);
static Oid	current_state_relid(void);
static void check_same_installation(void);

/*
 * keep_snapshot: copy the pg_snapshot snapshot into TopMemoryContext,
 * freeing old (if any).  Returns the copy.
 */
static Datum
keep_snapshot(Datum snapshot, Datum old)
{
	MemoryContext cxt = MemoryContextSwitchTo(TopMemoryContext);
	Datum		copy = datumCopy(snapshot, false, -1);

	MemoryContextSwitchTo(cxt);
	if (old != (Datum) 0)
		pfree(DatumGetPointer(old));
	return copy;
}

/*
 * get_int8: column col (1-based) of the first row of SPI_tuptable as an
 * int8, or if_null.  SPI must be connected.
 */
static int64
get_int8(int col, int64 if_null)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								  col, &isnull);

	return isnull ? if_null : DatumGetInt64(d);
}

/*
 * load_batch: read outbox.relay_state into batch.
 */
static void
load_batch(void)
{
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	SPI_connect();
	if (SPI_execute_plan(outbox_keep_plan(&load_plan,
										  "SELECT prev_tick, prev_tick_at, cur_tick, batch_first_id,"
										  " batch_last_id, batch_events, batch_done_id,"
										  " batch_done_events, batch_opened_at, batches_done,"
										  " published_max_id FROM outbox.relay_state",
										  0, NULL),
						 NULL, NULL, true, 2) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("outbox.relay_state does not hold exactly one row"),
				 errhint("Restore the row from a backup, or drop and re-create the extension.")));
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	batch.prev_tick = keep_snapshot(SPI_getbinval(tuple, desc, 1, &isnull),
									batch.prev_tick);
	batch.prev_tick_at = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 2, &isnull));
	d = SPI_getbinval(tuple, desc, 3, &isnull);
	if (batch.tick != (Datum) 0)
		pfree(DatumGetPointer(batch.tick));
	batch.tick = isnull ? (Datum) 0 : keep_snapshot(d, (Datum) 0);
	batch.first_id = get_int8(4, 0);
	batch.last_id = get_int8(5, 0);
	batch.events = get_int8(6, 0);
	batch.done_id = get_int8(7, 0);
	batch.done_events = get_int8(8, 0);
	d = SPI_getbinval(tuple, desc, 9, &isnull);
	batch.opened_at = isnull ? 0 : DatumGetTimestampTz(d);
	batch.batches_done = get_int8(10, 0);
	batch.published_max_id = get_int8(11, 0);
	SPI_finish();

	batch.saved_batches_done = batch.batches_done;
	batch.saved_done_id = batch.tick != (Datum) 0 ? batch.done_id : 0;
	batch.unsaved = false;
	batch.loaded = true;

	if (!inval_callback_registered)
	{
		CacheRegisterRelcacheCallback(note_relation_inval, (Datum) 0);
		inval_callback_registered = true;
	}
	state_relid = current_state_relid();
	state_invalidated = false;
}

/*
 * note_relation_inval: relcache invalidation callback: outbox.relay_state
 * (or every relation) may have changed.  Only notes it.
 */
static void
note_relation_inval(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == state_relid)
		state_invalidated = true;
}

/*
 * current_state_relid: the OID of outbox.relay_state now, or InvalidOid.
 */
static Oid
current_state_relid(void)
{
	Oid			nsp = get_namespace_oid("outbox", true);

	return OidIsValid(nsp) ? get_relname_relid("relay_state", nsp) : InvalidOid;
}

/*
 * check_same_installation: after an invalidation of outbox.relay_state, is
 * it still the table the batch was read from?  Raises an error if the
 * extension was dropped (and perhaps created again) meanwhile: the worker
 * then forgets everything and starts over from the new tables.
 */
static void
check_same_installation(void)
{
	if (!batch.loaded || !state_invalidated)
		return;
	state_invalidated = false;
	if (current_state_relid() != state_relid)
	{
		batch.loaded = false;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension outbox_kafka was dropped while the relay ran"),
				 errdetail("The relay forgets what it kept of the dropped installation and starts over from the tables of the current one."),
				 errhint("Exclude the database from \"outbox_kafka.databases\" before dropping the extension (see docs/usage.md).")));
	}
}

/*
 * outbox_batch_forget: read outbox.relay_state again before the next use
 * (after an error: what is in memory may belong to a dropped extension).
 * Needs no transaction.
 */
void
outbox_batch_forget(void)
{
	batch.loaded = false;
}

/*
 * outbox_batch_unsaved: does the batch differ from outbox.relay_state?
 * Needs no transaction.
 */
bool
outbox_batch_unsaved(void)
{
	return batch.loaded && batch.unsaved;
}

/*
 * outbox_batch_takes_new_tick: will the next outbox_batch_open take a new
 * snapshot?  Only when the state is loaded and no batch is open; false
 * when unknown.  Needs no transaction.
 */
bool
outbox_batch_takes_new_tick(void)
{
	return batch.loaded && batch.tick == (Datum) 0;
}

/*
 * outbox_batch_open: make sure a batch is open, opening one on a new
 * snapshot if none is.  Returns false when there is none: nothing
 * committed since the last completed tick (nothing is written then).
 * A batch opened here of at most keep_events events and keep_bytes bytes
 * is kept in memory for outbox_scan_events in this transaction (0: keep
 * none).  Needs an active snapshot.
 */
bool
outbox_batch_open(int keep_events, int64 keep_bytes)
{
	OutboxBatchBounds bounds;
	Datum		tick;

	check_same_installation();
	if (!batch.loaded)
		load_batch();
	if (batch.tick != (Datum) 0)
		return true;

	tick = OidFunctionCall0(F_PG_CURRENT_SNAPSHOT);
	outbox_scan_bounds(batch.prev_tick, tick, &bounds, keep_events, keep_bytes);
	if (bounds.events == 0)
		return false;
	batch.tick = keep_snapshot(tick, (Datum) 0);
	batch.first_id = bounds.first_id;
	batch.last_id = bounds.last_id;
	batch.events = bounds.events;
	batch.done_id = batch.first_id - 1;
	batch.done_events = 0;
	batch.opened_at = GetCurrentTimestamp();
	batch.unsaved = true;
	return true;
}

/*
 * outbox_batch_fetch_args: the open batch as the first four arguments of
 * outbox_scan_events (prev_tick, tick, after_id, last_id), reading after
 * after_id if that is past the cursor.  A batch must be open.
 */
void
outbox_batch_fetch_args(Datum *values, int64 after_id)
{
	Assert(batch.loaded && batch.tick != (Datum) 0);
	values[0] = batch.prev_tick;
	values[1] = batch.tick;
	values[2] = Int64GetDatum(Max(batch.done_id, after_id));
	values[3] = Int64GetDatum(batch.last_id);
}

/*
 * outbox_batch_advance: the events of the open batch up to up_to_id
 * (events of them) are published, dead-lettered or held.  Returns true
 * when that completes the batch, whose tick then becomes the last
 * completed one.  Nothing is written.
 */
bool
outbox_batch_advance(int64 up_to_id, int64 events)
{
	Assert(batch.loaded);
	if (IsTransactionState())
		check_same_installation();
	if (batch.tick == (Datum) 0 || up_to_id <= batch.done_id)
		return false;
	batch.unsaved = true;
	batch.published_max_id = Max(batch.published_max_id, Min(up_to_id, batch.last_id));
	if (up_to_id < batch.last_id)
	{
		batch.done_id = up_to_id;
		batch.done_events += events;
		return false;
	}
	if (batch.prev_tick != (Datum) 0)
		pfree(DatumGetPointer(batch.prev_tick));
	batch.prev_tick = batch.tick;
	batch.prev_tick_at = GetCurrentTimestamp();
	batch.tick = (Datum) 0;
	batch.batches_done++;
	return true;
}

/*
 * outbox_batch_save: write the batch to outbox.relay_state in the current
 * transaction (which the caller commits).  Raises an error if somebody
 * else changed the row since it was read or last saved.
 */
void
outbox_batch_save(void)
{
	Oid			types[13] = {PG_SNAPSHOTOID, TIMESTAMPTZOID, PG_SNAPSHOTOID,
		INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID,
	INT8OID, INT8OID, INT8OID};
	Datum		values[13];
	char		nulls[13];
	bool		open = batch.tick != (Datum) 0;
	int			i;

	check_same_installation();
	if (!batch.loaded || !batch.unsaved)
		return;
	memset(nulls, ' ', sizeof(nulls));
	values[0] = batch.prev_tick;
	values[1] = TimestampTzGetDatum(batch.prev_tick_at);
	values[2] = batch.tick;
	values[3] = Int64GetDatum(batch.first_id);
	values[4] = Int64GetDatum(batch.last_id);
	values[5] = Int64GetDatum(batch.events);
	values[6] = Int64GetDatum(batch.done_id);
	values[7] = Int64GetDatum(batch.done_events);
	values[8] = TimestampTzGetDatum(batch.opened_at);
	if (!open)
		for (i = 2; i <= 8; i++)
			nulls[i] = 'n';
	values[9] = Int64GetDatum(batch.batches_done);
	values[10] = Int64GetDatum(batch.published_max_id);
	values[11] = Int64GetDatum(batch.saved_batches_done);
	values[12] = Int64GetDatum(batch.saved_done_id);

	SPI_connect();
	if (SPI_execute_plan(outbox_keep_plan(&save_plan,
										  "UPDATE outbox.relay_state"
										  " SET prev_tick = $1, prev_tick_at = $2, cur_tick = $3,"
										  " batch_first_id = $4, batch_last_id = $5, batch_events = $6,"
										  " batch_done_id = $7, batch_done_events = $8,"
										  " batch_opened_at = $9, batches_done = $10,"
										  " published_max_id = greatest(published_max_id, $11)"
										  " WHERE batches_done = $12"
										  " AND coalesce(batch_done_id, 0) = $13",
										  13, types),
						 values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "saving outbox.relay_state failed");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("outbox.relay_state was changed by somebody other than the relay"),
				 errdetail("The relay keeps its progress in memory and saves it to outbox.relay_state; it expected %lld completed batches there.",
						   (long long) batch.saved_batches_done),
				 errhint("Do not write to outbox.relay_state while the relay runs.  The relay now starts over from what the table says; events may be published again.")));
	SPI_finish();

	batch.saved_batches_done = batch.batches_done;
	batch.saved_done_id = open ? batch.done_id : 0;
	batch.unsaved = false;
}
