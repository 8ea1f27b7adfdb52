/*-------------------------------------------------------------------------
 *
 * event_scan.c
 *	  The relay's hot path: reading a batch's bounds and events straight
 *	  from the indexes of the event tables, without the executor.
 *
 * Each pass of the relay reads a handful of events.  Through SQL, most of
 * its cost was setting up a plan of a dozen nodes over three inherited
 * tables; here the same reads are plain index scans.  They are the one
 * definition of a batch: SQL reads them through outbox._batch_bounds and
 * outbox._batch_events (batch_sql.c), so the regression and isolation
 * tests hold this code to the documented semantics:
 *
 * - the bounds of the batch of tick after prev_tick: events whose txid is
 *   visible in tick and either at or past prev_tick's xmax, or in progress
 *   at prev_tick (two index probes on txid per table);
 * - its events in an id range, in id order (a merge of one primary key
 *   scan per table), at most max_events and, beyond the first, at most
 *   max_bytes of payload, key (raw lengths) and headers (stored size).
 *
 * A batch of one transaction is usually one event.  For it, what the
 * catalogs say of the tables (OIDs, column numbers) is kept across
 * transactions until a relcache invalidation, and the worker's bounds scan
 * copies the events it visits of a small batch, so that reading them in
 * the same transaction needs no second scan.  The SQL functions keep no
 * events.
 *
 * Rows are read with the active snapshot, which is never older than the
 * ticks.  Relations are opened with AccessShareLock, kept to the end of
 * the transaction like any query's.  Needs a transaction with an active
 * snapshot.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/event_scan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

#include "pg_compat.h"
#include "relay.h"

/* the rotating event tables outbox.event_0 .. event_2 */
#define EVENT_TABLES		3

/* the columns of an event table that the relay reads */
enum EventColumn
{
	COL_ID, COL_TXID, COL_TOPIC, COL_KEY, COL_PAYLOAD, COL_KIND, COL_HEADERS,
	COL_CREATED_AT, COL_EVENT_UUID, NUM_COLS
};

static const char *const column_names[NUM_COLS] = {
	"id", "txid", "topic", "key", "payload", "payload_kind", "headers",
	"created_at", "event_uuid"
};

/* the columns of an event in the order emit takes them */
#define EMIT_VALUES		9
static const enum EventColumn emit_columns[EMIT_VALUES] = {
	COL_ID, COL_TOPIC, COL_KEY, COL_PAYLOAD, COL_KIND, COL_HEADERS,
	COL_CREATED_AT, COL_EVENT_UUID, COL_TXID
};

/* the index a scan reads an event table by */
typedef enum ScanKind
{
	SCAN_BY_TXID,				/* event_<n>_txid_idx: the bounds */
	SCAN_BY_ID,					/* event_<n>_pkey: the events */
	SCAN_KINDS
} ScanKind;

/*
 * What the catalogs say of one event table, kept across transactions until
 * a relcache invalidation of the table or one of its indexes
 */
typedef struct EventTableIds
{
	Oid			heap;
	Oid			index[SCAN_KINDS];
	AttrNumber	attnum[NUM_COLS];	/* InvalidAttrNumber: event_uuid of
									 * a schema older than 0.4 */
} EventTableIds;

/* one event of the kept batch, its values in the order emit takes them */
typedef struct KeptEvent
{
	int64		id;
	Datum		values[EMIT_VALUES];
	bool		nulls[EMIT_VALUES];
} KeptEvent;

/*
 * The events of the batch whose bounds were just read, copied by that scan
 * (outbox_scan_bounds with keep_events > 0) into TopTransactionContext so
 * that outbox_scan_events of the same batch in the same transaction needs
 * no second scan.  Forgotten at the end of the transaction.
 */
typedef struct KeptBatch
{
	bool		keeping;		/* the bounds scan is copying events */
	bool		valid;			/* events holds the whole batch */
	Datum		prev_tick;		/* the batch's ticks (copies) */
	Datum		tick;
	int			max_events;		/* keep no more than that many events */
	int64		max_bytes;		/* nor more than that many bytes */
	int64		bytes;
	int			nevents;
	int			allocated;
	KeptEvent  *events;			/* in id order once valid */
} KeptBatch;

