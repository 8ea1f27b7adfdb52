/*-------------------------------------------------------------------------
 *
 * enqueue.c
 *	  The enqueue path: outbox.enqueue() and the row insert it shares with
 *	  outbox.capture() and outbox.requeue_dead_letters(), the event's
 *	  never-reused identity (a UUIDv7) and outbox.last_event_id().
 *
 * This runs in the application's backend, inside its transaction: it
 * validates the event (so bad input fails the caller early, G7), inserts
 * one row into the current event table with a kept SPI plan, and arranges
 * for the database's relay to be woken when the transaction commits.  No
 * network, no extra commit, no extra fsync.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/enqueue.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "outbox_kafka.h"
#include "topic_grant.h"

PG_FUNCTION_INFO_V1(outbox_enqueue_jsonb);
PG_FUNCTION_INFO_V1(outbox_enqueue_text);
PG_FUNCTION_INFO_V1(outbox_enqueue_bytea);
PG_FUNCTION_INFO_V1(outbox_requeue_event);
PG_FUNCTION_INFO_V1(outbox_last_event_id);

/* Number of rotating event tables (outbox.event_0 .. event_2). */
#define OUTBOX_EVENT_TABLES 3

/*
 * Kept SPI plans, prepared on first use in this backend.  The INSERT comes
 * in two forms: with event_uuid (schema 0.4 on) and without, for a
 * database whose extension is not updated yet, so that installing a new
 * library never stops applications from enqueueing.
 */
static SPIPlanPtr current_table_plan = NULL;
static SPIPlanPtr insert_plans[2][OUTBOX_EVENT_TABLES];

/*
 * Owner of the outbox tables, or InvalidOid when it must be looked up, and
 * what the installed schema has (looked up with the owner).
 */
static Oid	cached_owner = InvalidOid;
static bool cached_has_uuid = false;	/* outbox.event.event_uuid exists */
static bool cached_has_grants = false;	/* outbox.topic_grant exists */

/* The event identity of the last event this transaction enqueued. */
static pg_uuid_t last_event_uuid;
static bool last_event_uuid_set = false;

/* Set once this transaction enqueued something; cleared at its end. */
static bool wake_at_commit = false;
/* this transaction was counted by outbox_async_commit_begin() */
static bool async_commit_counted = false;

static void outbox_xact_callback(XactEvent event, void *arg);
static int	current_event_table(void);
static Oid	outbox_owner(void);
static SPIPlanPtr insert_plan(int table_no, bool with_uuid);
static void new_event_uuid(pg_uuid_t *uuid);
static int64 insert_event(const char *topic, text *key, bytea *payload,
						  char payload_kind, Jsonb *headers,
						  const pg_uuid_t *uuid, bool check_grant);
static char *printable(const char *s, int len);
static bool is_ascii(const char *s, int len);
static void utf8_error_context(void *arg);
static int	utf8_length(const char *s, int len, const char *what);
static Size validate_headers(Jsonb *headers);
static Datum enqueue_common(FunctionCallInfo fcinfo, bytea *payload,
							char payload_kind);

/*
 * printable: s (len bytes in the database encoding) for an error message:
 * control characters, DEL and backslashes escaped as \xNN, so that a name
 * a caller made up cannot forge lines in the server log or the client's
 * output, and cut to at most 64 bytes of the name (on a character
 * boundary) with "..." appended.  Returns a palloc'd string.
 */
static char *
printable(const char *s, int len)
{
	StringInfoData buf;
	int			shown = len > 64 ? pg_mbcliplen(s, len, 64) : len;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < shown; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < 0x20 || c == 0x7f || c == '\\')
			appendStringInfo(&buf, "\\x%02x", c);
		else
			appendStringInfoChar(&buf, (char) c);
	}
	if (shown < len)
		appendStringInfoString(&buf, "...");
	return buf.data;
}

/*
 * outbox_validate_topic: ERROR unless topic is a legal Kafka topic name:
 * 1 to 249 characters of [a-zA-Z0-9._-], and neither "." nor "..".
 */
