/*-------------------------------------------------------------------------
 *
 * inbox_dedupe.c
 *	  The de-duplication records of the inbox: the one owner of
 *	  outbox.inbox_dedupe_0, outbox.inbox_dedupe_1 and
 *	  outbox.inbox_dedupe_rotation.  It looks keys up, records the keys of
 *	  the messages applied, and rotates the two tables.
 *
 * A transaction that applies messages (a batch, inbox_apply.c, or the
 * retry of a held key, inbox_held_retry.c) begins an InboxDedupe with the
 * messages it may apply: their keys already recorded are looked up at
 * once, by probing the tables' primary keys.  Every message it applies is
 * added, so that a later copy in the same transaction is a duplicate too,
 * and the keys added are written in one statement before the commit.
 *
 * The two tables are used in turn.  Once the current one is older than
 * outbox_kafka.inbox_dedupe_window, the other is emptied with TRUNCATE and
 * becomes current: no DELETE, no dead tuples, and the lock is taken with
 * NOWAIT so that a reader never makes the worker wait.  Only the worker
 * writes these tables, so nothing is lost between the two steps.
 *
 * Which table takes new records is kept in the worker's memory and read
 * again only when a rotation could have changed it: the rotation empties
 * the other table with TRUNCATE, which gives it a new relfilenode, and
 * every lookup opens both tables and compares their relfilenodes with
 * those seen when the current table was read (the extension dropped and
 * created again gives new ones too).  So a rotation by anybody is seen,
 * at the cost of nothing but a comparison per batch.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_dedupe.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "inbox.h"
#include "pg_compat.h"
#include "relay.h"

/* The de-duplication work of one transaction. */
struct InboxDedupe
{
	InboxSubscription *sub;
	HTAB	   *keys;			/* recorded, or applied in this transaction */
	Datum	   *added;			/* keys applied, text, to record */
	int			nadded;
	int			room;			/* of added[] */
};

/* Which table takes new records; -1 until read. */
static int	current_table = -1;
/* The relfilenodes of the two tables when current_table was read. */
static Oid	seen_filenode[2] = {InvalidOid, InvalidOid};

static SPIPlanPtr record_plan[2] = {NULL, NULL};
static SPIPlanPtr current_plan = NULL;

static void probe_records(int table, InboxDedupe *d, InboxMessage *messages,
						  int nmessages);
static int	current_record_table(void);

/*
 * inbox_dedupe_key_set: an empty hash set, in the current memory context,
 * for the de-duplication keys of messages[]: only their keys may be looked
 * up or entered (the keys are compared up to the longest of them).
 */