static KeptBatch kept;
static bool xact_callback_registered = false;

static EventTableIds known_tables[EVENT_TABLES];
static bool known_tables_valid = false;
static bool inval_callback_registered = false;
static bool looking_up = false;		/* find_event_tables is filling it */
static bool lookup_disturbed = false;	/* an invalidation came meanwhile */

/* one event table open for a scan */
typedef struct EventTable
{
	Relation	heap;
	Relation	index;
	AttrNumber	attnum[NUM_COLS];	/* InvalidAttrNumber: event_uuid of
									 * a schema older than 0.4 */
	IndexScanDesc scan;
	TupleTableSlot *slot;
	bool		has_row;		/* slot holds the next row of the scan */
} EventTable;

static void find_event_table(EventTableIds *ids, Oid nsp, int table_no);
static void find_event_tables(void);
static void forget_event_tables(Datum arg, Oid relid);
static void open_event_table(EventTable *t, int table_no, ScanKind scan_kind);
static void close_event_table(EventTable *t);
static Datum column(EventTable *t, int col, bool *isnull);
static void scan_txids(EventTable *t, StrategyNumber lo_strategy, Datum lo,
					   Datum hi, Datum tick, OutboxBatchBounds *bounds);
static List *in_progress_txids(Datum snapshot);
static bool next_visible(EventTable *t, Datum prev_tick, Datum tick);
static void event_values(EventTable *t, Datum *values, bool *nulls);
static void forget_kept_batch(XactEvent event, void *arg);
static void start_keeping(Datum prev_tick, Datum tick, int max_events,
						  int64 max_bytes);
static void keep_event(EventTable *t);
static int	compare_kept_ids(const void *a, const void *b);
static bool same_snapshot(Datum a, Datum b);
static bool emit_within_limits(Datum *values, bool *nulls, int *n,
							   int64 *bytes, int64 max_bytes,
							   OutboxEventEmitFn emit, void *arg);

/*
 * find_event_table: the OIDs of outbox.event_<table_no> and its two
 * indexes, and its columns by name, into ids.  Raises an error if any is
 * missing.
 */
static void
find_event_table(EventTableIds *ids, Oid nsp, int table_no)
{
	char		name[NAMEDATALEN];
	Relation	heap;
	TupleDesc	desc;
	int			col;
	int			i;

	snprintf(name, sizeof(name), "event_%d", table_no);
	ids->heap = get_relname_relid(name, nsp);
	snprintf(name, sizeof(name), "event_%d_txid_idx", table_no);
	ids->index[SCAN_BY_TXID] = get_relname_relid(name, nsp);
	if (OidIsValid(ids->index[SCAN_BY_TXID]))
	{
		snprintf(name, sizeof(name), "event_%d_pkey", table_no);
		ids->index[SCAN_BY_ID] = get_relname_relid(name, nsp);
	}
	if (!OidIsValid(ids->heap) || !OidIsValid(ids->index[SCAN_BY_TXID]) ||
		!OidIsValid(ids->index[SCAN_BY_ID]))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("outbox_kafka event table outbox.event_%d or its index %s is missing",
						table_no, name),
				 errhint("Drop and re-create the extension, or restore the schema from a backup.")));

	heap = table_open(ids->heap, AccessShareLock);
	desc = RelationGetDescr(heap);
	for (col = 0; col < NUM_COLS; col++)
	{
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped &&
				strcmp(NameStr(att->attname), column_names[col]) == 0)
				break;
		}
		if (i == desc->natts && col == COL_EVENT_UUID)
		{
			ids->attnum[col] = InvalidAttrNumber;
			continue;
		}
		if (i == desc->natts)
			elog(ERROR, "column \"%s\" of outbox.event_%d is missing",
				 column_names[col], table_no);
		ids->attnum[col] = i + 1;
	}
	table_close(heap, NoLock);
}

/*
 * find_event_tables: fill known_tables from the catalogs unless it is
 * valid, and register the invalidation callback that keeps it valid.
 * Needs a transaction.
 */
