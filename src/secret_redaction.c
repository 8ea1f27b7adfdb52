/*-------------------------------------------------------------------------
 *
 * secret_redaction.c
 *	  Keeping the value of outbox_kafka.producer_properties (Kafka
 *	  credentials) out of every place a role other than a superuser, or
 *	  the server log, can read (guarantee G10).  The same is done for
 *	  outbox_kafka.consumer_properties, which refuses credentials but may
 *	  be given one by mistake: the refused statement is not logged either.
 *
 * SHOW and pg_settings are handled by the setting's show hook (module.c),
 * and the properties file's parser never puts a value into a message
 * (producer_config.c).  What is left is text PostgreSQL itself keeps or
 * prints, which this file redacts through three hooks:
 *
 * - post_parse_analyze_hook: as soon as the first statement of a query
 *   string has been parsed, the string's pg_stat_activity entry is cut
 *   after the setting's name, so a multi-statement query that waits
 *   before its SET (on a lock, in pg_sleep) shows no value; a statement
 *   that sets the secret gets a statement length that ends at the
 *   setting's name, which is all pg_stat_statements keeps of it, whatever
 *   the order of the two libraries.
 * - ProcessUtility_hook: the extended protocol reports the raw text again
 *   at Bind and Execute, so the entry is cut again right before the
 *   statement runs; hooks after ours get the text blanked after the name.
 * - emit_log_hook: any message naming the setting is cut after the name,
 *   the statement is not printed with it, and a syntax error in a
 *   configuration file does not quote the token it stopped at (a piece of
 *   a value whose quoting went wrong).
 *
 * The text between the moment the server receives a query string and the
 * end of the parse analysis of its first statement cannot be reached by
 * any hook; docs/security.md says so and recommends the properties file,
 * which keeps credentials out of SQL text altogether.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/secret_redaction.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/backend_status.h"

#include "secret_redaction.h"

/* What replaces a hidden value, and the format of a parser error we fix. */
#define REDACT_MARKER			" [value hidden]"
#define CONF_SYNTAX_ERROR_ID	"syntax error in file \"%s\" line %u, near token \"%s\""
#define CONF_SYNTAX_ERROR_NEAR	", near token \""

static emit_log_hook_type prev_emit_log_hook = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

static const char *redact_find_ci(const char *haystack, const char *needle);
static const char *redact_find_mention(const char *text);
static char *redact_after(const char *text, const char *cut);
static void redact_activity(const char *query);
static void redact_top_level_activity(const char *query);
static char *redact_config_syntax_error(const char *message);
static void redact_log_message(ErrorData *edata);
static void redact_post_parse_analyze(ParseState *pstate, Query *query,
									  JumbleState *jstate);
static void redact_process_utility(PlannedStmt *pstmt,
								   const char *queryString,
								   bool readOnlyTree,
								   ProcessUtilityContext context,
								   ParamListInfo params,
								   QueryEnvironment *queryEnv,
								   DestReceiver *dest, QueryCompletion *qc);

/*
 * redact_find_ci: strstr ignoring ASCII case.
 */
static const char *
redact_find_ci(const char *haystack, const char *needle)
{
	size_t		len = strlen(needle);

	for (; *haystack; haystack++)
	{
		if (pg_strncasecmp(haystack, needle, len) == 0)
			return haystack;
	}
	return NULL;
}