void
outbox_validate_topic(const char *topic)
{
	size_t		len = strlen(topic);
	const char *p;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic must not be empty")));
	if (len > OUTBOX_MAX_TOPIC_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic name is too long"),
				 errdetail("The name has %zu characters; Kafka allows at most %d.",
						   len, OUTBOX_MAX_TOPIC_LEN)));
	if (strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid topic name \"%s\"", printable(topic, len)),
				 errdetail("Kafka does not allow \".\" or \"..\" as a topic name.")));
	for (p = topic; *p; p++)
	{
		char		c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid topic name \"%s\"", printable(topic, len)),
					 errdetail("Kafka topic names may contain only ASCII letters, digits, \".\", \"_\" and \"-\".")));
	}
}

/*
 * is_ascii: are all len bytes of s 7-bit ASCII?
 */
static bool
is_ascii(const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		if (IS_HIGHBIT_SET(s[i]))
			return false;
	}
	return true;
}

/*
 * utf8_error_context: names the part of the event that could not be
 * converted to UTF-8 (arg is a string like "payload" or "key").
 */
static void
utf8_error_context(void *arg)
{
	errcontext("converting the %s of an outbox event to UTF8", (const char *) arg);
}

/*
 * outbox_to_utf8: s (len bytes in the database encoding) in UTF-8, and its
 * length in *out_len.  Returns s itself when nothing needs converting (a
 * UTF-8 database, or pure ASCII), otherwise a palloc'd copy.  ERROR when s
 * has no UTF-8 form (22P05) or is not valid in the database encoding or,
 * in a SQL_ASCII database, is not valid UTF-8 (22021); what ("payload",
 * "key", ...) names the part in the error context.
 *
 * Kafka consumers read keys, headers and JSON as UTF-8 (the relay labels
 * JSON payloads application/json), so this runs at enqueue: the caller's
 * transaction fails instead of a consumer receiving other bytes.
 */
const char *
outbox_to_utf8(const char *s, int len, int *out_len, const char *what)
{
	ErrorContextCallback errcallback;
	const char *converted;

	*out_len = len;
	if (GetDatabaseEncoding() == PG_UTF8 || len == 0)
		return s;
	/* ASCII is the same in every encoding: nothing to convert */
	if (is_ascii(s, len))
		return s;

	errcallback.callback = utf8_error_context;
	errcallback.arg = unconstify(char *, what);
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	converted = pg_server_to_any(s, len, PG_UTF8);

	error_context_stack = errcallback.previous;

	if (converted != s)
		*out_len = strlen(converted);
	return converted;
}

/*
 * outbox_payload_to_utf8: payload (JSON or text in the database encoding)
 * as UTF-8, the form the relay publishes as is.  Returns payload itself
 * when nothing needs converting.  ERROR as outbox_to_utf8.
 */
bytea *
outbox_payload_to_utf8(bytea *payload)
{
	const char *converted;
	int			len;
	bytea	   *result;

	converted = outbox_to_utf8(VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload),
							   &len, "payload");
	if (converted == VARDATA_ANY(payload))
		return payload;
	result = (bytea *) palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), converted, len);
	return result;
}

/*
 * outbox_headers_to_utf8: the relay's copy of an event's headers with
 * every name and string value in UTF-8, for producer.c to send as they
 * are.  Returns headers itself in a UTF-8 database.  Needs a transaction
 * (the conversion functions are looked up in the catalogs); ERROR as
 * outbox_to_utf8 (cannot happen for events that passed enqueue).
 *
 * The result is a Jsonb only as a container for the producer and is never
 * stored: in a database of another encoding its strings are not valid
 * text.  Object keys are re-sorted by their UTF-8 form, so headers may go
 * out in another order than in a UTF-8 database; JSON objects have no
 * order anyway.
 */
Jsonb *
outbox_headers_to_utf8(Jsonb *headers)
{
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbValue *result = NULL;
	JsonbIteratorToken r;

	if (GetDatabaseEncoding() == PG_UTF8 || !JB_ROOT_IS_OBJECT(headers) ||
		JB_ROOT_IS_SCALAR(headers))
		return headers;

	it = JsonbIteratorInit(&headers->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if ((r == WJB_KEY || r == WJB_VALUE) && v.type == jbvString)
		{
			int			len;

			v.val.string.val = unconstify(char *,
										  outbox_to_utf8(v.val.string.val,
														 v.val.string.len, &len,
														 r == WJB_KEY ? "header name" : "header value"));
			v.val.string.len = len;
		}
		result = pushJsonbValue(&state, r,
								(r == WJB_KEY || r == WJB_VALUE) ? &v : NULL);
	}
	return JsonbValueToJsonb(result);
}