static void
find_event_tables(void)
{
	Oid			nsp;
	int			i;

	if (known_tables_valid)
		return;
	if (!inval_callback_registered)
	{
		CacheRegisterRelcacheCallback(forget_event_tables, (Datum) 0);
		inval_callback_registered = true;
	}

	/*
	 * Any invalidation that arrives while the locks are taken below may
	 * concern what was already looked up: then it is looked up again on
	 * the next open.
	 */
	looking_up = true;
	lookup_disturbed = false;
	nsp = get_namespace_oid("outbox", false);
	for (i = 0; i < EVENT_TABLES; i++)
		find_event_table(&known_tables[i], nsp, i);
	looking_up = false;
	known_tables_valid = !lookup_disturbed;
}

/*
 * forget_event_tables: relcache invalidation callback: if relid is one of
 * the kept event tables or indexes (InvalidOid: any relation may have
 * changed), look them up again before the next use.  Only notes it.
 */
static void
forget_event_tables(Datum arg, Oid relid)
{
	int			i;
	int			j;

	if (looking_up)
		lookup_disturbed = true;
	if (relid == InvalidOid)
	{
		known_tables_valid = false;
		return;
	}
	for (i = 0; i < EVENT_TABLES; i++)
	{
		if (known_tables[i].heap == relid)
			known_tables_valid = false;
		for (j = 0; j < SCAN_KINDS; j++)
			if (known_tables[i].index[j] == relid)
				known_tables_valid = false;
	}
}

/*
 * open_event_table: open outbox.event_<table_no> and its index for
 * scan_kind with AccessShareLock (held to the end of the transaction).
 * The OIDs and column numbers come from known_tables, looked up again
 * when an invalidation made them doubtful, including one that arrives
 * while the locks are taken (the tables were dropped or altered
 * meanwhile).  Needs a transaction.
 */
static void
open_event_table(EventTable *t, int table_no, ScanKind scan_kind)
{
	for (;;)
	{
		EventTableIds *ids;

		find_event_tables();
		ids = &known_tables[table_no];
		memset(t, 0, sizeof(EventTable));
		t->heap = try_table_open(ids->heap, AccessShareLock);

		/*
		 * With the table locked and nothing invalidated, its indexes are
		 * the kept ones: dropping one locks the table too.
		 */
		if (t->heap != NULL && known_tables_valid)
		{
			t->index = index_open(ids->index[scan_kind], AccessShareLock);
			if (known_tables_valid)
			{
				memcpy(t->attnum, ids->attnum, sizeof(t->attnum));
				break;
			}
			index_close(t->index, NoLock);
		}
		/* changed while locking: look again (a missing one raises then) */
		if (t->heap != NULL)
			table_close(t->heap, NoLock);
		known_tables_valid = false;
	}
	t->slot = table_slot_create(t->heap, NULL);
}

/*
 * close_event_table: end the scan (if any) and close t; the locks stay
 * until the end of the transaction.
 */
static void
close_event_table(EventTable *t)
{
	if (t->scan != NULL)
		index_endscan(t->scan);
	ExecDropSingleTupleTableSlot(t->slot);
	index_close(t->index, NoLock);
	table_close(t->heap, NoLock);
}

/*
 * column: the value of col in the row t->slot holds (NULL for a column the
 * table lacks).
 */
static Datum
column(EventTable *t, int col, bool *isnull)
{
	if (t->attnum[col] == InvalidAttrNumber)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return slot_getattr(t->slot, t->attnum[col], isnull);
}

/*
 * in_progress_txids: the transactions in progress at snapshot (its xip),
 * as a List of palloc'd xid8 Datums.
 */
static List *
in_progress_txids(Datum snapshot)
{
	char	   *text = DatumGetCString(DirectFunctionCall1(pg_snapshot_out, snapshot));
	char	   *p;
	List	   *txids = NIL;

	/* xmin:xmax:xip1,xip2,... */
	p = strchr(text, ':');
	p = p ? strchr(p + 1, ':') : NULL;
	if (p == NULL)
		elog(ERROR, "malformed pg_snapshot \"%s\"", text);
	p++;
	while (*p != '\0')
	{
		char	   *end;
		uint64		xid = strtou64(p, &end, 10);
		Datum	   *d = palloc(sizeof(Datum));

		if (end == p)
			elog(ERROR, "malformed pg_snapshot \"%s\"", text);
		*d = FullTransactionIdGetDatum(FullTransactionIdFromU64(xid));
		txids = lappend(txids, d);
		p = *end == ',' ? end + 1 : end;
	}
	return txids;
}