HTAB *
inbox_dedupe_key_set(InboxMessage *messages, int nmessages)
{
	HASHCTL		ctl;
	Size		len;
	int			i;

	ctl.keysize = 1;
	for (i = 0; i < nmessages; i++)
	{
		/* not Max(): it would call strlen() twice */
		len = strlen(messages[i].dedupe_key) + 1;
		if (len > ctl.keysize)
			ctl.keysize = len;
	}
	ctl.entrysize = ctl.keysize;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("outbox_kafka inbox batch keys", Max(nmessages, 16), &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/*
 * probe_records: add to d's set the keys of messages[] recorded in
 * outbox.inbox_dedupe_<table> for d's subscription, probing its primary
 * key (subscription, dedupe_key) once per key: the cost of a lookup stays
 * the same whatever the table holds and whatever its statistics say (a
 * plan made while the table was empty would scan it whole for every key).
 * The probe sees what the active snapshot sees and what this transaction
 * wrote before.  Forgets the current table if the table's relfilenode
 * changed (it was rotated).  The table stays locked to the end of the
 * transaction.
 */
static void
probe_records(int table, InboxDedupe *d, InboxMessage *messages, int nmessages)
{
	const char *name = table == 0 ? "inbox_dedupe_0" : "inbox_dedupe_1";
	Oid			relid = get_relname_relid(name, get_namespace_oid("outbox", false));
	Relation	heap;
	Relation	index;
	Oid			indexid;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	ScanKeyData keys[2];
	int			i;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("outbox_kafka de-duplication table outbox.%s is missing", name),
				 errhint("Run ALTER EXTENSION outbox_kafka UPDATE, or re-create the extension.")));
	heap = table_open(relid, AccessShareLock);
	if (heap->rd_rel->relfilenode != seen_filenode[table])
	{
		seen_filenode[table] = heap->rd_rel->relfilenode;
		current_table = -1;
	}
	indexid = RelationGetPrimaryKeyIndex(heap);
	if (!OidIsValid(indexid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("outbox_kafka de-duplication table outbox.%s has no primary key", name)));
	index = index_open(indexid, AccessShareLock);
	slot = table_slot_create(heap, NULL);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(d->sub->name));
	keys[0].sk_collation = index->rd_indcollation[0];
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, (Datum) 0);
	keys[1].sk_collation = index->rd_indcollation[1];
	/* what SQL does before a statement: see what this transaction wrote */
	CommandCounterIncrement();
	PushCopiedSnapshot(GetActiveSnapshot());
	UpdateActiveSnapshotCommandId();
	scan = outbox_index_beginscan(heap, index, GetActiveSnapshot(), 2, 0);
	for (i = 0; i < nmessages; i++)
	{
		keys[1].sk_argument = CStringGetTextDatum(messages[i].dedupe_key);
		index_rescan(scan, keys, 2, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
			(void) hash_search(d->keys, messages[i].dedupe_key, HASH_ENTER, NULL);
		pfree(DatumGetPointer(keys[1].sk_argument));
	}
	index_endscan(scan);
	PopActiveSnapshot();
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(heap, NoLock);
}

/*
 * inbox_dedupe_begin: the de-duplication work of a transaction of sub that
 * may apply messages[0..nmessages-1], in the current memory context: the
 * keys of those already recorded (in either table) are looked up now.
 * Only the keys of these messages may be passed to the functions below.
 * Needs a transaction with an active snapshot.
 */
InboxDedupe *
inbox_dedupe_begin(InboxSubscription *sub, InboxMessage *messages, int nmessages)
{
	InboxDedupe *d = palloc0(sizeof(InboxDedupe));

	d->sub = sub;
	d->keys = inbox_dedupe_key_set(messages, nmessages);
	d->room = Max(nmessages, 1);
	d->added = palloc(sizeof(Datum) * d->room);
	/* both, always: the relfilenodes say whether a rotation happened */
	probe_records(0, d, messages, nmessages);
	probe_records(1, d, messages, nmessages);
	return d;
}

/*
 * inbox_dedupe_recorded: is dedupe_key recorded, or applied earlier in
 * this transaction?
 */
bool
inbox_dedupe_recorded(InboxDedupe *d, const char *dedupe_key)
{
	return hash_search(d->keys, dedupe_key, HASH_FIND, NULL) != NULL;
}

/*
 * inbox_dedupe_add: the message of dedupe_key (not recorded) was applied
 * in this transaction: a later copy is a duplicate, and inbox_dedupe_write
 * records it.
 */
void
inbox_dedupe_add(InboxDedupe *d, const char *dedupe_key)
{
	(void) hash_search(d->keys, dedupe_key, HASH_ENTER, NULL);
	if (d->nadded == d->room)
	{
		d->room *= 2;
		d->added = repalloc(d->added, sizeof(Datum) * d->room);
	}
	d->added[d->nadded++] = CStringGetTextDatum(dedupe_key);
}

/*
 * current_record_table: which table takes new records (0 or 1), read from
 * outbox.inbox_dedupe_rotation only if a probe saw a rotation since it was
 * last read, with a snapshot taken now (after the probes locked both
 * tables, so it agrees with the relfilenodes they saw).  SPI connected.
 */
static int
current_record_table(void)
{
	bool		isnull;

	if (current_table >= 0)
		return current_table;
	if (SPI_execute_plan(outbox_keep_plan(&current_plan,
										  "SELECT current_table FROM outbox.inbox_dedupe_rotation",
										  0, NULL),
						 NULL, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read outbox.inbox_dedupe_rotation");
	current_table = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull));
	return current_table;
}

