/*-------------------------------------------------------------------------
 *
 * topic_grant.c
 *	  Least privilege for topics: outbox.enqueue and outbox.capture
 *	  publish to a topic only for roles that outbox.topic_grant lets.
 *
 * A grant names a role (or PUBLIC, stored as 0) and a topic pattern: an
 * exact topic name, a prefix followed by "*", or "*" for every topic.  The
 * current user may publish to a topic when it is a superuser, has the
 * privileges of the outbox's owner, or has the privileges of a role that
 * a matching grant names (membership counts as for table privileges).
 *
 * The check runs on every enqueue, so each backend keeps the grants in
 * memory and remembers the last topic allowed.  A statement trigger on
 * outbox.topic_grant (outbox._topic_grant_changed) sends a relcache
 * invalidation for the table when its transaction commits, and every
 * backend drops its copy then; dropping the extension does the same.
 * Membership changes need nothing: has_privs_of_role has its own cache.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/topic_grant.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "outbox_kafka.h"
#include "topic_grant.h"

PG_FUNCTION_INFO_V1(outbox_topic_grant_changed);

/* One row of outbox.topic_grant, as the check needs it. */
typedef struct TopicGrant
{
	Oid			grantee;		/* InvalidOid: PUBLIC */
	char	   *prefix;			/* the pattern without its "*" */
	int			prefix_len;
	bool		is_prefix;		/* the pattern ended with "*" */
} TopicGrant;

/* This backend's copy of outbox.topic_grant, valid until invalidated. */
static MemoryContext tg_context = NULL;
static TopicGrant *tg_grants = NULL;
static int	tg_ngrants = 0;
static bool tg_valid = false;
static Oid	tg_relid = InvalidOid;

/* The last topic the check allowed, and for whom. */
static Oid	tg_last_user = InvalidOid;
static char tg_last_topic[OUTBOX_MAX_TOPIC_LEN + 1];

static void tg_invalidate(Datum arg, Oid relid);
static void tg_forget_last(Datum arg, int cacheid, uint32 hashvalue);
static void tg_load(Oid outbox_owner);
static bool tg_matches(const TopicGrant *grant, const char *topic, int len);

/*
 * tg_invalidate: relcache callback.  Forget the grants when
 * outbox.topic_grant changed (or all relcache entries are reset).
 */
static void
tg_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == tg_relid)
	{
		tg_valid = false;
		tg_last_user = InvalidOid;
	}
}

/*
 * tg_forget_last: syscache callback for roles and role memberships.  The
 * last topic allowed is allowed again only if nothing about roles changed.
 */
static void
tg_forget_last(Datum arg, int cacheid, uint32 hashvalue)
{
	tg_last_user = InvalidOid;
}

/*
 * tg_load: read outbox.topic_grant into this backend's memory, as the
 * outbox's owner (callers need no rights on the table), in a restricted
 * operation.  Needs a transaction; SPI must not be connected.
 */
static void
tg_load(Oid outbox_owner)
{
	static bool callback_registered = false;
	Oid			save_userid;
	int			save_sec_context;
	uint64		i;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(tg_invalidate, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, tg_forget_last, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, tg_forget_last, (Datum) 0);
		callback_registered = true;
	}
	if (tg_context == NULL)
		tg_context = AllocSetContextCreate(TopMemoryContext,
										   "outbox_kafka topic grants",
										   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(tg_context);
	tg_grants = NULL;
	tg_ngrants = 0;
	tg_relid = get_relname_relid("topic_grant", get_namespace_oid("outbox", false));

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(outbox_owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	SPI_connect();
	if (SPI_execute("SELECT grantee::pg_catalog.oid, topic_pattern"
					" FROM outbox.topic_grant", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read outbox.topic_grant");
	tg_grants = MemoryContextAlloc(tg_context,
								   sizeof(TopicGrant) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		TopicGrant *grant = &tg_grants[tg_ngrants];
		bool		isnull;
		char	   *pattern;
		int			len;

		grant->grantee = DatumGetObjectId(SPI_getbinval(tuple, desc, 1, &isnull));
		pattern = SPI_getvalue(tuple, desc, 2);
		if (pattern == NULL)
			continue;
		len = strlen(pattern);
		grant->is_prefix = len > 0 && pattern[len - 1] == '*';
		grant->prefix_len = grant->is_prefix ? len - 1 : len;
		grant->prefix = MemoryContextStrdup(tg_context, pattern);
		grant->prefix[grant->prefix_len] = '\0';
		tg_ngrants++;
	}
	SPI_finish();
	/* on ERROR, transaction abort restores the user id */
	SetUserIdAndSecContext(save_userid, save_sec_context);
	tg_valid = true;
}

/*
 * tg_matches: does grant's pattern cover topic (len bytes)?
 */
static bool
tg_matches(const TopicGrant *grant, const char *topic, int len)
{
	if (grant->is_prefix)
		return len >= grant->prefix_len &&
			strncmp(topic, grant->prefix, grant->prefix_len) == 0;
	return len == grant->prefix_len && strcmp(topic, grant->prefix) == 0;
}

/*
 * outbox_check_topic_grant: ERROR (42501) unless the current user may
 * publish to topic, a valid topic name.  outbox_owner is the role that
 * owns the outbox tables.  Needs a transaction; SPI must not be connected.
 */
void
outbox_check_topic_grant(const char *topic, Oid outbox_owner)
{
	Oid			userid = GetUserId();
	int			len = strlen(topic);
	int			i;

	if (tg_valid && userid == tg_last_user && strcmp(topic, tg_last_topic) == 0)
		return;
	if (superuser_arg(userid) || has_privs_of_role(userid, outbox_owner))
		return;
	if (!tg_valid)
		tg_load(outbox_owner);

	for (i = 0; i < tg_ngrants; i++)
	{
		const TopicGrant *grant = &tg_grants[i];

		if (tg_matches(grant, topic, len) &&
			(!OidIsValid(grant->grantee) || has_privs_of_role(userid, grant->grantee)))
		{
			tg_last_user = userid;
			strlcpy(tg_last_topic, topic, sizeof(tg_last_topic));
			return;
		}
	}

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to publish to topic \"%s\"", topic),
			 errdetail("No topic grant of role \"%s\" or of a role it belongs to matches the topic.",
					   GetUserNameFromId(userid, false)),
			 errhint("A superuser can allow it with SELECT outbox.grant_topic('%s', '%s'); outbox.topic_grants lists the grants.",
					 GetUserNameFromId(userid, false), topic)));
}

/*
 * outbox._topic_grant_changed(): statement trigger on outbox.topic_grant.
 * Makes every backend (this one at the end of the statement, the others
 * once the transaction commits) reload its copy of the grants.
 */
Datum
outbox_topic_grant_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("outbox._topic_grant_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	PG_RETURN_POINTER(NULL);
}
