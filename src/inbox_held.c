/*-------------------------------------------------------------------------
 *
 * inbox_held.c
 *	  Messages set aside per key, for subscriptions with
 *	  on_poison = 'hold_key': inside a batch's transaction, which keys are
 *	  held, and setting a message aside in outbox.inbox_held.
 *
 * A message whose handler failed max_attempts times is set aside with its
 * key, in the batch's transaction, and its partition moves past it; every
 * later message of the same key and partition is set aside behind it, in
 * offset order, without calling the handler.  inbox_held_retry.c applies
 * them again, in order, once the first one succeeds.  The offsets move
 * past set-aside messages in the same transaction that stores them, so a
 * message is either applied, or held, or not consumed yet: never lost.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_held.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "inbox.h"
#include "relay.h"

/* Hash keys are cut to this length minus one (see inbox_held_waits). */
#define HELD_KEY_LEN	512

struct InboxHeldSet
{
	HTAB	   *keys;			/* of held_key() strings */
};

static SPIPlanPtr load_plan = NULL;
static SPIPlanPtr insert_plan = NULL;

static char *held_key(int32 partition, const char *key, int key_len);

/*
 * held_key: the hash key of a (partition, key): the partition and the key
 * in hex, palloc'd.
 */
static char *
held_key(int32 partition, const char *key, int key_len)
{
	static const char hex[] = "0123456789abcdef";
	char	   *out = palloc(16 + 2 * key_len + 1);
	int			n = snprintf(out, 16, "%d:", partition);
	int			i;

	for (i = 0; i < key_len; i++)
	{
		out[n++] = hex[((unsigned char) key[i]) >> 4];
		out[n++] = hex[((unsigned char) key[i]) & 0x0f];
	}
	out[n] = '\0';
	return out;
}

/*
 * inbox_held_load: the keys of sub held now, read with one query, in the
 * current memory context.  Needs the batch's transaction and SPI
 * connected.
 */
InboxHeldSet *
inbox_held_load(InboxSubscription *sub)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	InboxHeldSet *set = palloc(sizeof(InboxHeldSet));
	HASHCTL		ctl;
	uint64		i;

	/* longer keys: only a prefix is hashed and compared */
	ctl.keysize = HELD_KEY_LEN;
	ctl.entrysize = HELD_KEY_LEN;
	ctl.hcxt = CurrentMemoryContext;
	set->keys = hash_create("outbox_kafka inbox held keys", 16, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	args[0] = CStringGetTextDatum(sub->name);
	if (SPI_execute_plan(outbox_keep_plan(&load_plan,
										  "SELECT DISTINCT \"partition\" || ':' || encode(key, 'hex')"
										  " FROM outbox.inbox_held WHERE subscription = $1",
										  1, argtypes),
						 args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read outbox.inbox_held");
	for (i = 0; i < SPI_processed; i++)
		(void) hash_search(set->keys,
						   SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
						   HASH_ENTER, NULL);
	return set;
}

/*
 * inbox_held_any: does the subscription whose keys set holds have any key
 * held?
 */
bool
inbox_held_any(InboxHeldSet *set)
{
	return hash_get_num_entries(set->keys) > 0;
}

/*
 * inbox_held_waits: is msg's key held in its partition?  A message without
 * a key never is.
 *
 * Hash keys are cut to HELD_KEY_LEN - 1 bytes (hash_search does it): two long keys with the same
 * prefix count as one, so a message may be held behind another key's
 * message: order is kept, only progress is lost for it.
 */
bool
inbox_held_waits(InboxHeldSet *set, InboxMessage *msg)
{
	char	   *key;
	bool		found;

	if (msg->key == NULL || hash_get_num_entries(set->keys) == 0)
		return false;
	key = held_key(msg->partition, msg->key, msg->key_len);
	(void) hash_search(set->keys, key, HASH_FIND, &found);
	pfree(key);
	return found;
}

/*
 * inbox_held_set_aside: store msg (which has a key) in outbox.inbox_held
 * and hold its key.  edata is the error of a message that failed attempts
 * times (retried after a back-off), NULL for a message waiting behind
 * one.  Needs the batch's transaction and SPI connected.
 */
void
inbox_held_set_aside(InboxHeldSet *set, InboxSubscription *sub, InboxMessage *msg,
					 ErrorData *edata, int attempts)
{
	Oid			argtypes[13] = {INBOX_MESSAGE_ARGTYPES, TEXTOID, INT4OID, TEXTOID,
	TEXTOID, TIMESTAMPTZOID};
	Datum		args[13];
	char		nulls[13];
	char	   *key;

	Assert(msg->key != NULL);
	inbox_message_args(sub, msg, args, nulls);
	memset(nulls + INBOX_MESSAGE_COLUMNS, ' ', 13 - INBOX_MESSAGE_COLUMNS);
	args[8] = CStringGetTextDatum(msg->dedupe_key);
	args[9] = Int32GetDatum(attempts);
	if (edata != NULL)
	{
		args[10] = CStringGetTextDatum(edata->message ? edata->message : "unknown error");
		args[11] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	}
	else
		nulls[10] = nulls[11] = 'n';
	args[12] = TimestampTzGetDatum(edata == NULL ? GetCurrentTimestamp() :
								   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															   inbox_backoff_delay(attempts)));
	if (SPI_execute_plan(outbox_keep_plan(&insert_plan,
										  "INSERT INTO outbox.inbox_held"
										  " (subscription, topic, \"partition\", \"offset\", key, value,"
										  "  headers, \"timestamp\", dedupe_key, attempts, last_error,"
										  "  sqlstate, retry_at)"
										  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
										  " ON CONFLICT DO NOTHING",
										  13, argtypes),
						 args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into outbox.inbox_held");

	key = held_key(msg->partition, msg->key, msg->key_len);
	(void) hash_search(set->keys, key, HASH_ENTER, NULL);
	if (edata != NULL)
		ereport(LOG,
				(errmsg("outbox_kafka inbox: subscription \"%s\" holds a key of partition %d: the message at offset " INT64_FORMAT " failed %d times: %s",
						sub->name, msg->partition, msg->offset, attempts,
						edata->message ? edata->message : "unknown error"),
				 errhint("Later messages of the key wait behind it in outbox.inbox_held; it is retried until it succeeds.")));
}