/*
 * inbox_dedupe_write: record the keys added to d in the current table, in
 * one statement.  None of them was recorded (inbox_dedupe_begin looked, in
 * both tables, and a key is added once), so a plain INSERT: ON CONFLICT
 * would search the index twice per key.  Should another transaction have
 * recorded one meanwhile, the unique violation rolls the whole transaction
 * back, as a changed offset does.  SPI connected.
 */
void
inbox_dedupe_write(InboxDedupe *d)
{
	Oid			argtypes[2] = {TEXTOID, TEXTARRAYOID};
	Datum		args[2];
	int			table;

	if (d->nadded == 0)
		return;
	table = current_record_table();
	args[0] = CStringGetTextDatum(d->sub->name);
	args[1] = PointerGetDatum(construct_array(d->added, d->nadded, TEXTOID, -1,
											  false, TYPALIGN_INT));
	if (SPI_execute_plan(outbox_keep_plan(&record_plan[table], table == 0 ?
										  "INSERT INTO outbox.inbox_dedupe_0 (subscription, dedupe_key)"
										  " SELECT $1, unnest($2)" :
										  "INSERT INTO outbox.inbox_dedupe_1 (subscription, dedupe_key)"
										  " SELECT $1, unnest($2)",
										  2, argtypes),
						 args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record inbox de-duplication keys");
	d->nadded = 0;
}

/*
 * inbox_dedupe_rotate: once the current de-duplication table is older than
 * window_s seconds, empty the other one and make it current.  Does nothing
 * (tries again later) if anybody holds a lock on it.  Needs a transaction
 * with a snapshot and SPI not connected; the caller commits.
 */
void
inbox_dedupe_rotate(int window_s)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1];
	int			next;
	bool		isnull;
	Oid			relid;

	SPI_connect();
	args[0] = Int32GetDatum(window_s);
	if (SPI_execute_with_args("SELECT 1 - current_table FROM outbox.inbox_dedupe_rotation"
							  " WHERE rotated_at < now() - make_interval(secs => $1)",
							  1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read outbox.inbox_dedupe_rotation");
	if (SPI_processed == 0)
	{
		SPI_finish();
		return;
	}
	next = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	/* kept to the end of the transaction: no reader sees it half done */
	relid = RangeVarGetRelid(makeRangeVar("outbox",
										  next == 0 ? "inbox_dedupe_0" : "inbox_dedupe_1",
										  -1),
							 NoLock, false);
	if (!ConditionalLockRelationOid(relid, AccessExclusiveLock))
	{
		SPI_finish();
		return;
	}
	SPI_execute(next == 0 ?
				"TRUNCATE outbox.inbox_dedupe_0" :
				"TRUNCATE outbox.inbox_dedupe_1", false, 0);
	args[0] = Int32GetDatum(next);
	SPI_execute_with_args("UPDATE outbox.inbox_dedupe_rotation"
						  " SET current_table = $1, rotated_at = now()",
						  1, argtypes, args, NULL, false, 0);
	SPI_finish();
	/* read again at the next record, whether or not this commits */
	current_table = -1;
	ereport(DEBUG1,
			(errmsg("outbox_kafka inbox: de-duplication table %d emptied and made current", next)));
}

/*
 * inbox_dedupe_forget: drop the kept plans and what is known of the
 * current table (after an error, or when the subscriptions or the
 * extension changed); they are made and read again.  Outside SPI.
 */
void
inbox_dedupe_forget(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	int			i;

	for (i = 0; i < 2; i++)
	{
		if (record_plan[i] != NULL)
			SPI_freeplan(record_plan[i]);
		record_plan[i] = NULL;
		seen_filenode[i] = InvalidOid;
	}
	if (current_plan != NULL)
		SPI_freeplan(current_plan);
	current_plan = NULL;
	current_table = -1;
	MemoryContextSwitchTo(old);
}
