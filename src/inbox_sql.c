/*-------------------------------------------------------------------------
 *
 * inbox_sql.c
 *	  SQL-callable functions of the inbox: outbox.subscribe,
 *	  outbox.unsubscribe, outbox.inbox_rewind (to an offset) and
 *	  outbox.inbox_rewind_to_time (a request the worker resolves), and the
 *	  worker's state and high
 *	  watermarks behind outbox.inbox_status.
 *
 * Subscribing is a C function so that it can record who subscribed: the
 * handler will run as that role (the caller's current user), while the
 * row is written with the rights of the tables' owner.  Nobody but the
 * extension's owner and superusers may call it unless granted EXECUTE
 * (docs/security.md).  A subscription is changed only by its owner (or a
 * member of it) or the extension's owner.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "inbox.h"
#include "outbox_kafka.h"

PG_FUNCTION_INFO_V1(outbox_inbox_subscribe);
PG_FUNCTION_INFO_V1(outbox_inbox_unsubscribe);
PG_FUNCTION_INFO_V1(outbox_inbox_rewind);
PG_FUNCTION_INFO_V1(outbox_inbox_rewind_time);
PG_FUNCTION_INFO_V1(outbox_inbox_rewind_partition_time);
PG_FUNCTION_INFO_V1(outbox_inbox_worker_status);
PG_FUNCTION_INFO_V1(outbox_inbox_watermarks);

static Oid	tables_owner(void);
static void check_handler(Oid handler);
static void check_name(const char *name);
static Oid	subscription_owner(const char *name);
static void check_may_change(const char *name);
static uint64 run_as_owner(const char *sql, int nargs, Oid *argtypes,
						   Datum *args, const char *nulls);
static void request_rewind(const char *name, int32 partition, TimestampTz at);

/*
 * tables_owner: the role that owns outbox.inbox_subscription (the
 * extension's owner).
 */
static Oid
tables_owner(void)
{
	Oid			relid = RangeVarGetRelid(makeRangeVar("outbox", "inbox_subscription", -1),
										 AccessShareLock, false);
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * run_as_owner: run sql with the rights of the tables' owner; returns the
 * rows processed.
 */
static uint64
run_as_owner(const char *sql, int nargs, Oid *argtypes, Datum *args,
			 const char *nulls)
{
	Oid			save_userid;
	int			save_sec;
	uint64		processed;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(tables_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	SPI_connect();
	if (SPI_execute_with_args(sql, nargs, argtypes, args, nulls, false, 0) < 0)
		elog(ERROR, "SPI_execute_with_args(\"%s\") failed", sql);
	processed = SPI_processed;
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	return processed;
}

/*
 * check_name: a subscription name is 1 to 63 letters, digits, '.', '_'
 * or '-' (it names the Kafka consumer group too).
 */
static void
check_name(const char *name)
{
	const char *p;

	if (*name == '\0' || strlen(name) >= INBOX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid inbox subscription name \"%s\"", name),
				 errdetail("A subscription name has 1 to %d characters.", INBOX_NAME_LEN - 1)));
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid inbox subscription name \"%s\"", name),
					 errdetail("A subscription name uses only ASCII letters, digits, \".\", \"_\" and \"-\".")));
}

/*
 * check_handler: handler must be a function taking one
 * outbox.inbox_message (a per-message handler) or one
 * outbox.inbox_message[] (a batch handler) and returning no set, which the
 * caller may execute.
 */
static void
check_handler(Oid handler)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(handler));
	Form_pg_proc proc;
	Oid			nsp = get_namespace_oid("outbox", false);
	Oid			msgtype = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										  CStringGetDatum("inbox_message"),
										  ObjectIdGetDatum(nsp));
	AclResult	acl;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %u does not exist", handler)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	if (proc->prokind != PROKIND_FUNCTION)
	{
		ReleaseSysCache(tuple);
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("inbox handler %s is not a function",
						format_procedure(handler)),
				 errhint("Write the handler as a function taking one outbox.inbox_message.")));
	}
	if (proc->pronargs != 1 || proc->proretset ||
		(proc->proargtypes.values[0] != msgtype &&
		 proc->proargtypes.values[0] != get_array_type(msgtype)))
	{
		ReleaseSysCache(tuple);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %s cannot be an inbox handler",
						format_procedure(handler)),
				 errdetail("An inbox handler takes exactly one argument, of type outbox.inbox_message or outbox.inbox_message[], and returns no set."),
				 errhint("Declare it as CREATE FUNCTION name(m outbox.inbox_message) RETURNS void, or name(ms outbox.inbox_message[]) RETURNS void for a batch handler.")));
	}
	ReleaseSysCache(tuple);
	acl = pg_proc_aclcheck(handler, GetUserId(), ACL_EXECUTE);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_FUNCTION, get_func_name(handler));
}

/*
 * subscription_owner: the owner of subscription name; ERROR if there is
 * no such subscription.
 */
