/*-------------------------------------------------------------------------
 *
 * inbox_dlq.c
 *	  The Kafka dead-letter topic of an inbox subscription: a dead-lettered
 *	  message is also enqueued to that topic with outbox.enqueue, in the
 *	  batch's transaction, so that the relay publishes it.  The dead-letter
 *	  record, the Kafka record to be published and the offset commit
 *	  together or not at all.
 *
 * The record has the message's key and value, its headers (but the
 * reserved outbox-* ones, which the relay sets) and headers naming where
 * it came from and why it failed (docs/inbox.md).  It is enqueued as the
 * subscription's owner, who needs EXECUTE on outbox.enqueue and a topic
 * grant for the topic: both are checked when subscribing.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_dlq.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/regproc.h"

#include "inbox.h"
#include "outbox_kafka.h"
#include "relay.h"
#include "topic_grant.h"

#define ENQUEUE_SIGNATURE	"outbox.enqueue(text,bytea,text,jsonb)"

static SPIPlanPtr enqueue_plan = NULL;

/*
 * inbox_dlq_check_subscribe: ERROR (42501) unless the current user, who
 * subscribes, may enqueue to topic (a valid topic name): EXECUTE on
 * outbox.enqueue(text, bytea, text, jsonb) and a topic grant.
 * outbox_owner owns the outbox's tables.  SPI must not be connected.
 */
void
inbox_dlq_check_subscribe(const char *topic, Oid outbox_owner)
{
	Oid			enqueue = DatumGetObjectId(DirectFunctionCall1(regprocedurein,
															   CStringGetDatum(ENQUEUE_SIGNATURE)));

	if (pg_proc_aclcheck(enqueue, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to use dead-letter topic \"%s\"", topic),
				 errdetail("Dead letters are enqueued to it with %s as the subscription's owner, role \"%s\", which may not execute it.",
						   ENQUEUE_SIGNATURE, GetUserNameFromId(GetUserId(), false)),
				 errhint("GRANT EXECUTE ON FUNCTION %s TO %s;", ENQUEUE_SIGNATURE,
						 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
	outbox_check_topic_grant(topic, outbox_owner);
}

/*
 * inbox_dlq_enqueue: enqueue msg, dead-lettered after attempts failures
 * with edata, to sub's dead-letter topic, as sub's owner.  A key that is
 * not valid UTF-8 (outbox.enqueue takes a text key) goes without a key,
 * in the header inbox-source-key-hex.  Needs the batch's transaction and
 * SPI connected; an ERROR here (the owner lost the topic grant, say)
 * rolls back the whole batch, which is tried again after a back-off.
 */
void
inbox_dlq_enqueue(InboxSubscription *sub, InboxMessage *msg, ErrorData *edata,
				  int attempts)
{
	Oid			argtypes[12] = {TEXTOID, BYTEAOID, TEXTOID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, INT4OID, INT8OID, TEXTOID, TEXTOID, INT4OID};
	Datum		args[12];
	char		nulls[12];
	Oid			save_userid;
	int			save_sec;
	int			rc;

	memset(nulls, ' ', sizeof(nulls));
	args[0] = CStringGetTextDatum(sub->dead_letter_topic);
	if (msg->value != NULL)
	{
		bytea	   *b = palloc(VARHDRSZ + msg->value_len);

		SET_VARSIZE(b, VARHDRSZ + msg->value_len);
		memcpy(VARDATA(b), msg->value, msg->value_len);
		args[1] = PointerGetDatum(b);
	}
	else
		nulls[1] = 'n';
	nulls[2] = nulls[3] = 'n';
	if (msg->key != NULL)
	{
		if (pg_verify_mbstr(GetDatabaseEncoding(), msg->key, msg->key_len, true) &&
			memchr(msg->key, '\0', msg->key_len) == NULL)
		{
			args[2] = PointerGetDatum(cstring_to_text_with_len(msg->key, msg->key_len));
			nulls[2] = ' ';
		}
		else
		{
			char	   *hex = palloc(2 * msg->key_len + 1);

			hex[hex_encode(msg->key, msg->key_len, hex)] = '\0';
			args[3] = CStringGetTextDatum(hex);
			nulls[3] = ' ';
		}
	}
	if (msg->headers_json != NULL)
		args[4] = CStringGetTextDatum(msg->headers_json);
	else
		nulls[4] = 'n';
	args[5] = CStringGetTextDatum(sub->name);
	args[6] = CStringGetTextDatum(sub->topic);
	args[7] = Int32GetDatum(msg->partition);
	args[8] = Int64GetDatum(msg->offset);
	args[9] = CStringGetTextDatum(edata->message ? edata->message : "unknown error");
	args[10] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	args[11] = Int32GetDatum(attempts);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(sub->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	rc = SPI_execute_plan(outbox_keep_plan(&enqueue_plan,
										   "SELECT outbox.enqueue($1, $2, $3,"
										   " coalesce((SELECT jsonb_object_agg(h.name, h.value)"
										   "             FROM jsonb_each($5::jsonb) AS h(name, value)"
										   "            WHERE h.name NOT LIKE 'outbox-%'), '{}'::jsonb)"
										   " || jsonb_strip_nulls(jsonb_build_object("
										   "   'inbox-subscription', $6::text,"
										   "   'inbox-source-topic', $7::text,"
										   "   'inbox-source-partition', $8::text,"
										   "   'inbox-source-offset', $9::text,"
										   "   'inbox-error', $10::text,"
										   "   'inbox-sqlstate', $11::text,"
										   "   'inbox-attempts', $12::text,"
										   "   'inbox-source-key-hex', $4::text)))",
										   12, argtypes),
						  args, nulls, false, 0);
	SetUserIdAndSecContext(save_userid, save_sec);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not enqueue to dead-letter topic \"%s\"", sub->dead_letter_topic);
}
