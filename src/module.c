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
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "consumer_config.h"
#include "inbox.h"
#include "outbox_kafka.h"
#include "pg_compat.h"
#include "producer_config.h"
#include "relay.h"
#include "secret_redaction.h"

PG_MODULE_MAGIC;

/* Settings; see docs/configuration.md for what each one does. */
char	   *outbox_databases = NULL;
char	   *outbox_bootstrap_servers = NULL;
char	   *outbox_producer_properties = NULL;
char	   *outbox_producer_properties_file = NULL;
bool		outbox_allow_unsafe_producer_properties = false;
int			outbox_batch_size = 5000;
int			outbox_poll_interval_ms = 1000;
int			outbox_max_message_bytes = 1000000;
int			outbox_max_retry_time_s = 600;
int			outbox_rotation_interval_s = 60;
int			outbox_retention_s = 0;
int			outbox_shutdown_timeout_ms = 5000;
int			outbox_max_batch_bytes_kb = 16384;
int			outbox_stall_timeout_ms = 1000;
int			outbox_progress_save_interval_ms = 100;
bool		outbox_wait_for_standbys = false;
int			outbox_inbox_batch_size = 1000;
int			outbox_inbox_dedupe_window_s = 7 * 24 * 3600;
char	   *outbox_consumer_properties = NULL;

/* True when _PG_init ran while shared_preload_libraries was processed. */
bool		outbox_loaded_at_startup = false;

void		_PG_init(void);

static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* producer_properties as SHOW displays it: secret values masked */
static const char *producer_properties_shown = NULL;

/*
 * While ALTER SYSTEM sets producer_properties or producer_properties_file:
 * the check hooks read the file, and judge against the opt-out as the next
 * reload will set it.
 */
static bool in_alter_system = false;
static bool alter_system_allow_unsafe = false;

static bool check_databases(char **newval, void **extra, GucSource source);
static void report_property_problem(OutboxPropertyProblem *problem);
static bool check_producer_properties(char **newval, void **extra,
									  GucSource source);
static void assign_producer_properties(const char *newval, void *extra);
static const char *show_producer_properties(void);
static bool check_producer_properties_file(char **newval, void **extra,
										   GucSource source);
static bool allow_unsafe_for_check(void);
static bool check_consumer_properties(char **newval, void **extra,
									  GucSource source);
static bool pending_allow_unsafe(void);
static void next_process_utility(PlannedStmt *pstmt, const char *queryString,
								 bool readOnlyTree,
								 ProcessUtilityContext context,
								 ParamListInfo params,
								 QueryEnvironment *queryEnv,
								 DestReceiver *dest, QueryCompletion *qc,
								 bool alter_system);
static void outbox_process_utility(PlannedStmt *pstmt, const char *queryString,
								   bool readOnlyTree,
								   ProcessUtilityContext context,
								   ParamListInfo params,
								   QueryEnvironment *queryEnv,
								   DestReceiver *dest, QueryCompletion *qc);
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
 * report_property_problem: hand a refusal of producer properties to the
 * GUC machinery.  The message never contains a property value, so the
 * standard "invalid value for parameter" message (which would echo the
 * whole value) is never used.
 */
static void
report_property_problem(OutboxPropertyProblem *problem)
{
	GUC_check_errcode(problem->sqlerrcode);
	GUC_check_errmsg("%s", problem->message);
	if (problem->detail)
		GUC_check_errdetail("%s", problem->detail);
	if (problem->hint)
		GUC_check_errhint("%s", problem->hint);
}

/*
 * check_producer_properties: the value must be "key=value" pairs separated
 * by semicolons (\; and \\ escape a semicolon and a backslash), and no
 * property may break the relay's guarantees unless
 * outbox_kafka.allow_unsafe_producer_properties is on.  *extra becomes the
 * value as SHOW displays it, with secret values masked.
 */
static bool
check_producer_properties(char **newval, void **extra, GucSource source)
{
	OutboxPropertyProblem problem;
	List	   *props;
	char	   *shown;
	char	   *copy;

	if (!outbox_parse_property_list(*newval, &props, &problem) ||
		!outbox_check_properties(props, allow_unsafe_for_check(), &problem))
	{
		report_property_problem(&problem);
		return false;
	}

	shown = outbox_mask_property_list(*newval);
	copy = guc_malloc(LOG, strlen(shown) + 1);
	if (copy == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errmsg("out of memory");
		return false;
	}
	strcpy(copy, shown);
	pfree(shown);
	*extra = copy;
	return true;
}

