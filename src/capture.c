/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  outbox.capture(): a row trigger that turns row changes into events.
 *
 *	  CREATE TRIGGER orders_outbox AFTER INSERT OR UPDATE OR DELETE ON orders
 *	    FOR EACH ROW EXECUTE FUNCTION outbox.capture('orders.changes', 'id');
 *
 * Trigger arguments: the topic, then one or more key columns.  The payload
 * is a JSON envelope {"op", "schema", "table", "before", "after", "ts"};
 * the key is the key column's text, or a JSON array for several columns.
 * An update that changes the key also publishes a delete for the old key.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "outbox_kafka.h"

PG_FUNCTION_INFO_V1(outbox_capture);

static void check_trigger_usage(TriggerData *trigdata);
static int	key_column(TupleDesc tupdesc, const char *name, const char *relname);
static void append_row(StringInfo buf, HeapTuple tuple, TupleDesc tupdesc);
static void append_json_value(StringInfo buf, HeapTuple tuple,
							  TupleDesc tupdesc, int attnum);
static text *build_key(TriggerData *trigdata, HeapTuple tuple);
static bool keys_equal(text *a, text *b);
static void capture_event(TriggerData *trigdata, const char *topic,
						  const char *op, text *key, HeapTuple before,
						  HeapTuple after, const char *ts);

/*
 * check_trigger_usage: ERROR unless we run as an AFTER ... FOR EACH ROW
 * trigger on INSERT, UPDATE or DELETE with a topic and key column(s).
 */
static void
check_trigger_usage(TriggerData *trigdata)
{
	TriggerEvent ev = trigdata->tg_event;

	if (!TRIGGER_FIRED_FOR_ROW(ev) || !TRIGGER_FIRED_AFTER(ev) ||
		!(TRIGGER_FIRED_BY_INSERT(ev) || TRIGGER_FIRED_BY_UPDATE(ev) ||
		  TRIGGER_FIRED_BY_DELETE(ev)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("outbox.capture() must be fired AFTER INSERT, UPDATE or DELETE FOR EACH ROW"),
				 errhint("Use CREATE TRIGGER ... AFTER INSERT OR UPDATE OR DELETE ON table FOR EACH ROW EXECUTE FUNCTION outbox.capture('topic', 'key_column').")));

	if (trigdata->tg_trigger->tgnargs < 2)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("outbox.capture() needs a topic and at least one key column"),
				 errdetail_plural("Trigger \"%s\" on table \"%s\" passes %d argument.",
								  "Trigger \"%s\" on table \"%s\" passes %d arguments.",
								  trigdata->tg_trigger->tgnargs,
								  trigdata->tg_trigger->tgname,
								  RelationGetRelationName(trigdata->tg_relation),
								  trigdata->tg_trigger->tgnargs),
				 errhint("Use EXECUTE FUNCTION outbox.capture('topic', 'key_column' [, ...]).")));
}

/*
 * key_column: attribute number of the user column called name; ERROR if
 * the table has no such column.
 */
static int
key_column(TupleDesc tupdesc, const char *name, const char *relname)
{
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum == SPI_ERROR_NOATTRIBUTE || attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("key column \"%s\" of outbox.capture() does not exist in table \"%s\"",
						name, relname)));
	return attnum;
}

/*
 * append_row: the row as a JSON object (row_to_json), or null.
 */
static void
append_row(StringInfo buf, HeapTuple tuple, TupleDesc tupdesc)
{
	Datum		json;

	if (tuple == NULL)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	json = DirectFunctionCall1(row_to_json,
							   heap_copy_tuple_as_datum(tuple, tupdesc));
	appendBinaryStringInfo(buf, VARDATA_ANY(DatumGetPointer(json)),
						   VARSIZE_ANY_EXHDR(DatumGetPointer(json)));
}

/*
 * append_json_value: one column value as a JSON value: numbers and
 * booleans bare, everything else as a JSON string, NULL as null.
 */
static void
append_json_value(StringInfo buf, HeapTuple tuple, TupleDesc tupdesc,
				  int attnum)
{
	Oid			typid = SPI_gettypeid(tupdesc, attnum);
	char	   *value = SPI_getvalue(tuple, tupdesc, attnum);

	if (value == NULL)
	{
		appendStringInfoString(buf, "null");
		return;
	}

	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
			appendStringInfoString(buf, value);
			return;
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
			/* NaN and Infinity are not JSON numbers */
			if (strspn(value, "0123456789.-+eE") == strlen(value))
			{
				appendStringInfoString(buf, value);
				return;
			}
			break;
		case BOOLOID:
			appendStringInfoString(buf, value[0] == 't' ? "true" : "false");
			return;
		default:
			break;
	}
	escape_json(buf, value);
}