/*
 * scan_txids: add to bounds the events of t whose txid is within [lo, hi)
 * (with lo_strategy BTGreaterEqualStrategyNumber) or equal to lo (with
 * BTEqualStrategyNumber; hi is ignored) and visible in tick.  t is open on
 * its txid index.
 */
static void
scan_txids(EventTable *t, StrategyNumber lo_strategy, Datum lo, Datum hi,
		   Datum tick, OutboxBatchBounds *bounds)
{
	ScanKeyData keys[2];
	int			nkeys = 1;

	ScanKeyInit(&keys[0], 1, lo_strategy,
				lo_strategy == BTEqualStrategyNumber ? F_XID8EQ : F_XID8GE, lo);
	if (lo_strategy != BTEqualStrategyNumber)
		ScanKeyInit(&keys[nkeys++], 1, BTLessStrategyNumber, F_XID8LT, hi);

	if (t->scan == NULL)
		t->scan = outbox_index_beginscan(t->heap, t->index, GetActiveSnapshot(),
										 nkeys, 0);
	index_rescan(t->scan, keys, nkeys, NULL, 0);
	while (index_getnext_slot(t->scan, ForwardScanDirection, t->slot))
	{
		bool		isnull;
		Datum		txid = column(t, COL_TXID, &isnull);
		int64		id;

		if (!DatumGetBool(DirectFunctionCall2(pg_visible_in_snapshot, txid, tick)))
			continue;
		id = DatumGetInt64(column(t, COL_ID, &isnull));
		if (kept.keeping)
			keep_event(t);
		if (bounds->events == 0 || id < bounds->first_id)
			bounds->first_id = id;
		if (bounds->events == 0 || id > bounds->last_id)
			bounds->last_id = id;
		bounds->events++;
	}
}

/*
 * outbox_scan_bounds: the bounds of the batch of tick after prev_tick
 * (both pg_snapshot Datums), as outbox._batch_bounds returns them.  With
 * keep_events > 0, a batch of at most keep_events events and max_bytes
 * bytes (stored sizes) is also copied, for outbox_scan_events of the same
 * batch later in this transaction.
 */
void
outbox_scan_bounds(Datum prev_tick, Datum tick, OutboxBatchBounds *bounds,
				   int keep_events, int64 max_bytes)
{
	Datum		lo = DirectFunctionCall1(pg_snapshot_xmax, prev_tick);
	Datum		hi = DirectFunctionCall1(pg_snapshot_xmax, tick);
	List	   *xip = in_progress_txids(prev_tick);
	int			i;

	memset(bounds, 0, sizeof(OutboxBatchBounds));
	kept.valid = false;
	kept.keeping = false;
	if (keep_events > 0)
		start_keeping(prev_tick, tick, keep_events, max_bytes);
	for (i = 0; i < EVENT_TABLES; i++)
	{
		EventTable	t;
		ListCell   *lc;

		open_event_table(&t, i, SCAN_BY_TXID);
		scan_txids(&t, BTGreaterEqualStrategyNumber, lo, hi, tick, bounds);
		foreach(lc, xip)
			scan_txids(&t, BTEqualStrategyNumber, *(Datum *) lfirst(lc), (Datum) 0,
					   tick, bounds);
		close_event_table(&t);
	}
	list_free_deep(xip);

	/*
	 * The events kept are those of the batch: visible in tick and either
	 * at or past prev_tick's xmax or in progress at prev_tick, which is
	 * what "visible in tick and not in prev_tick" means (a txid below
	 * prev_tick's xmin is visible in it, and in neither set).
	 */
	if (kept.keeping)
	{
		kept.keeping = false;
		qsort(kept.events, kept.nevents, sizeof(KeptEvent), compare_kept_ids);
		kept.valid = true;
	}
}

/*
 * forget_kept_batch: transaction callback: whatever ends (or prepares) the
 * transaction forgets the kept batch, whose memory goes with it.
 */
static void
forget_kept_batch(XactEvent event, void *arg)
{
	memset(&kept, 0, sizeof(KeptBatch));
}