/*
 * utf8_length: length in bytes of s (len bytes in the database encoding)
 * once converted to UTF-8.  ERROR as outbox_to_utf8.
 */
static int
utf8_length(const char *s, int len, const char *what)
{
	int			out_len;

	(void) outbox_to_utf8(s, len, &out_len, what);
	return out_len;
}

/*
 * validate_headers: ERROR unless headers is a JSON object whose values are
 * strings or null and whose names do not use the reserved "outbox-"
 * prefix, and unless every name and value has a UTF-8 form.  Returns the
 * bytes the headers add to a Kafka record: UTF-8 names and values, each
 * with its length varint, as librdkafka counts them.
 */
static Size
validate_headers(Jsonb *headers)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	Size		bytes = 0;
	char	   *name = NULL;
	int			name_len = 0;

	if (!JB_ROOT_IS_OBJECT(headers) || JB_ROOT_IS_SCALAR(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headers must be a JSON object"),
				 errhint("Pass headers like '{\"trace-id\": \"abc\"}'::jsonb; values must be strings or null.")));

	it = JsonbIteratorInit(&headers->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
		{
			name = pnstrdup(v.val.string.val, v.val.string.len);
			if (pg_strncasecmp(name, OUTBOX_RESERVED_HEADER_PREFIX,
							   strlen(OUTBOX_RESERVED_HEADER_PREFIX)) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("header name \"%s\" is reserved",
								printable(name, v.val.string.len)),
						 errdetail("Header names starting with \"%s\" are set by the relay.",
								   OUTBOX_RESERVED_HEADER_PREFIX)));
			name_len = utf8_length(v.val.string.val, v.val.string.len,
								   "header name");
		}
		else if (r == WJB_VALUE)
		{
			if (v.type == jbvString)
				bytes += OUTBOX_HEADER_WIRE_BYTES((Size) name_len,
												  (Size) utf8_length(v.val.string.val,
																	 v.val.string.len,
																	 "header value"));
			else if (v.type == jbvNull)
				bytes += OUTBOX_HEADER_WIRE_BYTES((Size) name_len, 0);
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("value of header \"%s\" must be a string or null",
								name ? printable(name, strlen(name)) : ""),
						 errhint("Convert numbers and other values to strings, for example with to_jsonb(value::text).")));
		}
	}
	return bytes;
}

/*
 * outbox_validate_event_size: ERROR when the Kafka record the relay will
 * make of this event could exceed outbox_kafka.max_message_bytes.  payload
 * must already be in UTF-8 (outbox_payload_to_utf8); key is in the
 * database encoding and measured in UTF-8 (ERROR if it has no UTF-8 form);
 * header_bytes is what validate_headers returned.  Either datum may be
 * NULL.
 *
 * The record's size is counted as librdkafka and the broker count it: the
 * key and the value, the caller's headers with their framing, the headers
 * the relay adds in their longest form, and the record and record batch
 * framing (OUTBOX_MESSAGE_OVERHEAD_BYTES).  So an event accepted here is
 * never refused for size by a producer and broker whose message.max.bytes
 * is at least outbox_kafka.max_message_bytes.
 */
void
outbox_validate_event_size(bytea *payload, text *key, Size header_bytes)
{
	Size		total = header_bytes + OUTBOX_MESSAGE_OVERHEAD_BYTES;

	if (payload != NULL)
		total += VARSIZE_ANY_EXHDR(payload);
	if (key != NULL)
		total += utf8_length(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), "key");

	if (total > (Size) outbox_max_message_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("event is too large: %zu bytes", total),
				 errdetail("Payload, key and headers plus %d bytes for the relay's headers and the record's framing may take at most %d bytes (\"outbox_kafka.max_message_bytes\").",
						   OUTBOX_MESSAGE_OVERHEAD_BYTES,
						   outbox_max_message_bytes),
				 errhint("Store large documents elsewhere and publish a reference, or raise \"outbox_kafka.max_message_bytes\" together with the producer's and the broker's \"message.max.bytes\".")));
}

/*
 * current_event_table: number of the event table new rows go to.  The
 * database's relay publishes it in shared memory after every maintenance
 * run; without a relay it is read from outbox.rotation.  A stale answer is
 * harmless: rows in a table that is no longer current are still published
 * and only delay its truncation.  Expects to run inside SPI_connect().
 */
