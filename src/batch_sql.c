/*-------------------------------------------------------------------------
 *
 * batch_sql.c
 *	  outbox._batch_bounds and outbox._batch_events: the relay's reads of a
 *	  batch (event_scan.c), callable from SQL.
 *
 * What a batch holds is implemented once, in event_scan.c, which the
 * worker runs.  These two functions give SQL the same reads, so that the
 * regression and isolation tests (G2: no event skipped under concurrent
 * commits, none of a rolled-back transaction) and anyone inspecting a
 * batch run the very code that publishes.  Owner-only, like the rest of
 * the relay's internals.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/batch_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/tuplestore.h"

#include "relay.h"

PG_FUNCTION_INFO_V1(outbox_batch_bounds_sql);
PG_FUNCTION_INFO_V1(outbox_batch_events_sql);

static void put_event_row(void *arg, Datum *values, bool *nulls);

/*
 * outbox_batch_bounds_sql: outbox._batch_bounds(prev_tick, tick): one row,
 * the first and last id and the number of the events visible in tick and
 * not in prev_tick (the ids NULL when there is none).  Strict.
 */
Datum
outbox_batch_bounds_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	OutboxBatchBounds bounds;
	Datum		values[3];
	bool		nulls[3];

	InitMaterializedSRF(fcinfo, 0);
	outbox_scan_bounds(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), &bounds, 0, 0);
	values[0] = Int64GetDatum(bounds.first_id);
	values[1] = Int64GetDatum(bounds.last_id);
	values[2] = Int64GetDatum(bounds.events);
	nulls[0] = nulls[1] = (bounds.events == 0);
	nulls[2] = false;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/*
 * put_event_row: an OutboxEventEmitFn adding one event to the result set
 * arg (a ReturnSetInfo), as a row of outbox.event: id, txid, created_at,
 * topic, key, payload, payload_kind, headers, event_uuid.  Values kept
 * outside the row (TOAST) are fetched now: the row outlives the scan.
 */
static void
put_event_row(void *arg, Datum *values, bool *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) arg;
	static const int from[] = {0, 8, 6, 1, 2, 3, 4, 5, 7};
	Datum		row[lengthof(from)];
	bool		row_nulls[lengthof(from)];
	int			i;

	for (i = 0; i < lengthof(from); i++)
	{
		row[i] = values[from[i]];
		row_nulls[i] = nulls[from[i]];
	}
	/* topic, key, payload, headers */
	for (i = 3; i <= 7; i++)
		if (i != 6 && !row_nulls[i])
			row[i] = PointerGetDatum(PG_DETOAST_DATUM_PACKED(row[i]));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, row_nulls);
}

/*
 * outbox_batch_events_sql: outbox._batch_events(prev_tick, tick, after_id,
 * last_id, max_events, max_bytes): the events of the batch of tick after
 * prev_tick with after_id < id <= last_id, in id order, at most
 * max_events and, beyond the first, at most max_bytes (NULL: no bound) of
 * payload, key and headers.  No rows when any other argument is NULL.
 */
Datum
outbox_batch_events_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			return (Datum) 0;
	outbox_scan_events(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1),
					   PG_GETARG_INT64(2), PG_GETARG_INT64(3),
					   PG_GETARG_INT32(4),
					   PG_ARGISNULL(5) ? PG_INT64_MAX : PG_GETARG_INT64(5),
					   put_event_row, rsinfo);
	return (Datum) 0;
}