/*
 * start_keeping: make the bounds scan that follows copy the events of the
 * batch of tick after prev_tick, up to max_events events and max_bytes
 * bytes.  Needs a transaction.
 */
static void
start_keeping(Datum prev_tick, Datum tick, int max_events, int64 max_bytes)
{
	MemoryContext old;

	if (!xact_callback_registered)
	{
		RegisterXactCallback(forget_kept_batch, NULL);
		xact_callback_registered = true;
	}
	memset(&kept, 0, sizeof(KeptBatch));
	old = MemoryContextSwitchTo(TopTransactionContext);
	kept.prev_tick = datumCopy(prev_tick, false, -1);
	kept.tick = datumCopy(tick, false, -1);
	MemoryContextSwitchTo(old);
	kept.max_events = max_events;
	kept.max_bytes = max_bytes;
	kept.keeping = true;
}

/*
 * keep_event: copy the event in t->slot (of the batch) into the kept
 * batch, or stop keeping if the batch is too large to keep.
 */
static void
keep_event(EventTable *t)
{
	TupleDesc	desc = RelationGetDescr(t->heap);
	MemoryContext old;
	KeptEvent  *event;
	Datum		values[EMIT_VALUES];
	bool		nulls[EMIT_VALUES];
	int			i;

	if (kept.nevents >= kept.max_events)
	{
		kept.keeping = false;
		return;
	}
	event_values(t, values, nulls);
	old = MemoryContextSwitchTo(TopTransactionContext);
	if (kept.nevents == kept.allocated)
	{
		kept.allocated = kept.allocated == 0 ? 4 : kept.allocated * 2;
		kept.events = kept.events == NULL ?
			palloc(sizeof(KeptEvent) * kept.allocated) :
			repalloc(kept.events, sizeof(KeptEvent) * kept.allocated);
	}
	event = &kept.events[kept.nevents];
	event->id = DatumGetInt64(values[0]);
	for (i = 0; i < EMIT_VALUES; i++)
	{
		Form_pg_attribute att;

		event->nulls[i] = nulls[i];
		event->values[i] = (Datum) 0;
		if (nulls[i])
			continue;
		att = TupleDescAttr(desc, t->attnum[emit_columns[i]] - 1);
		event->values[i] = datumCopy(values[i], att->attbyval, att->attlen);
		if (!att->attbyval)
			kept.bytes += datumGetSize(values[i], att->attbyval, att->attlen);
	}
	MemoryContextSwitchTo(old);
	kept.nevents++;
	if (kept.bytes > kept.max_bytes)
		kept.keeping = false;
}

/*
 * compare_kept_ids: qsort comparator of KeptEvents by id.
 */
static int
compare_kept_ids(const void *a, const void *b)
{
	int64		ida = ((const KeptEvent *) a)->id;
	int64		idb = ((const KeptEvent *) b)->id;

	return ida < idb ? -1 : ida > idb ? 1 : 0;
}

/*
 * same_snapshot: are the pg_snapshot Datums a and b equal?
 */
static bool
same_snapshot(Datum a, Datum b)
{
	Size		len = VARSIZE_ANY(DatumGetPointer(a));

	return len == VARSIZE_ANY(DatumGetPointer(b)) &&
		memcmp(DatumGetPointer(a), DatumGetPointer(b), len) == 0;
}

/*
 * next_visible: advance t's scan to its next row of the batch (visible in
 * tick, not in prev_tick).  Returns false at the end of the scan.
 */
static bool
next_visible(EventTable *t, Datum prev_tick, Datum tick)
{
	while (index_getnext_slot(t->scan, ForwardScanDirection, t->slot))
	{
		bool		isnull;
		Datum		txid = column(t, COL_TXID, &isnull);

		if (DatumGetBool(DirectFunctionCall2(pg_visible_in_snapshot, txid, tick)) &&
			!DatumGetBool(DirectFunctionCall2(pg_visible_in_snapshot, txid, prev_tick)))
			return true;
	}
	return false;
}

/*
 * event_values: the values of the event in t->slot in the order emit
 * takes them (emit_columns); they point into the slot's row.
 */