static int
current_event_table(void)
{
	bool		isnull;
	Datum		d;
	int			table_no;
	OutboxWorkerSlot *slot = outbox_find_slot(MyDatabaseId);

	if (slot != NULL)
	{
		uint32		cached = pg_atomic_read_u32(&slot->current_table);

		if (cached > 0 && cached <= OUTBOX_EVENT_TABLES)
			return (int) cached - 1;
	}

	if (current_table_plan == NULL)
	{
		SPIPlanPtr	plan;

		plan = SPI_prepare("SELECT current_table FROM outbox.rotation", 0, NULL);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		current_table_plan = plan;
	}

	if (SPI_execute_plan(current_table_plan, NULL, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("outbox.rotation must contain exactly one row"),
				 errhint("Recreate the extension with DROP EXTENSION outbox_kafka; CREATE EXTENSION outbox_kafka;")));

	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	table_no = isnull ? -1 : DatumGetInt16(d);
	if (table_no < 0 || table_no >= OUTBOX_EVENT_TABLES)
		elog(ERROR, "outbox.rotation.current_table is out of range: %d", table_no);
	return table_no;
}

/*
 * forget_owner: syscache callback; any change to pg_class may be a new
 * owner or a re-created extension, so look the owner up again.
 */
static void
forget_owner(Datum arg, int cacheid, uint32 hashvalue)
{
	cached_owner = InvalidOid;
}

/*
 * outbox_owner: the role that owns the outbox tables (the extension's
 * owner), cached until pg_class changes, together with whether the
 * installed schema has event identities and topic grants (0.4 on).
 * ERROR if the extension is not installed.  Needs a transaction.
 */
static Oid
outbox_owner(void)
{
	static bool callback_registered = false;
	Oid			nspid;
	Oid			relid;
	HeapTuple	tuple;
	Oid			owner;

	if (OidIsValid(cached_owner))
		return cached_owner;
	if (!callback_registered)
	{
		CacheRegisterSyscacheCallback(RELOID, forget_owner, (Datum) 0);
		callback_registered = true;
	}

	nspid = get_namespace_oid("outbox", false);
	relid = get_relname_relid("rotation", nspid);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"outbox.rotation\" does not exist"),
				 errhint("Recreate the extension with DROP EXTENSION outbox_kafka; CREATE EXTENSION outbox_kafka;")));
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	relid = get_relname_relid("event", nspid);
	cached_has_uuid = OidIsValid(relid) &&
		get_attnum(relid, "event_uuid") != InvalidAttrNumber;
	cached_has_grants = OidIsValid(get_relname_relid("topic_grant", nspid));
	cached_owner = owner;
	return owner;
}

/*
 * insert_plan: the kept INSERT plan for event table table_no, with the
 * event_uuid column ($6) or without.  Expects to run inside SPI_connect().
 */
