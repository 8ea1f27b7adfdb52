/*-------------------------------------------------------------------------
 *
 * inbox_apply.c
 *	  The transaction of one inbox batch: for each message, in a
 *	  subtransaction of its own, the subscription's handler (run as the
 *	  subscription's owner); then the de-duplication records of the
 *	  messages applied, and the next offset of each partition,
 *	  compare-and-set; then commit.  The effects, the records and the
 *	  offsets commit together or not at all.
 *
 * Per partition, messages are applied in offset order.  A message already
 * recorded (same de-duplication key within the window, or earlier in the
 * batch) is skipped without calling the handler.  The records are read by
 * probing the tables' primary keys, and written with one statement per
 * batch.  When a handler fails, only its subtransaction is
 * rolled back: the messages of that partition before it commit, the
 * partition stops there for this batch (its attempts and error are stored
 * with its offset) and the other partitions go on.  After max_attempts
 * failures the message goes to outbox.inbox_dead_letter and its partition
 * moves past it, unless the subscription holds (on_poison = 'hold'); with
 * on_poison = 'hold_key' it is set aside with its key (inbox_held.c), and
 * so are the later messages of that key, while the partition moves on.  An
 * error that is not the message's fault (serialization failure, deadlock,
 * lock not available, shutdown, out of resources, a revoked privilege)
 * counts no attempt.
 *
 * An error outside the handlers (the offsets changed under us, the
 * extension is gone) aborts the whole transaction: the caller recovers and
 * reads the stored offsets again, so nothing is applied twice.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "inbox.h"
#include "pg_compat.h"
#include "relay.h"

/* How this batch calls the subscription's handler. */
typedef struct HandlerCall
{
	FmgrInfo	flinfo;
	Oid			owner;			/* run as this role */
	bool		batch;			/* takes outbox.inbox_message[] */
	AclResult	acl;			/* may owner execute it? */
	Oid			msgtype;		/* outbox.inbox_message */
	int16		msglen;			/* its typlen, byval and align */
	bool		msgbyval;
	char		msgalign;
} HandlerCall;

/* One partition of the batch, while it is applied. */
typedef struct PartitionWork
{
	InboxPartitionResult result;
	int64		expected;		/* stored next_offset when the batch began;
								 * -1 if none was stored */
	int			stored_attempts;	/* attempts stored for expected */
	int64		applied;
	int64		duplicates;
	char	   *error;			/* error to store, NULL for none */
	bool		changed;		/* anything to store */
} PartitionWork;

static SPIPlanPtr record_plan[2] = {NULL, NULL};
static SPIPlanPtr dead_plan = NULL;
static SPIPlanPtr offset_plan = NULL;
static SPIPlanPtr rotation_plan = NULL;

static Oid	message_type(void);
static void handler_call(HandlerCall *hc, InboxSubscription *sub, Oid msgtype);
static bool error_is_transient(int sqlerrcode);
static PartitionWork *partition_work(PartitionWork *work, int *nwork,
									 List *positions, int32 partition);
static Datum message_datum(TupleDesc desc, InboxSubscription *sub,
						   InboxMessage *msg);
static HTAB *key_set(InboxMessage *messages, int nmessages);
static void probe_records(const char *name, const char *subscription,
						  InboxMessage *messages, int nmessages, HTAB *set);
static HTAB *recorded_keys(InboxSubscription *sub, InboxMessage *messages,
						   int nmessages);
static void record_applied(InboxSubscription *sub, Datum *keys, int nkeys,
						   int table);
static void dead_letter(InboxSubscription *sub, InboxMessage *msg,
						ErrorData *edata, int attempts);
static void store_offset(InboxSubscription *sub, PartitionWork *w);
static ErrorData *apply_one(HandlerCall *hc, Datum *msgs, int nmsgs);
static bool apply_all(InboxSubscription *sub, HandlerCall *hc, TupleDesc desc,
					  PartitionWork *work, int *nwork, List *positions,
					  InboxMessage *messages, int nmessages, HTAB *recorded,
					  Datum *applied_keys, int *napplied);