static void
event_values(EventTable *t, Datum *values, bool *nulls)
{
	int			i;

	for (i = 0; i < EMIT_VALUES; i++)
		values[i] = column(t, emit_columns[i], &nulls[i]);
}

/*
 * emit_within_limits: emit one event (values, nulls in emit's order) unless
 * it is not the first (*n events emitted so far, of *bytes) and would take
 * the batch past max_bytes: payload and key by raw length, headers by
 * stored size.  Returns false, emitting nothing, when it would.
 */
static bool
emit_within_limits(Datum *values, bool *nulls, int *n, int64 *bytes,
				   int64 max_bytes, OutboxEventEmitFn emit, void *arg)
{
	int64		size;

	size = (nulls[3] ? 0 : toast_raw_datum_size(values[3]) - VARHDRSZ) +
		(nulls[2] ? 0 : toast_raw_datum_size(values[2]) - VARHDRSZ) +
		(nulls[5] ? 0 : toast_datum_size(values[5]));
	/* beyond the first event, never past max_bytes */
	if (*n > 0 && *bytes + size > max_bytes)
		return false;
	emit(arg, values, nulls);
	*bytes += size;
	(*n)++;
	return true;
}

/*
 * outbox_scan_events: call emit for each event of the batch of tick after
 * prev_tick with after_id < id <= last_id, in id order, as
 * outbox._batch_events returns them: at most max_events and, beyond the
 * first, at most max_bytes (payload and key by raw length, headers by
 * stored size).  emit gets the values in the order id, topic, key,
 * payload, payload_kind, headers, created_at, event_uuid, txid; they
 * point into the scan's current row (valid during the call only).  The
 * events of the batch are taken from memory when the bounds scan of this
 * transaction kept them.
 */
void
outbox_scan_events(Datum prev_tick, Datum tick, int64 after_id, int64 last_id,
				   int max_events, int64 max_bytes,
				   OutboxEventEmitFn emit, void *arg)
{
	EventTable	tables[EVENT_TABLES];
	ScanKeyData keys[2];
	int64		bytes = 0;
	int			n = 0;
	int			i;

	if (kept.valid && same_snapshot(kept.prev_tick, prev_tick) &&
		same_snapshot(kept.tick, tick))
	{
		for (i = 0; i < kept.nevents && n < max_events; i++)
		{
			KeptEvent  *event = &kept.events[i];

			if (event->id <= after_id)
				continue;
			if (event->id > last_id ||
				!emit_within_limits(event->values, event->nulls, &n, &bytes,
									max_bytes, emit, arg))
				break;
		}
		return;
	}

	for (i = 0; i < EVENT_TABLES; i++)
	{
		EventTable *t = &tables[i];

		open_event_table(t, i, SCAN_BY_ID);
		ScanKeyInit(&keys[0], 1, BTGreaterStrategyNumber, F_INT8GT,
					Int64GetDatum(after_id));
		ScanKeyInit(&keys[1], 1, BTLessEqualStrategyNumber, F_INT8LE,
					Int64GetDatum(last_id));
		t->scan = outbox_index_beginscan(t->heap, t->index, GetActiveSnapshot(), 2, 0);
		index_rescan(t->scan, keys, 2, NULL, 0);
		t->has_row = next_visible(t, prev_tick, tick);
	}

	while (n < max_events)
	{
		EventTable *t = NULL;
		int64		min_id = 0;
		Datum		values[EMIT_VALUES];
		bool		nulls[EMIT_VALUES];

		/* the table whose next row has the lowest id */
		for (i = 0; i < EVENT_TABLES; i++)
		{
			bool		isnull;
			int64		id;

			if (!tables[i].has_row)
				continue;
			id = DatumGetInt64(column(&tables[i], COL_ID, &isnull));
			if (t == NULL || id < min_id)
			{
				t = &tables[i];
				min_id = id;
			}
		}
		if (t == NULL)
			break;

		event_values(t, values, nulls);
		if (!emit_within_limits(values, nulls, &n, &bytes, max_bytes, emit, arg))
			break;
		t->has_row = next_visible(t, prev_tick, tick);
	}

	for (i = 0; i < EVENT_TABLES; i++)
		close_event_table(&tables[i]);
}
