/*-------------------------------------------------------------------------
 *
 * database_list.c
 *	  The databases outbox_kafka.databases lists, as the launcher and the
 *	  status view read them.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/database_list.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/varlena.h"

#include "outbox_kafka.h"

/*
 * outbox_database_list: the names in outbox_kafka.databases, as a List of
 * palloc'd strings in the current memory context (empty list if none).
 */
List *
outbox_database_list(void)
{
	char	   *copy;
	List	   *names = NIL;
	List	   *result = NIL;
	ListCell   *lc;

	if (outbox_databases == NULL || *outbox_databases == '\0')
		return NIL;

	copy = pstrdup(outbox_databases);
	if (!SplitIdentifierString(copy, ',', &names))
		return NIL;				/* cannot happen: the check hook refused it */
	foreach(lc, names)
		result = lappend(result, pstrdup((char *) lfirst(lc)));
	list_free(names);
	pfree(copy);
	return result;
}

/*
 * outbox_database_listed: is dbname one of outbox_kafka.databases?
 */
bool
outbox_database_listed(const char *dbname)
{
	return outbox_name_in_list(outbox_database_list(), dbname);
}

/*
 * outbox_name_in_list: is name one of the C strings in names?
 */
bool
outbox_name_in_list(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
	{
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	}
	return false;
}