static SPIPlanPtr
insert_plan(int table_no, bool with_uuid)
{
	if (insert_plans[with_uuid][table_no] == NULL)
	{
		Oid			argtypes[6] = {TEXTOID, TEXTOID, BYTEAOID, CHAROID, JSONBOID, UUIDOID};
		char		sql[256];
		SPIPlanPtr	plan;

		if (with_uuid)
			snprintf(sql, sizeof(sql),
					 "INSERT INTO outbox.event_%d (topic, key, payload, payload_kind, headers, event_uuid)"
					 " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
					 table_no);
		else
			snprintf(sql, sizeof(sql),
					 "INSERT INTO outbox.event_%d (topic, key, payload, payload_kind, headers)"
					 " VALUES ($1, $2, $3, $4, $5) RETURNING id",
					 table_no);
		plan = SPI_prepare(sql, with_uuid ? 6 : 5, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		insert_plans[with_uuid][table_no] = plan;
	}
	return insert_plans[with_uuid][table_no];
}

/*
 * new_event_uuid: a new event identity in the UUIDv7 layout (RFC 9562):
 * the Unix time in milliseconds in the first 48 bits, then the version
 * (7), 12 random bits, the variant (binary 10) and 62 random bits, all
 * random bits from pg_strong_random.  Time-ordered, so a consumer's
 * de-duplication index stays compact; random, so it is unique without
 * any coordination: no sequence, no clock of another server, nothing a
 * restore or a failover could set back (docs/operations.md).  ERROR if no
 * random bytes can be had.
 */
static void
new_event_uuid(pg_uuid_t *uuid)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		unix_ms;
	int			i;

	/* TimestampTz counts microseconds since 2000-01-01 */
	unix_ms = (uint64) (now / 1000) +
		(uint64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;

	if (!pg_strong_random(uuid->data + 6, UUID_LEN - 6))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values for an event id")));
	for (i = 0; i < 6; i++)
		uuid->data[i] = (unsigned char) (unix_ms >> (8 * (5 - i)));
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x70;	/* version 7 */
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;	/* variant 10 */
}

/*
 * outbox_insert_event: insert one already validated event, for the
 * current user, into the current event table and return its id.  key,
 * payload and headers may be NULL.  ERROR (42501) unless a topic grant
 * lets the current user publish to topic.  The event gets a new identity,
 * which outbox.last_event_id() then returns.  Must be called inside a
 * transaction; SPI must not be connected.
 */
int64
outbox_insert_event(const char *topic, text *key, bytea *payload,
					char payload_kind, Jsonb *headers)
{
	return insert_event(topic, key, payload, payload_kind, headers, NULL, true);
}

/*
 * insert_event: outbox_insert_event, with the event identity uuid (NULL:
 * a new one) and the topic grant check only if check_grant.
 *
 * Only the insert runs with the rights of the outbox's owner, as a
 * restricted operation: callers need no rights on the tables, and nothing
 * of the caller's (casts, operators, triggers on their tables) ever runs
 * with elevated rights.  The statements are fully schema-qualified.
 */
static int64
insert_event(const char *topic, text *key, bytea *payload, char payload_kind,
			 Jsonb *headers, const pg_uuid_t *uuid, bool check_grant)
{
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int64		id;
	int			ret;
	Oid			owner = outbox_owner();
	bool		with_uuid = cached_has_uuid;
	pg_uuid_t	new_uuid;
	Oid			save_userid;
	int			save_sec_context;

	/* the caller's right to the topic, before anything runs as the owner */
	if (check_grant && cached_has_grants)
		outbox_check_topic_grant(topic, owner);

	if (uuid == NULL)
	{
		new_event_uuid(&new_uuid);
		uuid = &new_uuid;
	}

	values[0] = CStringGetTextDatum(topic);
	if (key != NULL)
		values[1] = PointerGetDatum(key);
	else
		nulls[1] = 'n';
	if (payload != NULL)
		values[2] = PointerGetDatum(payload);
	else
		nulls[2] = 'n';
	values[3] = CharGetDatum(payload_kind);
	if (headers != NULL)
		values[4] = JsonbPGetDatum(headers);
	else
		nulls[4] = 'n';
	values[5] = UUIDPGetDatum(uuid);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	SPI_connect();
	ret = SPI_execute_plan(insert_plan(current_event_table(), with_uuid),
						   values, nulls, false, 1);
	if (ret != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not insert event: %s", SPI_result_code_string(ret));
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									 SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	/* on ERROR, transaction abort restores the user id */
	SetUserIdAndSecContext(save_userid, save_sec_context);

	wake_at_commit = true;
	if (with_uuid)
	{
		last_event_uuid = *uuid;
		last_event_uuid_set = true;
	}
	return id;
}

/*
 * enqueue_common: argument handling shared by the three outbox.enqueue
 * variants.  Arguments: topic, (payload, already converted by the caller),
 * key, headers.  payload is NULL for a tombstone.
 */
static Datum
enqueue_common(FunctionCallInfo fcinfo, bytea *payload, char payload_kind)
{
	char	   *topic;
	text	   *key = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	Jsonb	   *headers = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	Size		header_bytes = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("topic must not be null")));
	topic = text_to_cstring(PG_GETARG_TEXT_PP(0));
	outbox_validate_topic(topic);

	if (payload == NULL && key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payload must not be null unless a key is given"),
				 errhint("A null payload with a key is a tombstone for compacted topics.")));

	if (headers != NULL)
		header_bytes = validate_headers(headers);
	outbox_validate_event_size(payload, key, header_bytes);

	PG_RETURN_INT64(outbox_insert_event(topic, key, payload, payload_kind,
										headers));
}

/*
 * outbox.enqueue(topic text, payload jsonb, key text, headers jsonb)
 * The JSON text is stored in UTF-8; the relay adds content-type:
 * application/json.
 */