static Oid
subscription_owner(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	Oid			owner = InvalidOid;
	bool		isnull;

	args[0] = CStringGetTextDatum(name);
	SPI_connect();
	if (SPI_execute_with_args("SELECT owner::oid FROM outbox.inbox_subscription WHERE name = $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read outbox.inbox_subscription");
	if (SPI_processed == 1)
		owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("inbox subscription \"%s\" does not exist", name)));
	return owner;
}

/*
 * check_may_change: only the subscription's owner (or a member of that
 * role) and the extension's owner may change a subscription.  The read
 * runs with the caller's rights, so callers without any right on the
 * table get a permission error too.
 */
static void
check_may_change(const char *name)
{
	Oid			save_userid;
	int			save_sec;
	Oid			owner;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(tables_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	owner = subscription_owner(name);
	SetUserIdAndSecContext(save_userid, save_sec);
	if (!has_privs_of_role(GetUserId(), owner) &&
		!has_privs_of_role(GetUserId(), tables_owner()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for inbox subscription \"%s\"", name),
				 errdetail("Only its owner, %s, and the owner of extension outbox_kafka may change it.",
						   GetUserNameFromId(owner, false))));
}

/*
 * outbox.subscribe(subscription, topic, handler, max_attempts, on_poison,
 * dead_letter_topic): consume topic and apply each message with handler,
 * run as the caller.  With dead_letter_topic, dead letters are also
 * enqueued to that topic as the caller, who must be allowed to.
 */
Datum
outbox_inbox_subscribe(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *topic;
	char	   *on_poison;
	char	   *dead_letter_topic = NULL;
	Oid			handler;
	int32		max_attempts;
	Oid			argtypes[7] = {TEXTOID, TEXTOID, OIDOID, OIDOID, INT4OID, TEXTOID, TEXTOID};
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', 'n'};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) ||
		PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the arguments of outbox.subscribe must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	topic = text_to_cstring(PG_GETARG_TEXT_PP(1));
	handler = PG_GETARG_OID(2);
	max_attempts = PG_GETARG_INT32(3);
	on_poison = text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (PG_NARGS() > 5 && !PG_ARGISNULL(5))
		dead_letter_topic = text_to_cstring(PG_GETARG_TEXT_PP(5));

	check_name(name);
	outbox_validate_topic(topic);
	if (max_attempts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1")));
	if (strcmp(on_poison, "dead_letter") != 0 && strcmp(on_poison, "hold") != 0 &&
		strcmp(on_poison, "hold_key") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid on_poison \"%s\"", on_poison),
				 errhint("Use 'dead_letter' (move the message aside after max_attempts), 'hold' (retry it until it succeeds, holding its partition) or 'hold_key' (set it aside with the later messages of its key, retrying it until it succeeds).")));
	check_handler(handler);
	if (dead_letter_topic != NULL)
	{
		outbox_validate_topic(dead_letter_topic);
		inbox_dlq_check_subscribe(dead_letter_topic, tables_owner());
	}

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(topic);
	args[2] = ObjectIdGetDatum(handler);
	args[3] = ObjectIdGetDatum(GetUserId());
	args[4] = Int32GetDatum(max_attempts);
	args[5] = CStringGetTextDatum(on_poison);
	if (dead_letter_topic != NULL)
	{
		args[6] = CStringGetTextDatum(dead_letter_topic);
		nulls[6] = ' ';
	}
	if (run_as_owner("INSERT INTO outbox.inbox_subscription"
					 " (name, topic, handler, owner, max_attempts, on_poison,"
					 "  dead_letter_topic)"
					 " VALUES ($1, $2, $3::regprocedure, $4::regrole, $5, $6, $7)"
					 " ON CONFLICT (name) DO NOTHING",
					 7, argtypes, args, nulls) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("inbox subscription \"%s\" already exists", name),
				 errhint("Choose another name, or call outbox.unsubscribe first.")));
	PG_RETURN_VOID();
}

/*
 * outbox.unsubscribe(subscription): forget the subscription, its offsets
 * and (at the next rotations) its de-duplication records; its dead
 * letters stay.  Returns false if there was no such subscription.
 */
Datum
outbox_inbox_unsubscribe(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];

	args[0] = CStringGetTextDatum(name);
	if (run_as_owner("SELECT 1 FROM outbox.inbox_subscription WHERE name = $1",
					 1, argtypes, args, NULL) == 0)
		PG_RETURN_BOOL(false);
	check_may_change(name);
	run_as_owner("DELETE FROM outbox.inbox_subscription WHERE name = $1",
				 1, argtypes, args, NULL);
	PG_RETURN_BOOL(true);
}

/*
 * outbox.inbox_rewind(subscription, partition, offset): consume partition
 * again from offset.  Messages whose de-duplication record is still kept
 * are skipped, not applied again.
 */
