/*-------------------------------------------------------------------------
 *
 * inbox_message.c
 *	  One consumed message as the columns of outbox.inbox_message
 *	  (subscription, topic, partition, offset, key, value, headers,
 *	  timestamp): for the handler's argument (inbox_apply.c) and for the
 *	  tables that keep messages, the dead letters (inbox_apply.c) and the
 *	  held keys (inbox_held.c).  Calls nothing else of the inbox.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_message.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "inbox.h"

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
 * inbox_message_values: msg, as the columns of outbox.inbox_message
 * (subscription, topic, partition, offset, key, value, headers as jsonb,
 * timestamp), into values[0..7] and isnull[0..7]; also the first
 * columns of the tables that keep messages (dead letters, held keys).
 */
void
inbox_message_values(InboxSubscription *sub, InboxMessage *msg, Datum *values,
					 bool *isnull)
{
	memset(isnull, false, sizeof(bool) * INBOX_MESSAGE_COLUMNS);
	values[0] = CStringGetTextDatum(sub->name);
	values[1] = CStringGetTextDatum(sub->topic);
	values[2] = Int32GetDatum(msg->partition);
	values[3] = Int64GetDatum(msg->offset);
	if (msg->key != NULL)
		values[4] = bytes_datum(msg->key, msg->key_len);
	else
		isnull[4] = true;
	if (msg->value != NULL)
		values[5] = bytes_datum(msg->value, msg->value_len);
	else
		isnull[5] = true;
	if (msg->headers_json != NULL)
		values[6] = DirectFunctionCall1(jsonb_in, CStringGetDatum(msg->headers_json));
	else
		isnull[6] = true;
	values[7] = TimestampTzGetDatum(msg->timestamp);
	isnull[7] = (msg->timestamp == 0);
}

/*
 * inbox_message_args: the same as SPI arguments: values[0..7] and
 * nulls[0..7] (' ' or 'n'); their types are those of
 * INBOX_MESSAGE_ARGTYPES.
 */
void
inbox_message_args(InboxSubscription *sub, InboxMessage *msg, Datum *values,
				   char *nulls)
{
	bool		isnull[INBOX_MESSAGE_COLUMNS];
	int			i;

	inbox_message_values(sub, msg, values, isnull);
	for (i = 0; i < INBOX_MESSAGE_COLUMNS; i++)
		nulls[i] = isnull[i] ? 'n' : ' ';
}
