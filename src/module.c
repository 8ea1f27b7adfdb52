/*-------------------------------------------------------------------------
 *
 * module.c
 *	  Module start-up of outbox_kafka: settings (GUCs) and _PG_init.
 *
 * When loaded through shared_preload_libraries the module also reserves
 * shared memory and registers the launcher background worker.  Loaded any
 * other way (the first call of outbox.enqueue in a backend, say) it only
 * defines the settings: events are then stored but nobody publishes them,
 * which CREATE EXTENSION and outbox.status both point out.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/module.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "outbox_kafka.h"
#include "relay.h"

PG_MODULE_MAGIC;

/* Settings; see docs/configuration.md for what each one does. */
char	   *outbox_databases = NULL;
char	   *outbox_bootstrap_servers = NULL;
char	   *outbox_producer_properties = NULL;
int			outbox_batch_size = 5000;
int			outbox_poll_interval_ms = 1000;
int			outbox_max_message_bytes = 1000000;
int			outbox_max_retry_time_s = 600;
int			outbox_rotation_interval_s = 60;
int			outbox_retention_s = 0;
int			outbox_shutdown_timeout_ms = 5000;
int			outbox_max_batch_bytes_kb = 16384;
int			outbox_stall_timeout_ms = 1000;
bool		outbox_wait_for_standbys = false;

/* True when _PG_init ran while shared_preload_libraries was processed. */
bool		outbox_loaded_at_startup = false;

void		_PG_init(void);

static emit_log_hook_type prev_emit_log_hook = NULL;

static bool check_databases(char **newval, void **extra, GucSource source);
static void redact_secret_setting(ErrorData *edata);
static bool check_producer_properties(char **newval, void **extra,
									  GucSource source);
static void define_settings(void);

/*
 * check_databases: the list must parse as comma-separated database names.
 */
static bool
check_databases(char **newval, void **extra, GucSource source)
{
	char	   *copy;
	List	   *names;
	bool		ok;

	if (*newval == NULL || **newval == '\0')
		return true;

	copy = pstrdup(*newval);
	ok = SplitIdentifierString(copy, ',', &names);
	if (!ok)
		GUC_check_errdetail("List syntax is invalid: expected database names separated by commas.");
	list_free(names);
	pfree(copy);
	return ok;
}

/*
 * check_producer_properties: the value must be "key=value" pairs separated
 * by semicolons.  The value itself is never echoed back, since it usually
 * holds credentials.
 */
static bool
check_producer_properties(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;

	if (p == NULL)
		return true;

	while (*p)
	{
		const char *end = strchr(p, ';');
		const char *eq;
		size_t		len = end ? (size_t) (end - p) : strlen(p);

		/* skip blanks and empty entries */
		while (len > 0 && (*p == ' ' || *p == '\t'))
		{
			p++;
			len--;
		}
		if (len > 0)
		{
			eq = memchr(p, '=', len);
			if (eq == NULL || eq == p)
			{
				GUC_check_errdetail("Each entry must have the form key=value; entries are separated by semicolons.");
				return false;
			}
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return true;
}

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

/*
 * redact_secret_setting: emit_log_hook.  PostgreSQL logs "parameter ...
 * changed to ..." on every reload, and statements with their text; neither
 * may show outbox_kafka.producer_properties, which usually holds
 * credentials.  A message naming the setting is cut after the name, and
 * the statement is not printed with it.
 */
static void
redact_secret_setting(ErrorData *edata)
{
	static const char secret[] = "outbox_kafka.producer_properties";
	const char *at;

	if (edata->message != NULL && (at = strstr(edata->message, secret)) != NULL)
	{
		size_t		keep = (at - edata->message) + strlen(secret);

		if (edata->message[keep] == '"')
			keep++;
		edata->message = psprintf("%.*s [value hidden]", (int) keep, edata->message);
		edata->hide_stmt = true;
	}
	if (debug_query_string != NULL && strstr(debug_query_string, secret) != NULL)
		edata->hide_stmt = true;

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * define_settings: register every outbox_kafka.* GUC.  Runtime knobs are
 * PGC_SIGHUP so a reload changes them; nothing here needs a restart.
 */
static void
define_settings(void)
{
	DefineCustomStringVariable("outbox_kafka.databases",
							   "Databases whose outbox is published, separated by commas.",
							   "One relay worker runs per database listed.",
							   &outbox_databases,
							   "",
							   PGC_SIGHUP,
							   0,
							   check_databases, NULL, NULL);

	DefineCustomStringVariable("outbox_kafka.bootstrap_servers",
							   "Kafka bootstrap servers (host:port, separated by commas).",
							   NULL,
							   &outbox_bootstrap_servers,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("outbox_kafka.producer_properties",
							   "librdkafka producer properties as key=value pairs separated by semicolons.",
							   "They override the relay's defaults; the value is never shown to non-superusers or logged.",
							   &outbox_producer_properties,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   check_producer_properties, NULL, NULL);

	DefineCustomIntVariable("outbox_kafka.batch_size",
							"Maximum number of events read and produced per chunk.",
							NULL,
							&outbox_batch_size,
							5000, 1, 1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("outbox_kafka.poll_interval",
							"How often the relay looks for events when no commit wakes it.",
							"Commits that enqueue wake the relay at once; this is only a fallback.",
							&outbox_poll_interval_ms,
							1000, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("outbox_kafka.max_message_bytes",
							"Largest event (payload + key + headers) outbox.enqueue accepts.",
							NULL,
							&outbox_max_message_bytes,
							1000000, 1, MaxAllocSize / 2,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("outbox_kafka.max_retry_time",
							"How long an event the cluster refuses for topic reasons is retried before it is dead-lettered.",
							NULL,
							&outbox_max_retry_time_s,
							600, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("outbox_kafka.rotation_interval",
							"How long one event table receives new events before the next one takes over.",
							NULL,
							&outbox_rotation_interval_s,
							60, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("outbox_kafka.retention",
							"How long published events are kept before their table may be truncated.",
							NULL,
							&outbox_retention_s,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("outbox_kafka.shutdown_timeout",
							"How long a stopping relay waits for in-flight messages to be acknowledged.",
							NULL,
							&outbox_shutdown_timeout_ms,
							5000, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("outbox_kafka.max_batch_bytes",
							"Most payload, key and header bytes the relay holds in one chunk of events.",
							"Bounds the relay's memory whatever the size of the events; a single larger event is still read, alone.",
							&outbox_max_batch_bytes_kb,
							16384, 64, MAX_KILOBYTES / 4,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("outbox_kafka.stall_timeout",
							"How long events of a topic may wait for acknowledgement before the topic is held aside.",
							"Events of a held topic wait, in order, in outbox.held_events while other topics keep flowing.",
							&outbox_stall_timeout_ms,
							1000, 10, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("outbox_kafka.wait_for_standbys",
							 "Publish only events whose commit the synchronous standbys have confirmed.",
							 "Uses synchronous_standby_names; a failover then never leaves Kafka holding an event the new primary lacks.",
							 &outbox_wait_for_standbys,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("outbox_kafka");
}

/*
 * _PG_init: called once per process that loads the library.  Settings are
 * always defined; shared memory and the launcher only when preloading.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	define_settings();
	outbox_register_xact_callback();

	if (!process_shared_preload_libraries_in_progress)
		return;

	outbox_loaded_at_startup = true;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = redact_secret_setting;
	outbox_shmem_install_hooks();
	outbox_register_launcher();
}