/*
 * message_type: the OID of outbox.inbox_message.  ERROR if it is missing
 * (the extension is older or gone).
 */
static Oid
message_type(void)
{
	Oid			nsp = get_namespace_oid("outbox", false);
	Oid			typoid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										 CStringGetDatum("inbox_message"),
										 ObjectIdGetDatum(nsp));

	if (!OidIsValid(typoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("type outbox.inbox_message does not exist"),
				 errhint("Run ALTER EXTENSION outbox_kafka UPDATE.")));
	return typoid;
}

/*
 * handler_call: how to call sub's handler in this batch: through fmgr,
 * looked up in the current memory context; whether it takes one message
 * or an array of them (outbox.subscribe checked it takes one of the two),
 * and whether the owner may execute it (checked again for every call, in
 * the call's subtransaction, like SQL would).  ERROR if the handler is
 * gone or takes anything else.
 */
static void
handler_call(HandlerCall *hc, InboxSubscription *sub, Oid msgtype)
{
	Oid		   *argtypes;
	int			nargs;

	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(sub->handler)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("inbox handler function %u of subscription \"%s\" does not exist",
						sub->handler, sub->name)));
	(void) get_func_signature(sub->handler, &argtypes, &nargs);
	if (nargs != 1 ||
		(argtypes[0] != msgtype && argtypes[0] != get_array_type(msgtype)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %s cannot be an inbox handler",
						format_procedure(sub->handler))));
	hc->batch = (argtypes[0] != msgtype);
	fmgr_info(sub->handler, &hc->flinfo);
	hc->owner = sub->owner;
	hc->acl = pg_proc_aclcheck(sub->handler, sub->owner, ACL_EXECUTE);
	hc->msgtype = msgtype;
	get_typlenbyvalalign(msgtype, &hc->msglen, &hc->msgbyval, &hc->msgalign);
}

/*
 * inbox_apply_forget_plans: drop the kept plans (after an error, or when
 * the subscriptions or the extension changed); they are made again.
 * Outside SPI.
 */
void
inbox_apply_forget_plans(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	int			i;

	for (i = 0; i < 2; i++)
	{
		if (record_plan[i] != NULL)
			SPI_freeplan(record_plan[i]);
		record_plan[i] = NULL;
	}
	if (dead_plan != NULL)
		SPI_freeplan(dead_plan);
	if (offset_plan != NULL)
		SPI_freeplan(offset_plan);
	if (rotation_plan != NULL)
		SPI_freeplan(rotation_plan);
	dead_plan = offset_plan = rotation_plan = NULL;
	MemoryContextSwitchTo(old);
}

/*
 * error_is_transient: is an error of this SQLSTATE not the message's
 * fault, so that retrying later may succeed without any change?
 */
static bool
error_is_transient(int sqlerrcode)
{
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_TRANSACTION_ROLLBACK:	/* serialization, deadlock */
		case ERRCODE_CONNECTION_EXCEPTION:
		case ERRCODE_INSUFFICIENT_RESOURCES:
			return true;
		case ERRCODE_OPERATOR_INTERVENTION:
			/* a statement_timeout is the handler's own doing */
			return sqlerrcode != ERRCODE_QUERY_CANCELED;
		default:
			/* a revoked privilege is the configuration's fault */
			return sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
				sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE;
	}
}

/*
 * partition_work: the entry of work[] for partition, added (from the
 * stored positions) if it is new.
 */
static PartitionWork *
partition_work(PartitionWork *work, int *nwork, List *positions, int32 partition)
{
	ListCell   *lc;
	PartitionWork *w;
	int			i;

	for (i = 0; i < *nwork; i++)
		if (work[i].result.partition == partition)
			return &work[i];
	w = &work[(*nwork)++];
	memset(w, 0, sizeof(*w));
	w->result.partition = partition;
	w->expected = -1;
	foreach(lc, positions)
	{
		InboxPosition *pos = (InboxPosition *) lfirst(lc);

		if (pos->partition == partition)
		{
			w->expected = pos->next_offset;
			w->stored_attempts = pos->attempts;
		}
	}
	w->result.next_offset = w->expected;
	w->result.attempts = w->stored_attempts;
	return w;
}

