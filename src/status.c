/*-------------------------------------------------------------------------
 *
 * status.c
 *	  outbox.worker_status(): what the relay of this database reports
 *	  through shared memory, plus set-up problems that stop publishing.
 *
 * The outbox.status view joins this with the storage figures computed in
 * SQL (pending events, dead letters, rotation).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/status.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "librdkafka_version.h"
#include "outbox_kafka.h"

PG_FUNCTION_INFO_V1(outbox_worker_status);
PG_FUNCTION_INFO_V1(outbox_librdkafka_version_sql);
PG_FUNCTION_INFO_V1(outbox_is_preloaded);

#define WORKER_STATUS_COLS 12

static void setup_problem(const char **problem, const char **hint);

/*
 * setup_problem: the first reason nothing gets published from this
 * database, with a hint; both NULL when the set-up looks right.
 */
static void
setup_problem(const char **problem, const char **hint)
{
	char	   *dbname = get_database_name(MyDatabaseId);

	*problem = NULL;
	*hint = NULL;
	if (!outbox_loaded_at_startup)
	{
		*problem = "outbox_kafka is not loaded via shared_preload_libraries: events are stored but nothing is published";
		*hint = "Add outbox_kafka to shared_preload_libraries in postgresql.conf and restart the server.";
	}
	else if (!outbox_database_listed(dbname))
	{
		*problem = psprintf("database \"%s\" is not listed in \"outbox_kafka.databases\": events are stored but nothing is published",
							dbname);
		*hint = "Add the database to \"outbox_kafka.databases\" and reload the configuration.";
	}
	else if (outbox_bootstrap_servers == NULL || *outbox_bootstrap_servers == '\0')
	{
		*problem = "\"outbox_kafka.bootstrap_servers\" is not set: events are stored but nothing is published";
		*hint = "Set \"outbox_kafka.bootstrap_servers\" to the Kafka brokers and reload the configuration.";
	}
}

/*
 * outbox.worker_status(): one row.  Worker fields are NULL when no relay
 * has a slot for this database; the counters count since the relay started.
 */
Datum
outbox_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[WORKER_STATUS_COLS];
	bool		nulls[WORKER_STATUS_COLS];
	OutboxWorkerSlot *slot = outbox_find_slot(MyDatabaseId);
	const char *problem;
	const char *hint;
	bool		holding = false;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(nulls, true, sizeof(nulls));

	if (slot != NULL)
	{
		OutboxWorkerState state;
		pid_t		pid;
		TimestampTz started_at;
		TimestampTz last_error_at;
		TimestampTz last_publish_at;
		char		last_error[OUTBOX_ERROR_LEN];

		SpinLockAcquire(&slot->mutex);
		state = slot->state;
		pid = slot->pid;
		started_at = slot->started_at;
		last_error_at = slot->last_error_at;
		last_publish_at = slot->last_publish_at;
		memcpy(last_error, slot->last_error, OUTBOX_ERROR_LEN);
		SpinLockRelease(&slot->mutex);

		holding = (state == OUTBOX_STATE_HOLDING);
		values[0] = CStringGetTextDatum(outbox_state_name(state));
		nulls[0] = false;
		if (pid != 0)
		{
			values[1] = Int32GetDatum(pid);
			nulls[1] = false;
		}
		if (started_at != 0)
		{
			values[2] = TimestampTzGetDatum(started_at);
			nulls[2] = false;
		}
		values[3] = Int64GetDatum(pg_atomic_read_u64(&slot->events_published));
		values[4] = Int64GetDatum(pg_atomic_read_u64(&slot->events_retried));
		values[5] = Int64GetDatum(pg_atomic_read_u64(&slot->events_dead_lettered));
		values[6] = Int64GetDatum(pg_atomic_read_u64(&slot->events_failed));
		nulls[3] = nulls[4] = nulls[5] = nulls[6] = false;
		if (last_error[0] != '\0')
		{
			values[7] = CStringGetTextDatum(last_error);
			values[8] = TimestampTzGetDatum(last_error_at);
			nulls[7] = nulls[8] = false;
		}
		if (last_publish_at != 0)
		{
			values[9] = TimestampTzGetDatum(last_publish_at);
			nulls[9] = false;
		}
	}

	setup_problem(&problem, &hint);
	if (problem == NULL && holding)
	{
		problem = "events of held topics wait: Kafka refuses their topics or does not acknowledge them (see outbox.held_topics)";
		hint = "Fix what outbox.held_topics names (create the topic, grant access, restore partition leaders); the events then follow in order.  Topics refused for longer than \"outbox_kafka.max_retry_time\" are dead-lettered.";
	}
	if (problem != NULL)
	{
		values[10] = CStringGetTextDatum(problem);
		values[11] = CStringGetTextDatum(hint);
		nulls[10] = nulls[11] = false;
	}

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * outbox._is_preloaded(): true when the library was loaded through
 * shared_preload_libraries, i.e. a relay can run.
 */
Datum
outbox_is_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(outbox_loaded_at_startup);
}

/*
 * outbox.librdkafka_version(): the version of the librdkafka this server
 * loaded for outbox_kafka, the one the relay runs with ("2.14.2", say).
 */
Datum
outbox_librdkafka_version_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(outbox_librdkafka_version()));
}