/*
 * assign_producer_properties: remember the masked form for SHOW.
 */
static void
assign_producer_properties(const char *newval, void *extra)
{
	producer_properties_shown = (const char *) extra;
}

/*
 * show_producer_properties: show_hook.  Everybody who may read the
 * setting (superusers and pg_read_all_settings members) sees property
 * names and non-secret values; secret values are only ever in memory
 * and in the configuration files.
 */
static const char *
show_producer_properties(void)
{
	return producer_properties_shown ? producer_properties_shown : "";
}

/*
 * check_producer_properties_file: any path is accepted at start-up and on
 * reload (the relay reads and checks the file whenever it builds a
 * producer, and reports problems in outbox.status); ALTER SYSTEM, which
 * runs with in_alter_system set, reads and checks the file at once so
 * that the operator sees a problem right away.
 */
static bool
check_producer_properties_file(char **newval, void **extra, GucSource source)
{
	OutboxPropertyProblem problem;
	List	   *props;

	if (!in_alter_system || *newval == NULL || **newval == '\0')
		return true;
	if (!outbox_read_property_file(*newval, &props, &problem) ||
		!outbox_check_properties(props, allow_unsafe_for_check(), &problem))
	{
		report_property_problem(&problem);
		return false;
	}
	return true;
}

/*
 * check_consumer_properties: the value must have the syntax of
 * producer_properties, name only properties librdkafka knows, and none
 * that the inbox sets itself or that connects or authenticates
 * (consumer_config.c).
 */
static bool
check_consumer_properties(char **newval, void **extra, GucSource source)
{
	OutboxPropertyProblem problem;
	List	   *props;
	ListCell   *lc;
	rd_kafka_conf_t *conf;
	char		errstr[256];

	if (!outbox_parse_property_list(*newval, &props, &problem) ||
		!outbox_check_consumer_properties(props, &problem))
	{
		report_property_problem(&problem);
		return false;
	}
	conf = rd_kafka_conf_new();
	foreach(lc, props)
	{
		OutboxProperty *prop = (OutboxProperty *) lfirst(lc);

		if (rd_kafka_conf_set(conf, prop->name, prop->value, errstr,
							  sizeof(errstr)) != RD_KAFKA_CONF_OK)
		{
			rd_kafka_conf_destroy(conf);
			GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
			GUC_check_errmsg("invalid consumer property \"%s\"", prop->name);
			GUC_check_errdetail("librdkafka: %s", errstr);
			return false;
		}
	}
	rd_kafka_conf_destroy(conf);
	return true;
}

/*
 * allow_unsafe_for_check: the opt-out the check hooks judge by.  ALTER
 * SYSTEM writes a value for the next reload, so it is judged by the
 * opt-out as the configuration files set it, even if not reloaded yet;
 * everything else by the current value.
 */
static bool
allow_unsafe_for_check(void)
{
	return in_alter_system ? alter_system_allow_unsafe :
		outbox_allow_unsafe_producer_properties;
}

/*
 * pending_allow_unsafe: outbox_kafka.allow_unsafe_producer_properties as
 * the next reload will set it: its last value in postgresql.conf (with
 * includes) and postgresql.auto.conf, or the current value when the files
 * do not set it (or cannot be read).
 */
static bool
pending_allow_unsafe(void)
{
	ConfigVariable *head = NULL;
	ConfigVariable *tail = NULL;
	ConfigVariable *item;
	bool		result = outbox_allow_unsafe_producer_properties;

	if (ConfigFileName == NULL)
		return result;
	(void) ParseConfigFile(ConfigFileName, true, NULL, 0, 0, DEBUG2,
						   &head, &tail);
	(void) ParseConfigFile(PG_AUTOCONF_FILENAME, false, NULL, 0, 0, DEBUG2,
						   &head, &tail);
	for (item = head; item != NULL; item = item->next)
	{
		bool		value;

		if (item->name != NULL && item->value != NULL &&
			pg_strcasecmp(item->name, "outbox_kafka.allow_unsafe_producer_properties") == 0 &&
			parse_bool(item->value, &value))
			result = value;
	}
	FreeConfigVariables(head);
	return result;
}