/*
 * build_key: the Kafka key for tuple: the key column's text for one
 * column (NULL if the value is NULL), a JSON array for several.
 */
static text *
build_key(TriggerData *trigdata, HeapTuple tuple)
{
	Trigger    *trigger = trigdata->tg_trigger;
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	const char *relname = RelationGetRelationName(trigdata->tg_relation);
	StringInfoData buf;
	int			i;

	if (trigger->tgnargs == 2)
	{
		char	   *value;

		value = SPI_getvalue(tuple, tupdesc,
							 key_column(tupdesc, trigger->tgargs[1], relname));
		return value ? cstring_to_text(value) : NULL;
	}

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (i = 1; i < trigger->tgnargs; i++)
	{
		if (i > 1)
			appendStringInfoChar(&buf, ',');
		append_json_value(&buf, tuple, tupdesc,
						  key_column(tupdesc, trigger->tgargs[i], relname));
	}
	appendStringInfoChar(&buf, ']');
	return cstring_to_text_with_len(buf.data, buf.len);
}

/*
 * keys_equal: are two keys from build_key the same Kafka key (same bytes,
 * or both NULL)?
 */
static bool
keys_equal(text *a, text *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/*
 * capture_event: build the envelope of one row change and insert it as an
 * event keyed by key.  before and after may be NULL; ts is the capture
 * time, already rendered.  The envelope is published in UTF-8.
 */
static void
capture_event(TriggerData *trigdata, const char *topic, const char *op,
			  text *key, HeapTuple before, HeapTuple after, const char *ts)
{
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bytea	   *payload;
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	appendStringInfo(&buf, "\"op\":\"%s\",\"schema\":", op);
	escape_json(&buf, get_namespace_name(RelationGetNamespace(trigdata->tg_relation)));
	appendStringInfoString(&buf, ",\"table\":");
	escape_json(&buf, RelationGetRelationName(trigdata->tg_relation));
	appendStringInfoString(&buf, ",\"before\":");
	append_row(&buf, before, tupdesc);
	appendStringInfoString(&buf, ",\"after\":");
	append_row(&buf, after, tupdesc);
	appendStringInfo(&buf, ",\"ts\":\"%s\"}", ts);

	payload = outbox_payload_to_utf8((bytea *) cstring_to_text_with_len(buf.data,
																		 buf.len));
	outbox_validate_event_size(payload, key, 0);
	outbox_insert_event(topic, key, payload, OUTBOX_PAYLOAD_JSON, NULL);
}

/*
 * outbox_capture: the trigger function.  Inserts one event per row change
 * into the outbox, in the changing transaction.
 *
 * An UPDATE that changes the key publishes two events: first a delete
 * envelope (op "d", before the old row, after null) keyed by the old key,
 * exactly what a DELETE of the old row would publish, then the update
 * envelope keyed by the new key.  A consumer that keeps the latest value
 * per key (or a compacted topic) thus forgets the old key instead of
 * keeping a row that no longer exists under it.  An old key that is NULL
 * gets no delete: a message without a key replaces nothing.
 */
Datum
outbox_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	HeapTuple	before = NULL;
	HeapTuple	after = NULL;
	const char *op;
	const char *topic;
	text	   *key;
	char		ts[MAXDATELEN + 1];

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("outbox.capture() must be called as a trigger")));

	trigdata = (TriggerData *) fcinfo->context;
	check_trigger_usage(trigdata);

	topic = trigdata->tg_trigger->tgargs[0];
	outbox_validate_topic(topic);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		op = "c";
		after = trigdata->tg_trigtuple;
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		op = "u";
		before = trigdata->tg_trigtuple;
		after = trigdata->tg_newtuple;
	}
	else
	{
		op = "d";
		before = trigdata->tg_trigtuple;
	}

	key = build_key(trigdata, after ? after : before);
	JsonEncodeDateTime(ts, TimestampTzGetDatum(GetCurrentTimestamp()),
					   TIMESTAMPTZOID, NULL);

	if (before != NULL && after != NULL)
	{
		text	   *old_key = build_key(trigdata, before);

		/* a NULL key names no record to replace: nothing to delete */
		if (old_key != NULL && !keys_equal(old_key, key))
			capture_event(trigdata, topic, "d", old_key, before, NULL, ts);
	}
	capture_event(trigdata, topic, op, key, before, after, ts);

	return PointerGetDatum(NULL);
}