/*
 * message_datum: msg as a value of outbox.inbox_message (desc).
 */
static Datum
message_datum(TupleDesc desc, InboxSubscription *sub, InboxMessage *msg)
{
	Datum		values[INBOX_MESSAGE_COLUMNS];
	bool		nulls[INBOX_MESSAGE_COLUMNS];

	inbox_message_values(sub, msg, values, nulls);
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/*
 * key_set: an empty hash set, in the current memory context, for the
 * de-duplication keys of messages[].
 */
static HTAB *
key_set(InboxMessage *messages, int nmessages)
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
 * probe_records: add to set the keys of messages[] recorded in the
 * de-duplication table outbox.<name> for subscription, probing its
 * primary key (subscription, dedupe_key) once per key with the active
 * snapshot: the cost of a lookup stays the same whatever the table holds
 * and whatever its statistics say (a plan made while the table was empty
 * would scan it whole for every key).
 */
static void
probe_records(const char *name, const char *subscription,
			  InboxMessage *messages, int nmessages, HTAB *set)
{
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
	indexid = RelationGetPrimaryKeyIndex(heap);
	if (!OidIsValid(indexid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("outbox_kafka de-duplication table outbox.%s has no primary key", name)));
	index = index_open(indexid, AccessShareLock);
	slot = table_slot_create(heap, NULL);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(subscription));
	keys[0].sk_collation = index->rd_indcollation[0];
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, (Datum) 0);
	keys[1].sk_collation = index->rd_indcollation[1];
	scan = outbox_index_beginscan(heap, index, GetActiveSnapshot(), 2, 0);
	for (i = 0; i < nmessages; i++)
	{
		keys[1].sk_argument = CStringGetTextDatum(messages[i].dedupe_key);
		index_rescan(scan, keys, 2, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
			(void) hash_search(set, messages[i].dedupe_key, HASH_ENTER, NULL);
		pfree(DatumGetPointer(keys[1].sk_argument));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(heap, NoLock);
}

/*
 * recorded_keys: a hash set of the de-duplication keys of messages[] that
 * are already recorded (in either table), in the current memory context;
 * keys of messages applied later in the batch are added to it.  Needs an
 * active snapshot.
 */
static HTAB *
recorded_keys(InboxSubscription *sub, InboxMessage *messages, int nmessages)
{
	HTAB	   *set = key_set(messages, nmessages);

	probe_records("inbox_dedupe_0", sub->name, messages, nmessages, set);
	probe_records("inbox_dedupe_1", sub->name, messages, nmessages, set);
	return set;
}

/*
 * record_applied: record the de-duplication keys of the messages applied
 * in this batch (keys[0..nkeys-1], text) in the current table, in one
 * statement.  None of them is recorded yet (recorded_keys() looked, in
 * both tables, and keys repeated in the batch are applied once), so a
 * plain INSERT: ON CONFLICT would search the index twice per key.  Should
 * another transaction have recorded one meanwhile, the unique violation
 * rolls the whole batch back, as a changed offset does.  SPI connected.
 */
static void
record_applied(InboxSubscription *sub, Datum *keys, int nkeys, int table)
{
	Oid			argtypes[2] = {TEXTOID, TEXTARRAYOID};
	Datum		args[2];

	if (nkeys == 0)
		return;
	args[0] = CStringGetTextDatum(sub->name);
	args[1] = PointerGetDatum(construct_array(keys, nkeys, TEXTOID, -1, false,
											  TYPALIGN_INT));
	if (SPI_execute_plan(outbox_keep_plan(&record_plan[table], table == 0 ?
										  "INSERT INTO outbox.inbox_dedupe_0 (subscription, dedupe_key)"
										  " SELECT $1, unnest($2)" :
										  "INSERT INTO outbox.inbox_dedupe_1 (subscription, dedupe_key)"
										  " SELECT $1, unnest($2)",
										  2, argtypes),
						 args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record inbox de-duplication keys");
}

/*
 * dead_letter: move msg to outbox.inbox_dead_letter with its error.  SPI
 * connected.
 */
static void
dead_letter(InboxSubscription *sub, InboxMessage *msg, ErrorData *edata,
			int attempts)
{
	Oid			argtypes[11] = {INBOX_MESSAGE_ARGTYPES, TEXTOID, TEXTOID, INT4OID};
	Datum		args[11];
	char		nulls[11];

	inbox_message_args(sub, msg, args, nulls);
	nulls[8] = nulls[9] = nulls[10] = ' ';
	args[8] = CStringGetTextDatum(edata->message ? edata->message : "unknown error");
	args[9] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	args[10] = Int32GetDatum(attempts);
	if (SPI_execute_plan(outbox_keep_plan(&dead_plan,
										  "INSERT INTO outbox.inbox_dead_letter"
										  " (subscription, topic, \"partition\", \"offset\", key, value,"
										  " headers, \"timestamp\", error, sqlstate, attempts)"
										  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
										  11, argtypes),
						 args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into outbox.inbox_dead_letter");
	if (sub->dead_letter_topic != NULL)
		inbox_dlq_enqueue(sub, msg, edata, attempts);
}

/*
 * store_offset: write w's next offset, counts and error, compare-and-set
 * on the offset stored when the batch began.  ERROR (serialization
 * failure) if it changed meanwhile: a rewind, or another worker.  SPI
 * connected.
 */
static void
store_offset(InboxSubscription *sub, PartitionWork *w)
{
	Oid			argtypes[8] = {TEXTOID, INT4OID, INT8OID, INT8OID, INT8OID,
	INT4OID, TEXTOID, INT8OID};
	Datum		args[8];
	char		nulls[8];

	memset(nulls, ' ', sizeof(nulls));
	args[0] = CStringGetTextDatum(sub->name);
	args[1] = Int32GetDatum(w->result.partition);
	args[2] = Int64GetDatum(w->result.next_offset);
	args[3] = Int64GetDatum(w->applied);
	args[4] = Int64GetDatum(w->duplicates);
	args[5] = Int32GetDatum(w->result.attempts);
	/*
	 * The error is stored only where it stopped the partition: one whose
	 * message went on to the dead-letter table or was set aside is kept
	 * there, and inbox_status says 'retrying' only while the stored
	 * offset's message waits for another try.
	 */
	if (w->error != NULL && w->result.stopped)
		args[6] = CStringGetTextDatum(w->error);
	else
		nulls[6] = 'n';
	args[7] = Int64GetDatum(w->expected);
	if (SPI_execute_plan(outbox_keep_plan(&offset_plan,
										  "INSERT INTO outbox.inbox_offset AS o"
										  " (subscription, \"partition\", next_offset, applied, duplicates,"
										  "  attempts, last_error, last_error_at)"
										  " VALUES ($1, $2, $3, $4, $5, $6, $7,"
										  "  CASE WHEN $7 IS NOT NULL THEN now() END)"
										  " ON CONFLICT (subscription, \"partition\") DO UPDATE"
										  " SET next_offset = EXCLUDED.next_offset,"
										  "     applied = o.applied + EXCLUDED.applied,"
										  "     duplicates = o.duplicates + EXCLUDED.duplicates,"
										  "     attempts = EXCLUDED.attempts,"
										  "     last_error = coalesce(EXCLUDED.last_error, o.last_error),"
										  "     last_error_at = coalesce(EXCLUDED.last_error_at, o.last_error_at),"
										  "     updated_at = now()"
										  " WHERE o.next_offset = $8",
										  8, argtypes),
						 args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write outbox.inbox_offset");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the stored offset of partition %d of inbox subscription \"%s\" changed while its batch was applied",
						w->result.partition, sub->name),
				 errdetail("outbox.inbox_rewind() or another worker moved it."),
				 errhint("The batch is rolled back and consumed again from the stored offset.")));
}

/*
 * apply_one: in a subtransaction, call the handler (as the subscription's
 * owner) on msgs[0..nmsgs-1]: once per message for a per-message handler,
 * once with all of them for a batch handler.  Returns NULL if that
 * committed, else the error (copied into the caller's memory context)
 * after rolling the subtransaction back, so none of the calls' effects
 * remain.  SPI connected.
 */
static ErrorData *
apply_one(HandlerCall *hc, Datum *msgs, int nmsgs)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		LOCAL_FCINFO(fcinfo, 1);
		PgStat_FunctionCallUsage fcusage;
		Oid			save_userid;
		int			save_sec;
		int			ncalls = hc->batch ? 1 : nmsgs;
		int			i;

		if (hc->acl != ACLCHECK_OK)
			aclcheck_error(hc->acl, OBJECT_FUNCTION, get_func_name(hc->flinfo.fn_oid));
		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(hc->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
		for (i = 0; i < ncalls; i++)
		{
			/* what SQL does around a statement: see what came before */
			CommandCounterIncrement();
			PushActiveSnapshot(GetTransactionSnapshot());
			InitFunctionCallInfoData(*fcinfo, &hc->flinfo, 1, InvalidOid, NULL, NULL);
			if (hc->batch)
				fcinfo->args[0].value =
					PointerGetDatum(construct_array(msgs, nmsgs, hc->msgtype,
													hc->msglen, hc->msgbyval,
													hc->msgalign));
			else
				fcinfo->args[0].value = msgs[i];
			fcinfo->args[0].isnull = false;
			/* counted in pg_stat_user_functions, as a call from SQL is */
			pgstat_init_function_usage(fcinfo, &fcusage);
			(void) FunctionCallInvoke(fcinfo);
			pgstat_end_function_usage(&fcusage, true);
			PopActiveSnapshot();
		}
		SetUserIdAndSecContext(save_userid, save_sec);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* this also restores the user id, security context and snapshot */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/*
 * apply_all: with a batch handler, apply messages[] (skipping those before
 * their partition's next offset and the duplicates) with one call, in one
 * subtransaction, and account for it in work[], recorded and
 * applied_keys[] as the loop of inbox_apply_batch would.  Returns false,
 * having changed nothing, if the messages must be applied one at a time
 * instead: a partition of the batch had a failed message stored, or the
 * call failed for a reason that is not transient.  A transient failure
 * stops every partition of the batch at its first message to apply.  SPI
 * connected.
 */
static bool
apply_all(InboxSubscription *sub, HandlerCall *hc, TupleDesc desc,
		  PartitionWork *work, int *nwork, List *positions,
		  InboxMessage *messages, int nmessages, HTAB *recorded,
		  Datum *applied_keys, int *napplied)
{
	Datum	   *msgs = palloc(sizeof(Datum) * Max(nmessages, 1));
	bool	   *apply = palloc0(sizeof(bool) * Max(nmessages, 1));
	int64	   *next = palloc(sizeof(int64) * Max(nmessages, 1));
	HTAB	   *pending;
	ErrorData  *edata;
	int			nmsgs = 0;
	int			i;

	/* the partitions' work entries, in the order the loop would make them */
	for (i = 0; i < nmessages; i++)
		if (partition_work(work, nwork, positions, messages[i].partition)->stored_attempts > 0)
			return false;
	for (i = 0; i < *nwork; i++)
		next[i] = work[i].result.next_offset;

	/* which messages the call gets: not applied before, nor earlier in it */
	pending = key_set(messages, nmessages);
	for (i = 0; i < nmessages; i++)
	{
		InboxMessage *msg = &messages[i];
		int			p = partition_work(work, nwork, positions, msg->partition) - work;
		bool		found;

		if (msg->offset < next[p])
			continue;
		next[p] = msg->offset + 1;
		if (hash_search(recorded, msg->dedupe_key, HASH_FIND, NULL) != NULL)
			continue;
		(void) hash_search(pending, msg->dedupe_key, HASH_ENTER, &found);
		if (found)
			continue;
		apply[i] = true;
		msgs[nmsgs++] = message_datum(desc, sub, msg);
	}

	CHECK_FOR_INTERRUPTS();
	edata = (nmsgs > 0) ? apply_one(hc, msgs, nmsgs) : NULL;
	if (edata != NULL && !error_is_transient(edata->sqlerrcode))
	{
		FreeErrorData(edata);
		return false;
	}

	for (i = 0; i < nmessages; i++)
	{
		InboxMessage *msg = &messages[i];
		PartitionWork *w = partition_work(work, nwork, positions, msg->partition);

		if (w->result.stopped || msg->offset < w->result.next_offset)
			continue;
		w->changed = true;
		if (edata != NULL)
		{
			/* as the loop does for a transient error, at the first message */
			w->error = psprintf("offset " INT64_FORMAT ": %s (SQLSTATE %s)", msg->offset,
								edata->message ? edata->message : "unknown error",
								unpack_sql_state(edata->sqlerrcode));
			w->result.transient = true;
			w->result.stopped = true;
			w->result.next_offset = msg->offset;
			w->result.attempts = (msg->offset == w->expected ? w->stored_attempts : 0);
			continue;
		}
		if (apply[i])
		{
			(void) hash_search(recorded, msg->dedupe_key, HASH_ENTER, NULL);
			applied_keys[(*napplied)++] = CStringGetTextDatum(msg->dedupe_key);
			w->applied++;
		}
		else
			w->duplicates++;
		w->result.next_offset = msg->offset + 1;
		w->result.attempts = 0;
	}
	if (edata != NULL)
		FreeErrorData(edata);
	return true;
}

/*
 * inbox_apply_batch: apply messages[0..nmessages-1] (of sub's topic, in
 * offset order per partition) in one transaction, given the stored
 * positions (List of InboxPosition *) the worker consumes from.  Messages
 * before a partition's stored offset are skipped.  Returns, in the
 * caller's memory context, a List of InboxPartitionResult * for every
 * partition of the batch.  Runs outside any transaction; ERRORs out of it
 * (the transaction is then rolled back by the caller's recovery).
 */
List *
inbox_apply_batch(InboxSubscription *sub, List *positions,
				  InboxMessage *messages, int nmessages)
{
	MemoryContext caller = CurrentMemoryContext;
	PartitionWork *work = palloc(sizeof(PartitionWork) * Max(nmessages, 1));
	int			nwork = 0;
	List	   *results = NIL;
	TupleDesc	desc;
	HandlerCall hc;
	Oid			msgtype;
	int			table;
	bool		isnull;
	HTAB	   *recorded;
	InboxHeldSet *held = NULL;
	Datum	   *applied_keys = palloc(sizeof(Datum) * Max(nmessages, 1));
	int			napplied = 0;
	int			i;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "applying an inbox batch");
	SPI_connect();

	msgtype = message_type();
	desc = lookup_rowtype_tupdesc_copy(msgtype, -1);
	handler_call(&hc, sub, msgtype);
	if (SPI_execute_plan(outbox_keep_plan(&rotation_plan,
										  "SELECT current_table FROM outbox.inbox_dedupe_rotation",
										  0, NULL),
						 NULL, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read outbox.inbox_dedupe_rotation");
	table = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	recorded = recorded_keys(sub, messages, nmessages);
	if (sub->hold_key)
		held = inbox_held_load(sub);

	/*
	 * a batch handler: all at once if it can, else one at a time below (so
	 * too while keys of the subscription are held: their later messages
	 * are set aside, not passed to the handler)
	 */
	if (hc.batch && (held == NULL || !inbox_held_any(held)) &&
		apply_all(sub, &hc, desc, work, &nwork, positions, messages,
				  nmessages, recorded, applied_keys, &napplied))
		nmessages = 0;

	for (i = 0; i < nmessages; i++)
	{
		InboxMessage *msg = &messages[i];
		PartitionWork *w = partition_work(work, &nwork, positions, msg->partition);
		ErrorData  *edata;
		Datum		one;
		int			attempts;

		if (w->result.stopped || msg->offset < w->result.next_offset)
			continue;
		CHECK_FOR_INTERRUPTS();
		w->changed = true;
		if (hash_search(recorded, msg->dedupe_key, HASH_FIND, NULL) != NULL)
		{
			w->duplicates++;
			w->result.next_offset = msg->offset + 1;
			w->result.attempts = 0;
			continue;
		}
		if (held != NULL && inbox_held_waits(held, msg))
		{
			/* behind a held message of its key: set aside too */
			inbox_held_set_aside(held, sub, msg, NULL, 0);
			w->result.next_offset = msg->offset + 1;
			w->result.attempts = 0;
			continue;
		}
		one = message_datum(desc, sub, msg);
		edata = apply_one(&hc, &one, 1);
		if (edata == NULL)
		{
			/* a copy later in this batch is a duplicate too */
			(void) hash_search(recorded, msg->dedupe_key, HASH_ENTER, NULL);
			applied_keys[napplied++] = CStringGetTextDatum(msg->dedupe_key);
			w->applied++;
			w->result.next_offset = msg->offset + 1;
			w->result.attempts = 0;
			continue;
		}

		attempts = (msg->offset == w->expected ? w->stored_attempts : 0);
		w->error = psprintf("offset " INT64_FORMAT ": %s (SQLSTATE %s)", msg->offset,
							edata->message ? edata->message : "unknown error",
							unpack_sql_state(edata->sqlerrcode));
		if (error_is_transient(edata->sqlerrcode))
		{
			w->result.transient = true;
			w->result.stopped = true;
			w->result.next_offset = msg->offset;
			w->result.attempts = attempts;
		}
		else if (attempts + 1 >= sub->max_attempts && held != NULL &&
				 msg->key != NULL)
		{
			inbox_held_set_aside(held, sub, msg, edata, attempts + 1);
			w->result.next_offset = msg->offset + 1;
			w->result.attempts = 0;
		}
		else if (attempts + 1 >= sub->max_attempts && !sub->hold && !sub->hold_key)
		{
			dead_letter(sub, msg, edata, attempts + 1);
			ereport(LOG,
					(errmsg("outbox_kafka inbox: subscription \"%s\" moved the message at partition %d offset " INT64_FORMAT " to outbox.inbox_dead_letter after %d attempts: %s",
							sub->name, msg->partition, msg->offset, attempts + 1,
							edata->message ? edata->message : "unknown error")));
			w->result.next_offset = msg->offset + 1;
			w->result.attempts = 0;
		}
		else
		{
			w->result.stopped = true;
			w->result.next_offset = msg->offset;
			w->result.attempts = attempts + 1;
		}
		FreeErrorData(edata);
	}

	/* with the effects: their records, then the offsets */
	record_applied(sub, applied_keys, napplied, table);
	for (i = 0; i < nwork; i++)
		if (work[i].changed)
			store_offset(sub, &work[i]);

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(caller);

	for (i = 0; i < nwork; i++)
	{
		InboxPartitionResult *r = palloc(sizeof(InboxPartitionResult));

		*r = work[i].result;
		results = lappend(results, r);
	}
	return results;
}

/*
 * inbox_apply_message: run sub's handler on msg (as sub's owner) in a
 * subtransaction; NULL if that committed, else the error, in the caller's
 * memory context.  For messages applied outside a batch (held keys).
 * Needs a transaction with a snapshot and SPI connected.
 */
ErrorData *
inbox_apply_message(InboxSubscription *sub, InboxMessage *msg)
{
	Oid			msgtype = message_type();
	TupleDesc	desc = lookup_rowtype_tupdesc_copy(msgtype, -1);
	HandlerCall hc;
	Datum		one;

	/* a batch handler gets an array of this one message */
	handler_call(&hc, sub, msgtype);
	one = message_datum(desc, sub, msg);
	return apply_one(&hc, &one, 1);
}

/*
 * inbox_apply_error_is_transient: is an error of this SQLSTATE not the
 * message's fault (no attempt is counted)?
 */
bool
inbox_apply_error_is_transient(int sqlerrcode)
{
	return error_is_transient(sqlerrcode);
}