/*
 * next_process_utility: run a utility statement through the hooks
 * installed before ours, or the standard code; with alter_system, the
 * check hooks run as for ALTER SYSTEM (see allow_unsafe_for_check and
 * check_producer_properties_file).
 */
static void
next_process_utility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc, bool alter_system)
{
	PG_TRY();
	{
		if (alter_system)
			alter_system_allow_unsafe = pending_allow_unsafe();
		in_alter_system = alter_system;
		if (prev_process_utility_hook)
			prev_process_utility_hook(pstmt, queryString, readOnlyTree,
									  context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree,
									context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		in_alter_system = false;
	}
	PG_END_TRY();
}

/*
 * outbox_process_utility: ProcessUtility_hook.
 *
 * ALTER SYSTEM SET outbox_kafka.producer_properties_file reads and checks
 * the file in its check hook, so that a file the relay would refuse is
 * refused at once; ALTER SYSTEM of either setting judges unsafe properties
 * by the opt-out as the next reload will set it.  (Statements that set
 * producer_properties reach this hook already redacted by
 * secret_redaction.c's, which runs before it.)
 */
static void
outbox_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	const char *setting = outbox_utility_setting_name(pstmt->utilityStmt);
	bool		alter_system = false;

	if (setting != NULL && IsA(pstmt->utilityStmt, AlterSystemStmt) &&
		(pg_strcasecmp(setting, OUTBOX_SECRET_FILE_SETTING) == 0 ||
		 pg_strcasecmp(setting, OUTBOX_SECRET_SETTING) == 0))
		alter_system = true;

	next_process_utility(pstmt, queryString, readOnlyTree, context,
						 params, queryEnv, dest, qc, alter_system);
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

	/* before producer_properties: its check hook reads this one */
	DefineCustomBoolVariable("outbox_kafka.allow_unsafe_producer_properties",
							 "Accept producer properties that break the relay's guarantees.",
							 "With it on, producer properties such as acks=1 or enable.idempotence=false are accepted: events may be lost or reordered.",
							 &outbox_allow_unsafe_producer_properties,
							 false,
							 PGC_SIGHUP,
							 GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("outbox_kafka.producer_properties",
							   "librdkafka producer properties as key=value pairs separated by semicolons.",
							   "They override the relay's defaults; secret values are shown masked and never logged.",
							   &outbox_producer_properties,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   check_producer_properties,
							   assign_producer_properties,
							   show_producer_properties);

	DefineCustomStringVariable("outbox_kafka.producer_properties_file",
							   "File of librdkafka producer properties, one key=value per line, applied after producer_properties.",
							   "Only the server's operating system user may be able to read it; keep credentials here.",
							   &outbox_producer_properties_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   check_producer_properties_file, NULL, NULL);

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

	DefineCustomIntVariable("outbox_kafka.progress_save_interval",
							"How often, at most, the relay saves its progress to outbox.relay_state.",
							"A crash publishes again what was in flight plus the events acknowledged since the last save; 0 saves after every chunk.",
							&outbox_progress_save_interval_ms,
							100, 0, 1000,
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

	DefineCustomIntVariable("outbox_kafka.inbox_batch_size",
							"Most messages the inbox applies in one transaction.",
							NULL,
							&outbox_inbox_batch_size,
							1000, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("outbox_kafka.inbox_dedupe_window",
							"How long the inbox keeps de-duplication records, at least.",
							"A record is kept at least this long and less than twice as long.",
							&outbox_inbox_dedupe_window_s,
							7 * 24 * 3600, 60, INT_MAX / 2,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("outbox_kafka.consumer_properties",
							   "librdkafka consumer properties of the inbox, key=value separated by semicolons.",
							   "Applied after the inbox's defaults; connection and credential properties come from producer_properties.",
							   &outbox_consumer_properties,
							   "",
							   PGC_SIGHUP,
							   0,
							   check_consumer_properties, NULL, NULL);

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
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = outbox_process_utility;
	/* after the hook above, so that redaction runs first */
	outbox_secret_redaction_install();
	outbox_shmem_install_hooks();
	inbox_shmem_install_hooks();
	outbox_register_launcher();
}