#define IS_IDENT_CHAR(c) \
	(((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || \
	 ((c) >= '0' && (c) <= '9') || (c) == '_' || (c) == '$' || \
	 IS_HIGHBIT_SET(c))

/*
 * redact_find_mention: where text names outbox_kafka.producer_properties
 * (or outbox_kafka.consumer_properties) in any case, plain, quoted
 * ("outbox_kafka"."producer_properties", or the whole name in one pair of
 * quotes) or as a string; not producer_properties_file or
 * allow_unsafe_producer_properties.  Returns the position just after the
 * first such name (after a closing quote), or NULL.  text may be NULL.
 */
static const char *
redact_find_mention(const char *text)
{
	static const char *const words[] = {"producer_properties", "consumer_properties"};
	const char *start;
	const char *first = NULL;
	int			i;

	if (text == NULL || (start = redact_find_ci(text, "outbox_kafka")) == NULL)
		return NULL;
	for (i = 0; i < lengthof(words); i++)
	{
		const char *p = start;

		while ((p = redact_find_ci(p, words[i])) != NULL)
		{
			const char *end = p + strlen(words[i]);

			if (!IS_IDENT_CHAR((unsigned char) p[-1]) &&
				!IS_IDENT_CHAR((unsigned char) *end))
			{
				if (*end == '"' || *end == '\'')
					end++;
				if (first == NULL || end < first)
					first = end;
				break;
			}
			p = end;
		}
	}
	return first;
}

/*
 * redact_after: text up to cut (the end of the setting's name, inside
 * text), then "[value hidden]", palloc'd.  "parameter ... changed to ..."
 * keeps "changed"; text that ends with the name, or goes on with
 * " cannot be ..." and no quote (PostgreSQL's "parameter ... cannot be
 * changed now"), is kept whole.
 */
static char *
redact_after(const char *text, const char *cut)
{
	size_t		keep = cut - text;

	if (*cut == '\0' ||
		(strncmp(cut, " cannot be ", 11) == 0 && strpbrk(cut, "'\"") == NULL))
		return pstrdup(text);
	if (strncmp(cut, " changed to ", 12) == 0)
		keep += strlen(" changed");
	return psprintf("%.*s%s", (int) keep, text, REDACT_MARKER);
}

/*
 * redact_activity: replace the text pg_stat_activity shows for the current
 * query (visible to the same role and to pg_read_all_stats members) by
 * the text cut after the secret setting's name, or by "[statement
 * hidden]" when query does not name it textually.  Callable in any
 * memory context that lives as long as the call.
 */
static void
redact_activity(const char *query)
{
	const char *cut = redact_find_mention(query);

	if (MyBEEntry == NULL || query == NULL)
		return;
	pgstat_report_activity(MyBEEntry->st_state == STATE_DISABLED ?
						   STATE_RUNNING : MyBEEntry->st_state,
						   cut ? redact_after(query, cut) : "[statement hidden]");
}

/*
 * redact_top_level_activity: redact the activity when query is the query
 * string the client sent (debug_query_string) and the text
 * pg_stat_activity shows for it names the secret setting and is not
 * redacted yet.  Queries of functions and of the relay are not what
 * pg_stat_activity shows, and are left alone.  Only the shown text is
 * searched, at most track_activity_query_size bytes, so a long string of
 * many statements costs no more per statement than a short one.
 */
static void
redact_top_level_activity(const char *query)
{
	const char *cut;

	if (query == NULL || query != debug_query_string || MyBEEntry == NULL)
		return;
	cut = redact_find_mention(MyBEEntry->st_activity_raw);
	if (cut == NULL || strcmp(cut, REDACT_MARKER) == 0)
		return;
	redact_activity(query);
}

/*
 * redact_config_syntax_error: the configuration parser's "syntax error in
 * file ... line N, near token "T"" without T.  A quoting mistake ends a
 * value early and the parser stops at the rest of it, so the token is a
 * piece of a value, of a password for a line of producer_properties (or
 * primary_conninfo).  Which setting the line belonged to is not known
 * here, so every such token is hidden: the file and the line find the
 * mistake.  A translated message whose layout is unknown loses the file
 * and the line as well, and its hint tells where to find them.
 */
static char *
redact_config_syntax_error(const char *message)
{
	const char *near = strstr(message, CONF_SYNTAX_ERROR_NEAR);

	if (strncmp(message, "syntax error in file \"", 22) == 0 && near != NULL)
		return psprintf("%.*s, near token [hidden]",
						(int) (near - message), message);
	return pstrdup("syntax error in a configuration file, near token [hidden]");
}

/*
 * redact_log_message: emit_log_hook.  PostgreSQL logs "parameter ...
 * changed to ..." on every reload, statements with their text
 * (log_statement, log_min_duration_statement, log_min_error_statement),
 * bind parameters, errors that may quote the value, and the token of a
 * syntax error in a configuration file; none may show
 * outbox_kafka.producer_properties.  Any field naming the setting (in any
 * case, quoted or not) is cut after the name, and the statement is not
 * printed with a message while the statement names it.  The backend's
 * pg_stat_activity entry is redacted at the same time (also for a syntax
 * error, which no other hook sees).  Runs in ErrorContext; must not
 * raise an error.
 */
static void
redact_log_message(ErrorData *edata)
{
	const char *cut;
	bool		secret = false;

	if (debug_query_string != NULL &&
		redact_find_mention(debug_query_string) != NULL)
	{
		const char *near;

		secret = true;
		if (edata->elevel < PANIC)
			redact_activity(debug_query_string);

		/* the scanner and the parser quote the token they stopped at */
		if (edata->sqlerrcode == ERRCODE_SYNTAX_ERROR &&
			edata->message != NULL &&
			(near = strstr(edata->message, " at or near ")) != NULL)
			edata->message = psprintf("%.*s [statement hidden]",
									  (int) (near - edata->message),
									  edata->message);
	}
	if (edata->message_id != NULL && edata->message != NULL &&
		strcmp(edata->message_id, CONF_SYNTAX_ERROR_ID) == 0)
	{
		edata->message = redact_config_syntax_error(edata->message);
		if (edata->hint == NULL)
			edata->hint = pstrdup("The token is not shown because it may be part of a secret; pg_file_settings shows the file and the line.");
	}
	if ((cut = redact_find_mention(edata->message)) != NULL)
	{
		edata->message = redact_after(edata->message, cut);
		secret = true;
	}
	if ((cut = redact_find_mention(edata->detail)) != NULL)
	{
		edata->detail = redact_after(edata->detail, cut);
		secret = true;
	}
	if ((cut = redact_find_mention(edata->detail_log)) != NULL)
	{
		edata->detail_log = redact_after(edata->detail_log, cut);
		secret = true;
	}
	if ((cut = redact_find_mention(edata->hint)) != NULL)
	{
		edata->hint = redact_after(edata->hint, cut);
		secret = true;
	}
	if ((cut = redact_find_mention(edata->context)) != NULL)
	{
		edata->context = redact_after(edata->context, cut);
		secret = true;
	}
	if ((cut = redact_find_mention(edata->internalquery)) != NULL)
	{
		edata->internalquery = redact_after(edata->internalquery, cut);
		edata->internalpos = 0;
		secret = true;
	}
	if (secret)
		edata->hide_stmt = true;

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * redact_post_parse_analyze: post_parse_analyze_hook, the first hook
 * PostgreSQL calls for a query string, right after the parse analysis of
 * its first statement and before anything of it runs.
 *
 * The activity is redacted when the whole string names the secret, so
 * "SELECT pg_sleep(3); SET outbox_kafka.producer_properties = ..." shows
 * no value while it sleeps.  A statement that sets the secret gets a
 * statement length that ends right after the setting's name:
 * pg_stat_statements keeps only that part of the text, also when its
 * hooks run before ours.
 */
static void
redact_post_parse_analyze(ParseState *pstate, Query *query,
						  JumbleState *jstate)
{
	const char *setting;

	if (prev_post_parse_analyze_hook)
		prev_post_parse_analyze_hook(pstate, query, jstate);

	if (pstate->p_sourcetext == NULL)
		return;
	redact_top_level_activity(pstate->p_sourcetext);

	setting = outbox_utility_setting_name(query->utilityStmt);
	if (setting != NULL &&
		(pg_strcasecmp(setting, OUTBOX_SECRET_SETTING) == 0 ||
		 pg_strcasecmp(setting, OUTBOX_CONSUMER_SECRET_SETTING) == 0))
	{
		const char *stmt;
		const char *cut;
		int			len;

		stmt = pstate->p_sourcetext + Max(query->stmt_location, 0);
		len = query->stmt_len > 0 ? query->stmt_len : (int) strlen(stmt);
		cut = redact_find_mention(stmt);

		/* a name spelt with Unicode escapes: keep only the first word */
		if (cut == NULL || cut - stmt > len)
			cut = stmt + Max(strcspn(stmt, " \t\r\n"), 1);
		query->stmt_len = cut - stmt;
	}
}

/*
 * redact_process_utility: ProcessUtility_hook.  A statement that sets
 * outbox_kafka.producer_properties runs with its activity redacted (Bind
 * and Execute of the extended protocol report the raw text again), and
 * the hooks after this one get a query string of the same length with
 * everything after the setting's name blanked.
 */
static void
redact_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	const char *setting = outbox_utility_setting_name(pstmt->utilityStmt);

	redact_top_level_activity(queryString);
	if (setting != NULL && queryString != NULL &&
		(pg_strcasecmp(setting, OUTBOX_SECRET_SETTING) == 0 ||
		 pg_strcasecmp(setting, OUTBOX_CONSUMER_SECRET_SETTING) == 0))
	{
		size_t		len = strlen(queryString);
		const char *cut = redact_find_mention(queryString);
		size_t		keep = cut ? (size_t) (cut - queryString) : 0;
		size_t		marker_len = strlen(REDACT_MARKER);
		char	   *blanked = palloc(len + 1);
		size_t		i;

		memcpy(blanked, queryString, keep);
		for (i = keep; i < len; i++)
			blanked[i] = (i - keep < marker_len) ? REDACT_MARKER[i - keep] : ' ';
		blanked[len] = '\0';
		redact_activity(queryString);
		queryString = blanked;
	}

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree,
								  context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree,
								context, params, queryEnv, dest, qc);
}

/*
 * outbox_utility_setting_name: the setting a SET, ALTER SYSTEM, ALTER
 * ROLE ... SET or ALTER DATABASE ... SET statement names, or NULL (also
 * for stmt NULL).
 */
const char *
outbox_utility_setting_name(Node *stmt)
{
	VariableSetStmt *setstmt = NULL;

	if (stmt == NULL)
		return NULL;
	if (IsA(stmt, VariableSetStmt))
		setstmt = (VariableSetStmt *) stmt;
	else if (IsA(stmt, AlterSystemStmt))
		setstmt = ((AlterSystemStmt *) stmt)->setstmt;
	else if (IsA(stmt, AlterRoleSetStmt))
		setstmt = ((AlterRoleSetStmt *) stmt)->setstmt;
	else if (IsA(stmt, AlterDatabaseSetStmt))
		setstmt = ((AlterDatabaseSetStmt *) stmt)->setstmt;
	return setstmt ? setstmt->name : NULL;
}

/*
 * outbox_secret_redaction_install: chain the three hooks.  Called from
 * _PG_init while shared_preload_libraries is processed (in the
 * postmaster, so that its reload messages are redacted too), after any
 * ProcessUtility_hook of module.c, so that ours runs first.
 */
void
outbox_secret_redaction_install(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = redact_log_message;
	prev_post_parse_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = redact_post_parse_analyze;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = redact_process_utility;
}