Datum
outbox_enqueue_jsonb(PG_FUNCTION_ARGS)
{
	bytea	   *payload = NULL;

	if (!PG_ARGISNULL(1))
	{
		Jsonb	   *jb = PG_GETARG_JSONB_P(1);
		StringInfoData buf;

		/* build the bytea in place: header first, then the JSON text */
		initStringInfo(&buf);
		appendStringInfoSpaces(&buf, VARHDRSZ);
		JsonbToCString(&buf, &jb->root, VARSIZE(jb));
		SET_VARSIZE(buf.data, buf.len);
		payload = outbox_payload_to_utf8((bytea *) buf.data);
	}
	return enqueue_common(fcinfo, payload, OUTBOX_PAYLOAD_JSON);
}

/*
 * outbox.enqueue(topic text, payload text, key text, headers jsonb)
 * text and bytea share their representation; the text is stored (and
 * published) in UTF-8 whatever the database encoding.
 */
Datum
outbox_enqueue_text(PG_FUNCTION_ARGS)
{
	bytea	   *payload = NULL;

	if (!PG_ARGISNULL(1))
		payload = outbox_payload_to_utf8((bytea *) PG_GETARG_TEXT_PP(1));

	return enqueue_common(fcinfo, payload, OUTBOX_PAYLOAD_TEXT);
}

/*
 * outbox.enqueue(topic text, payload bytea, key text, headers jsonb)
 */
Datum
outbox_enqueue_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *payload = PG_ARGISNULL(1) ? NULL : PG_GETARG_BYTEA_PP(1);

	return enqueue_common(fcinfo, payload, OUTBOX_PAYLOAD_BYTES);
}

/*
 * outbox._requeue_event(topic, key, payload bytea, payload_kind "char",
 * headers [, event_uuid]): insert a dead letter again as a new event,
 * exactly as it was stored, without re-validating it and without a topic
 * grant check (it was published before; who may re-queue is decided by
 * EXECUTE on outbox.requeue_dead_letters).  It keeps its event identity
 * (a new one if it has none, or under the 0.3 signature without it): a
 * re-queue publishes the same event again.  Used by
 * outbox.requeue_dead_letters.
 */
Datum
outbox_requeue_event(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = NULL;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("topic and payload kind must not be null")));
	if (PG_NARGS() > 5 && !PG_ARGISNULL(5))
		uuid = PG_GETARG_UUID_P(5);

	PG_RETURN_INT64(insert_event(text_to_cstring(PG_GETARG_TEXT_PP(0)),
								 PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
								 PG_ARGISNULL(2) ? NULL : PG_GETARG_BYTEA_PP(2),
								 PG_GETARG_CHAR(3),
								 PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4),
								 uuid, false));
}

/*
 * outbox.last_event_id(): the event identity (outbox-event-id) of the
 * last event this transaction enqueued, through outbox.enqueue or a
 * capture trigger; NULL when it enqueued none.  Scoped to the transaction
 * rather than the session, so that with a pooler that hands a connection
 * to another client between transactions nobody reads someone else's.
 */
Datum
outbox_last_event_id(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *result;

	if (!last_event_uuid_set)
		PG_RETURN_NULL();
	result = palloc(sizeof(pg_uuid_t));
	*result = last_event_uuid;
	PG_RETURN_UUID_P(result);
}

/*
 * outbox_xact_callback: wake the relay when a transaction that enqueued
 * commits (the commit is visible to other backends by then), and tell it
 * about a commit that may be visible before it is on disk
 * (synchronous_commit = off), so it can flush WAL before publishing (G9)
 * without flushing for every chunk.  Must not throw.  A prepared
 * transaction is picked up by the poll_interval fallback; COMMIT PREPARED
 * always waits for the disk.
 */
static void
outbox_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (wake_at_commit && OutboxShmem != NULL &&
				synchronous_commit <= SYNCHRONOUS_COMMIT_OFF)
			{
				outbox_async_commit_begin();
				async_commit_counted = true;
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (async_commit_counted)
				outbox_async_commit_end(XactLastCommitEnd);
			async_commit_counted = false;
			if (wake_at_commit)
				outbox_wake_worker(MyDatabaseId);
			wake_at_commit = false;
			last_event_uuid_set = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			if (async_commit_counted)
				outbox_async_commit_end(InvalidXLogRecPtr);
			async_commit_counted = false;
			wake_at_commit = false;
			last_event_uuid_set = false;
			break;
		default:
			break;
	}
}

/*
 * outbox_register_xact_callback: called once per process from _PG_init.
 */
void
outbox_register_xact_callback(void)
{
	RegisterXactCallback(outbox_xact_callback, NULL);
}