Datum
outbox_inbox_rewind(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		partition = PG_GETARG_INT32(1);
	int64		offset = PG_GETARG_INT64(2);
	Oid			argtypes[3] = {TEXTOID, INT4OID, INT8OID};
	Datum		args[3];

	if (partition < 0 || offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition and offset must not be negative")));
	check_may_change(name);
	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(partition);
	args[2] = Int64GetDatum(offset);
	run_as_owner("INSERT INTO outbox.inbox_offset (subscription, \"partition\", next_offset)"
				 " VALUES ($1, $2, $3)"
				 " ON CONFLICT (subscription, \"partition\") DO UPDATE"
				 " SET next_offset = EXCLUDED.next_offset, attempts = 0, updated_at = now()",
				 3, argtypes, args, NULL);
	PG_RETURN_VOID();
}

/*
 * request_rewind: ask the worker to move partition (-1: every partition)
 * of subscription name to its first message at or after at; replaces an
 * earlier request for the same partition.  The caller may change it.
 */
static void
request_rewind(const char *name, int32 partition, TimestampTz at)
{
	Oid			argtypes[3] = {TEXTOID, INT4OID, TIMESTAMPTZOID};
	Datum		args[3];

	check_may_change(name);
	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(partition);
	args[2] = TimestampTzGetDatum(at);
	run_as_owner("INSERT INTO outbox.inbox_rewind_request (subscription, \"partition\", \"timestamp\")"
				 " VALUES ($1, $2, $3)"
				 " ON CONFLICT (subscription, \"partition\") DO UPDATE"
				 " SET \"timestamp\" = EXCLUDED.\"timestamp\", requested_at = clock_timestamp()",
				 3, argtypes, args, NULL);
}

/*
 * outbox.inbox_rewind_to_time(subscription, timestamp): consume every partition
 * again from its first message at or after timestamp, within a second or
 * so (the worker asks the cluster).  De-duplication records decide what
 * is applied again.
 */
Datum
outbox_inbox_rewind_time(PG_FUNCTION_ARGS)
{
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(1);

	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the timestamp of a rewind must be finite")));
	request_rewind(text_to_cstring(PG_GETARG_TEXT_PP(0)), -1, at);
	PG_RETURN_VOID();
}

/*
 * outbox.inbox_rewind_to_time(subscription, partition, timestamp): the same for
 * one partition.
 */
Datum
outbox_inbox_rewind_partition_time(PG_FUNCTION_ARGS)
{
	int32		partition = PG_GETARG_INT32(1);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);

	if (partition < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition must not be negative")));
	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the timestamp of a rewind must be finite")));
	request_rewind(text_to_cstring(PG_GETARG_TEXT_PP(0)), partition, at);
	PG_RETURN_VOID();
}

/*
 * outbox.inbox_worker_status(): the state of this database's inbox
 * worker ('stopped' if none runs), its pid and its last error.
 */
Datum
outbox_inbox_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, true, true, true};
	InboxSlot  *slot = inbox_find_slot(MyDatabaseId);
	InboxState	state = INBOX_STATE_STOPPED;
	pid_t		pid = 0;
	TimestampTz last_error_at = 0;
	char		last_error[INBOX_ERROR_LEN];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	last_error[0] = '\0';
	if (slot != NULL)
	{
		SpinLockAcquire(&slot->mutex);
		if (slot->dboid == MyDatabaseId)
		{
			state = slot->state;
			pid = slot->pid;
			last_error_at = slot->last_error_at;
			memcpy(last_error, slot->last_error, INBOX_ERROR_LEN);
		}
		SpinLockRelease(&slot->mutex);
	}
	values[0] = CStringGetTextDatum(inbox_state_name(state));
	if (pid != 0)
	{
		values[1] = Int32GetDatum((int32) pid);
		nulls[1] = false;
	}
	if (last_error[0] != '\0')
	{
		values[2] = CStringGetTextDatum(last_error);
		values[3] = TimestampTzGetDatum(last_error_at);
		nulls[2] = nulls[3] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * outbox.inbox_watermarks(): the high watermark of every partition the
 * worker consumes, as last seen in a fetch (NULL while unknown).
 */
Datum
outbox_inbox_watermarks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	InboxSlot  *slot = inbox_find_slot(MyDatabaseId);
	InboxWatermark *marks = NULL;
	int			n = 0;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (slot != NULL)
	{
		marks = palloc(sizeof(InboxWatermark) * INBOX_MAX_WATERMARKS);
		SpinLockAcquire(&slot->mutex);
		if (slot->dboid == MyDatabaseId)
		{
			n = slot->nwatermarks;
			memcpy(marks, slot->watermarks, sizeof(InboxWatermark) * n);
		}
		SpinLockRelease(&slot->mutex);
	}
	for (i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(marks[i].subscription);
		values[1] = Int32GetDatum(marks[i].partition);
		values[2] = Int64GetDatum(marks[i].high);
		nulls[2] = (marks[i].high < 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
