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
 * batch) is skipped without calling the handler.  The records are read
 * with one query and written with one statement per batch.  When a handler fails, only its subtransaction is
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

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "inbox.h"
#include "relay.h"

/* The handler plan of one subscription's handler. */
typedef struct HandlerPlan
{
	Oid			handler;
	Oid			msgtype;
	SPIPlanPtr	plan;
} HandlerPlan;

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

static List *handler_plans = NIL;	/* of HandlerPlan *, in TopMemoryContext */
static SPIPlanPtr seen_plan = NULL;
static SPIPlanPtr record_plan[2] = {NULL, NULL};
static SPIPlanPtr dead_plan = NULL;
static SPIPlanPtr offset_plan = NULL;

static Oid	message_type(void);
static SPIPlanPtr handler_plan(Oid handler, Oid msgtype);
static bool error_is_transient(int sqlerrcode);
static PartitionWork *partition_work(PartitionWork *work, int *nwork,
									 List *positions, int32 partition);
static Datum bytes_datum(const char *data, int len);
static Datum message_datum(TupleDesc desc, InboxSubscription *sub,
						   InboxMessage *msg);
static HTAB *recorded_keys(InboxSubscription *sub, InboxMessage *messages,
						   int nmessages);
static void record_applied(InboxSubscription *sub, Datum *keys, int nkeys,
						   int table);
static void dead_letter(InboxSubscription *sub, InboxMessage *msg,
						ErrorData *edata, int attempts);
static void store_offset(InboxSubscription *sub, PartitionWork *w);
static ErrorData *apply_one(InboxSubscription *sub, SPIPlanPtr plan, Datum msg);

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
 * handler_plan: the kept plan that calls handler with one message, made
 * the first time.  SPI must be connected.
 */
static SPIPlanPtr
handler_plan(Oid handler, Oid msgtype)
{
	ListCell   *lc;
	HandlerPlan *hp;
	char	   *nsp;
	char	   *sql;
	SPIPlanPtr	plan;
	MemoryContext old;

	foreach(lc, handler_plans)
	{
		hp = (HandlerPlan *) lfirst(lc);
		if (hp->handler == handler && hp->msgtype == msgtype)
			return hp->plan;
	}
	nsp = get_namespace_name(get_func_namespace(handler));
	if (nsp == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("inbox handler function %u does not exist", handler)));
	sql = psprintf("SELECT %s.%s($1)", quote_identifier(nsp),
				   quote_identifier(get_func_name(handler)));
	plan = SPI_prepare(sql, 1, &msgtype);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare(\"%s\") failed: %s", sql,
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	old = MemoryContextSwitchTo(TopMemoryContext);
	hp = palloc(sizeof(HandlerPlan));
	hp->handler = handler;
	hp->msgtype = msgtype;
	hp->plan = plan;
	handler_plans = lappend(handler_plans, hp);
	MemoryContextSwitchTo(old);
	return plan;
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
	ListCell   *lc;
	int			i;

	foreach(lc, handler_plans)
	{
		HandlerPlan *hp = (HandlerPlan *) lfirst(lc);

		SPI_freeplan(hp->plan);
		pfree(hp);
	}
	list_free(handler_plans);
	handler_plans = NIL;
	for (i = 0; i < 2; i++)
	{
		if (record_plan[i] != NULL)
			SPI_freeplan(record_plan[i]);
		record_plan[i] = NULL;
	}
	if (seen_plan != NULL)
		SPI_freeplan(seen_plan);
	if (dead_plan != NULL)
		SPI_freeplan(dead_plan);
	if (offset_plan != NULL)
		SPI_freeplan(offset_plan);
	seen_plan = dead_plan = offset_plan = NULL;
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
 * bytes_datum: a bytea of data[0..len).
 */
static Datum
bytes_datum(const char *data, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return PointerGetDatum(b);
}

/*
 * message_datum: msg as a value of outbox.inbox_message (desc).
 */
static Datum
message_datum(TupleDesc desc, InboxSubscription *sub, InboxMessage *msg)
{
	Datum		values[8];
	bool		nulls[8];

	memset(nulls, false, sizeof(nulls));
	values[0] = CStringGetTextDatum(sub->name);
	values[1] = CStringGetTextDatum(sub->topic);
	values[2] = Int32GetDatum(msg->partition);
	values[3] = Int64GetDatum(msg->offset);
	if (msg->key != NULL)
		values[4] = bytes_datum(msg->key, msg->key_len);
	else
		nulls[4] = true;
	if (msg->value != NULL)
		values[5] = bytes_datum(msg->value, msg->value_len);
	else
		nulls[5] = true;
	if (msg->headers_json != NULL)
		values[6] = DirectFunctionCall1(jsonb_in, CStringGetDatum(msg->headers_json));
	else
		nulls[6] = true;
	values[7] = TimestampTzGetDatum(msg->timestamp);
	nulls[7] = (msg->timestamp == 0);
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/*
 * recorded_keys: a hash set of the de-duplication keys of messages[] that
 * are already recorded (in either table), in the current memory context;
 * keys of messages applied later in the batch are added to it.  One query
 * for the whole batch.  SPI connected.
 */
static HTAB *
recorded_keys(InboxSubscription *sub, InboxMessage *messages, int nmessages)
{
	Oid			argtypes[2] = {TEXTOID, TEXTARRAYOID};
	Datum		args[2];
	Datum	   *keys = palloc(sizeof(Datum) * Max(nmessages, 1));
	HASHCTL		ctl;
	HTAB	   *set;
	Size		keysize = 1;
	int			nestlevel;
	uint64		i;

	for (i = 0; i < nmessages; i++)
	{
		keys[i] = CStringGetTextDatum(messages[i].dedupe_key);
		keysize = Max(keysize, strlen(messages[i].dedupe_key) + 1);
	}
	ctl.keysize = keysize;
	ctl.entrysize = keysize;
	ctl.hcxt = CurrentMemoryContext;
	set = hash_create("outbox_kafka inbox batch keys", Max(nmessages, 16), &ctl,
					  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	args[0] = CStringGetTextDatum(sub->name);
	args[1] = PointerGetDatum(construct_array(keys, nmessages, TEXTOID, -1, false,
											  TYPALIGN_INT));

	/*
	 * By the primary key, whatever the statistics of a table that was just
	 * emptied say: a sequential scan would compare every record with every
	 * key of the batch.  Only for this statement, not for the handlers.
	 */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_execute_plan(outbox_keep_plan(&seen_plan,
										  "SELECT dedupe_key FROM outbox.inbox_dedupe_0"
										  " WHERE subscription = $1 AND dedupe_key = ANY ($2)"
										  " UNION ALL"
										  " SELECT dedupe_key FROM outbox.inbox_dedupe_1"
										  " WHERE subscription = $1 AND dedupe_key = ANY ($2)",
										  2, argtypes),
						 args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the inbox de-duplication records");
	AtEOXact_GUC(true, nestlevel);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *key = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		/* only keys of this batch match, so they fit the key size */
		(void) hash_search(set, key, HASH_ENTER, NULL);
	}
	return set;
}

/*
 * record_applied: record the de-duplication keys of the messages applied
 * in this batch (keys[0..nkeys-1], text) in the current table, in one
 * statement.  SPI connected.
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
										  " SELECT $1, unnest($2) ON CONFLICT DO NOTHING" :
										  "INSERT INTO outbox.inbox_dedupe_1 (subscription, dedupe_key)"
										  " SELECT $1, unnest($2) ON CONFLICT DO NOTHING",
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
	Oid			argtypes[11] = {TEXTOID, TEXTOID, INT4OID, INT8OID, BYTEAOID,
	BYTEAOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, INT4OID};
	Datum		args[11];
	char		nulls[11];

	memset(nulls, ' ', sizeof(nulls));
	args[0] = CStringGetTextDatum(sub->name);
	args[1] = CStringGetTextDatum(sub->topic);
	args[2] = Int32GetDatum(msg->partition);
	args[3] = Int64GetDatum(msg->offset);
	if (msg->key != NULL)
		args[4] = bytes_datum(msg->key, msg->key_len);
	else
		nulls[4] = 'n';
	if (msg->value != NULL)
		args[5] = bytes_datum(msg->value, msg->value_len);
	else
		nulls[5] = 'n';
	if (msg->headers_json != NULL)
		args[6] = CStringGetTextDatum(msg->headers_json);
	else
		nulls[6] = 'n';
	args[7] = TimestampTzGetDatum(msg->timestamp);
	if (msg->timestamp == 0)
		nulls[7] = 'n';
	args[8] = CStringGetTextDatum(edata->message ? edata->message : "unknown error");
	args[9] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	args[10] = Int32GetDatum(attempts);
	if (SPI_execute_plan(outbox_keep_plan(&dead_plan,
										  "INSERT INTO outbox.inbox_dead_letter"
										  " (subscription, topic, \"partition\", \"offset\", key, value,"
										  " headers, \"timestamp\", error, sqlstate, attempts)"
										  " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11)",
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
	if (w->error != NULL)
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
 * apply_one: in a subtransaction, run the handler (as the subscription's
 * owner) on msg.  Returns NULL if that committed, else the error (copied
 * into the caller's memory context) after rolling the subtransaction back.
 * SPI connected.
 */
static ErrorData *
apply_one(InboxSubscription *sub, SPIPlanPtr plan, Datum msg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		Oid			save_userid;
		int			save_sec;
		Datum		args[1];
		int			rc;

		args[0] = msg;
		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(sub->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
		rc = SPI_execute_plan(plan, args, NULL, false, 0);
		SetUserIdAndSecContext(save_userid, save_sec);
		if (rc < 0)
			elog(ERROR, "inbox handler call failed: %s", SPI_result_code_string(rc));
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* this also restores the user id and security context */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
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
	SPIPlanPtr	plan;
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

	desc = lookup_rowtype_tupdesc_copy(message_type(), -1);
	plan = handler_plan(sub->handler, message_type());
	if (SPI_execute("SELECT current_table FROM outbox.inbox_dedupe_rotation", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read outbox.inbox_dedupe_rotation");
	table = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	recorded = recorded_keys(sub, messages, nmessages);
	if (sub->hold_key)
		held = inbox_held_load(sub);

	for (i = 0; i < nmessages; i++)
	{
		InboxMessage *msg = &messages[i];
		PartitionWork *w = partition_work(work, &nwork, positions, msg->partition);
		ErrorData  *edata;
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
		edata = apply_one(sub, plan, message_datum(desc, sub, msg));
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

	return apply_one(sub, handler_plan(sub->handler, msgtype),
					 message_datum(desc, sub, msg));
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
