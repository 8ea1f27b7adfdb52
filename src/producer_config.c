/*-------------------------------------------------------------------------
 *
 * producer_config.c
 *	  The librdkafka configuration of the relay's producer: the defaults
 *	  the relay's guarantees rest on, outbox_kafka.producer_properties and
 *	  outbox_kafka.producer_properties_file applied on top of them, and the
 *	  checks that refuse properties which would break the guarantees.
 *
 * The parsing and the checks are shared by the settings' check hooks
 * (module.c, in any backend and in the postmaster) and by the relay, which
 * runs them again when it builds a producer: the properties file may change
 * without a reload, and the opt-out may have been turned off since.
 *
 * Property values may be credentials: no message built here ever echoes
 * a value, only property names, entry or line numbers and file names.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/producer_config.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/formatting.h"

#include "relay.h"
#include "producer_config.h"

/* Guarantees named by the refusals (docs/security.md explains them). */
#define G1_NO_LOSS		"G1 (no loss)"
#define G3_KEY_ORDER	"G3 (order per key)"

static void set_problem(OutboxPropertyProblem *problem, int sqlerrcode,
						char *message, char *detail, char *hint);
static char *trim_blanks(char *s);
static bool valid_property_name(const char *name);
static char *describe_position(const OutboxProperty *prop);
static bool add_entry(char *entry, int position, const char *origin,
					  List **props, OutboxPropertyProblem *problem);
static bool value_is_true(const char *value);
static bool parse_int_value(const char *value, long *result);
static bool check_property(const OutboxProperty *prop,
						   OutboxPropertyProblem *problem);
static bool check_file_access(const char *path, const struct stat *st,
							  OutboxPropertyProblem *problem);
static void append_escaped(StringInfo buf, const char *s);
static bool set_property(rd_kafka_conf_t *conf, const char *name,
						 const char *value, const char *origin,
						 char *errbuf, size_t errbuf_size);

/*
 * set_problem: fill *problem (if the caller asked for one).
 */
static void
set_problem(OutboxPropertyProblem *problem, int sqlerrcode, char *message,
			char *detail, char *hint)
{
	if (problem == NULL)
		return;
	problem->sqlerrcode = sqlerrcode;
	problem->message = message;
	problem->detail = detail;
	problem->hint = hint;
}

/*
 * trim_blanks: strip leading and trailing spaces, tabs and carriage
 * returns from s in place; returns the new start.
 */
static char *
trim_blanks(char *s)
{
	char	   *end;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/*
 * valid_property_name: librdkafka property names are made of letters,
 * digits, '.', '_' and '-'.  Anything else is refused before it is ever
 * echoed in a message (a mistyped line might hold a password).
 */
static bool
valid_property_name(const char *name)
{
	const char *p;

	if (*name == '\0')
		return false;
	for (p = name; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return false;
	}
	return true;
}

/*
 * describe_position: "entry N of outbox_kafka.producer_properties" or
 * "line N of file "path"", for messages.
 */
static char *
describe_position(const OutboxProperty *prop)
{
	if (prop->origin == NULL)
		return psprintf("entry %d of the producer properties", prop->position);
	return psprintf("line %d of producer properties file \"%s\"",
					prop->position, prop->origin);
}

/*
 * add_entry: one "key=value" entry (already unescaped) at position of
 * origin (NULL: the setting); blank entries are skipped.  Appends an
 * OutboxProperty to *props, or fills *problem and returns false.
 */
static bool
add_entry(char *entry, int position, const char *origin, List **props,
		  OutboxPropertyProblem *problem)
{
	OutboxProperty *prop;
	char	   *eq;
	char	   *name;

	entry = trim_blanks(entry);
	if (*entry == '\0')
		return true;

	prop = palloc0(sizeof(OutboxProperty));
	prop->position = position;
	prop->origin = origin;

	eq = strchr(entry, '=');
	if (eq != NULL)
		*eq = '\0';
	name = trim_blanks(entry);
	if (eq == NULL || !valid_property_name(name))
	{
		set_problem(problem, ERRCODE_INVALID_PARAMETER_VALUE,
					psprintf("invalid producer property syntax in %s",
							 describe_position(prop)),
					eq == NULL ?
					pstrdup("Each entry must have the form key=value.") :
					pstrdup("A property name consists of letters, digits, \".\", \"_\" and \"-\"."),
					origin == NULL ?
					pstrdup("Entries are separated by semicolons; write \\; for a semicolon and \\\\ for a backslash inside a value.") :
					pstrdup("Write one key=value per line; lines starting with # are comments."));
		return false;
	}
	prop->name = pstrdup(name);
	prop->value = pstrdup(trim_blanks(eq + 1));
	*props = lappend(*props, prop);
	return true;
}

/*
 * outbox_parse_property_list: parse outbox_kafka.producer_properties,
 * "key=value;key=value", where "\;" stands for a semicolon and "\\" for a
 * backslash inside a value (any other backslash is kept as it is).  Blanks
 * around names and values are ignored, empty entries skipped.  On success
 * *props is a List of OutboxProperty in the current memory context.
 */
bool
outbox_parse_property_list(const char *text, List **props,
						   OutboxPropertyProblem *problem)
{
	StringInfoData entry;
	const char *p;
	int			position = 0;

	*props = NIL;
	if (text == NULL)
		return true;

	initStringInfo(&entry);
	for (p = text;; p++)
	{
		if (*p == '\\' && (p[1] == ';' || p[1] == '\\'))
		{
			appendStringInfoChar(&entry, p[1]);
			p++;
			continue;
		}
		if (*p == ';' || *p == '\0')
		{
			position++;
			if (!add_entry(entry.data, position, NULL, props, problem))
				return false;
			resetStringInfo(&entry);
			if (*p == '\0')
				break;
			continue;
		}
		appendStringInfoChar(&entry, *p);
	}
	pfree(entry.data);
	return true;
}

/*
 * check_file_access: the properties file must be a regular file that
 * only the server's OS user can read, with the same rules PostgreSQL
 * applies to ssl_key_file: owned by the database user with no group or
 * world access, or owned by root with at most group read access.
 */
static bool
check_file_access(const char *path, const struct stat *st,
				  OutboxPropertyProblem *problem)
{
	if (!S_ISREG(st->st_mode))
	{
		set_problem(problem, ERRCODE_CONFIG_FILE_ERROR,
					psprintf("producer properties file \"%s\" is not a regular file", path),
					NULL, NULL);
		return false;
	}
	if (st->st_uid != geteuid() && st->st_uid != 0)
	{
		set_problem(problem, ERRCODE_CONFIG_FILE_ERROR,
					psprintf("producer properties file \"%s\" must be owned by the database system user or root", path),
					NULL,
					pstrdup("It holds credentials: only the server's operating system user may read it."));
		return false;
	}
	if ((st->st_uid == geteuid() && (st->st_mode & (S_IRWXG | S_IRWXO))) ||
		(st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))))
	{
		set_problem(problem, ERRCODE_CONFIG_FILE_ERROR,
					psprintf("producer properties file \"%s\" has group or world access", path),
					pstrdup("File must have permissions u=rw (0600) or less if owned by the database user, or permissions u=rw,g=r (0640) or less if owned by root."),
					psprintf("It holds credentials: run chmod 600 \"%s\".", path));
		return false;
	}
	return true;
}

/*
 * outbox_read_property_file: read the producer properties file at path
 * (relative paths are relative to the data directory): one key=value per
 * line, blank lines and lines whose first non-blank character is '#'
 * ignored, no escapes (a value runs to the end of its line, so it may
 * contain ';' and '#').  The file must pass check_file_access.  On
 * success *props is a List of OutboxProperty whose origin is path.
 */
bool
outbox_read_property_file(const char *path, List **props,
						  OutboxPropertyProblem *problem)
{
	struct stat st;
	char	   *buf;
	char	   *line;
	char	   *next;
	int			fd;
	int			lineno = 0;
	ssize_t		nread = 0;

	*props = NIL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		int			save_errno = errno;

		set_problem(problem, ERRCODE_CONFIG_FILE_ERROR,
					psprintf("could not open producer properties file \"%s\": %s",
							 path, strerror(save_errno)),
					NULL,
					pstrdup("Check \"outbox_kafka.producer_properties_file\"; a relative path is relative to the data directory."));
		return false;
	}
	if (fstat(fd, &st) != 0)
	{
		int			save_errno = errno;

		close(fd);
		set_problem(problem, ERRCODE_CONFIG_FILE_ERROR,
					psprintf("could not stat producer properties file \"%s\": %s",
							 path, strerror(save_errno)),
					NULL, NULL);
		return false;
	}
	if (!check_file_access(path, &st, problem))
	{
		close(fd);
		return false;
	}
	if (st.st_size > OUTBOX_MAX_PROPERTIES_FILE_BYTES)
	{
		close(fd);
		set_problem(problem, ERRCODE_CONFIG_FILE_ERROR,
					psprintf("producer properties file \"%s\" is larger than %d bytes",
							 path, OUTBOX_MAX_PROPERTIES_FILE_BYTES),
					NULL, NULL);
		return false;
	}

	buf = palloc(st.st_size + 1);
	while (nread < st.st_size)
	{
		ssize_t		n = read(fd, buf + nread, st.st_size - nread);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			int			save_errno = errno;

			close(fd);
			set_problem(problem, ERRCODE_CONFIG_FILE_ERROR,
						psprintf("could not read producer properties file \"%s\": %s",
								 path, n < 0 ? strerror(save_errno) : "file shrank while read"),
						NULL, NULL);
			return false;
		}
		nread += n;
	}
	close(fd);
	buf[nread] = '\0';
	if (strlen(buf) != (size_t) nread)
	{
		set_problem(problem, ERRCODE_CONFIG_FILE_ERROR,
					psprintf("producer properties file \"%s\" contains a zero byte", path),
					NULL, NULL);
		return false;
	}

	for (line = buf; line != NULL; line = next)
	{
		char	   *start;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		start = trim_blanks(line);
		if (*start == '#' || *start == '\0')
			continue;
		if (!add_entry(start, lineno, path, props, problem))
			return false;
	}
	return true;
}

/*
 * value_is_true: does librdkafka read this boolean value as true?  (It
 * takes "true", "t" and "1"; everything else is false or invalid.)
 */
static bool
value_is_true(const char *value)
{
	return pg_strcasecmp(value, "true") == 0 ||
		pg_strcasecmp(value, "t") == 0 ||
		strcmp(value, "1") == 0;
}

/*
 * parse_int_value: a whole decimal integer, or false.
 */
static bool
parse_int_value(const char *value, long *result)
{
	char	   *end;

	errno = 0;
	*result = strtol(value, &end, 10);
	return errno == 0 && end != value && *end == '\0';
}

/*
 * property_base_name: the name librdkafka applies a property under.  It
 * strips a "topic." prefix and sets the rest on the default topic
 * configuration, so "topic.message.timeout.ms" is "message.timeout.ms":
 * every check compares the base name.
 */
static const char *
property_base_name(const char *name)
{
	if (pg_strncasecmp(name, "topic.", 6) == 0)
		return name + 6;
	return name;
}

/*
 * check_property: does one property keep the relay's guarantees?  Names
 * are compared without regard to case, aliases included.  The value of a
 * property named here is never a credential, but the messages still name
 * only the rule, not the value given.
 */
static bool
check_property(const OutboxProperty *prop, OutboxPropertyProblem *problem)
{
	const char *name = property_base_name(prop->name);
	const char *value = prop->value;
	const char *guarantee = NULL;
	const char *detail = NULL;
	long		ival;

	if (pg_strcasecmp(name, "enable.idempotence") == 0)
	{
		if (!value_is_true(value))
		{
			guarantee = G3_KEY_ORDER;
			detail = "\"enable.idempotence\" must be true: without idempotence a retried request can write an event twice or after a later event of its key.";
		}
	}
	else if (pg_strcasecmp(name, "enable.gapless.guarantee") == 0)
	{
		if (!value_is_true(value))
		{
			guarantee = G3_KEY_ORDER;
			detail = "\"enable.gapless.guarantee\" must be true: without it a failed request leaves a gap, later events of a key are acknowledged and the failed one is sent again after them.";
		}
	}
	else if (pg_strcasecmp(name, "acks") == 0 ||
			 pg_strcasecmp(name, "request.required.acks") == 0)
	{
		if (pg_strcasecmp(value, "all") != 0 && strcmp(value, "-1") != 0)
		{
			guarantee = G1_NO_LOSS;
			detail = "\"acks\" must be \"all\" (or -1): with fewer acknowledgements an event counts as published while only some replicas hold it, and losing the leader loses it.";
		}
	}
	else if (pg_strcasecmp(name, "message.timeout.ms") == 0 ||
			 pg_strcasecmp(name, "delivery.timeout.ms") == 0)
	{
		if (!parse_int_value(value, &ival) || ival != 0)
		{
			guarantee = G3_KEY_ORDER;
			detail = "\"message.timeout.ms\" must be 0 (no timeout): an event that times out in the producer's queue leaves a gap before later events of its key; the relay detects stalled topics itself (\"outbox_kafka.stall_timeout\").";
		}
	}
	else if (pg_strcasecmp(name, "max.in.flight") == 0 ||
			 pg_strcasecmp(name, "max.in.flight.requests.per.connection") == 0)
	{
		if (!parse_int_value(value, &ival) || ival > 5)
		{
			guarantee = G3_KEY_ORDER;
			detail = "\"max.in.flight.requests.per.connection\" must be an integer of at most 5: with more requests in flight the idempotent producer cannot keep the order of a partition.";
		}
	}
	else if (pg_strcasecmp(name, "retries") == 0 ||
			 pg_strcasecmp(name, "message.send.max.retries") == 0)
	{
		if (!parse_int_value(value, &ival) || ival < OUTBOX_MIN_PRODUCER_RETRIES)
		{
			guarantee = G3_KEY_ORDER;
			detail = psprintf("\"retries\" must be an integer of at least %d: an event whose retries run out fails while later events of its key go through.",
							  OUTBOX_MIN_PRODUCER_RETRIES);
		}
	}
	else if (pg_strcasecmp(name, "partitioner") == 0)
	{
		if (pg_strcasecmp(value, "random") == 0)
		{
			guarantee = G3_KEY_ORDER;
			detail = "\"partitioner\" must not be \"random\": it sends the events of one key to different partitions.";
		}
	}

	if (guarantee == NULL)
		return true;

	set_problem(problem, ERRCODE_INVALID_PARAMETER_VALUE,
				prop->origin == NULL ?
				psprintf("producer property \"%s\" would break guarantee %s",
						 prop->name, guarantee) :
				psprintf("producer property \"%s\" in file \"%s\" would break guarantee %s",
						 prop->name, prop->origin, guarantee),
				pstrdup(detail),
				pstrdup("Remove the property, or set \"outbox_kafka.allow_unsafe_producer_properties\" to on to accept the risk (see docs/security.md)."));
	return false;
}

/*
 * outbox_check_properties: refuse properties the relay sets itself and,
 * unless allow_unsafe, properties that would break guarantee G1 (no loss)
 * or G3 (order per key).  The first refusal fills *problem (SQLSTATE
 * 22023).
 */
bool
outbox_check_properties(List *props, bool allow_unsafe,
						OutboxPropertyProblem *problem)
{
	ListCell   *lc;

	foreach(lc, props)
	{
		OutboxProperty *prop = (OutboxProperty *) lfirst(lc);

		const char *name = property_base_name(prop->name);

		if (pg_strcasecmp(name, "log.queue") == 0)
		{
			set_problem(problem, ERRCODE_INVALID_PARAMETER_VALUE,
						psprintf("producer property \"%s\" is set by the relay and cannot be changed",
								 prop->name),
						pstrdup("librdkafka's log lines must be served on the relay's own thread."),
						NULL);
			return false;
		}
		if (pg_strcasecmp(name, "delivery.report.only.error") == 0 &&
			value_is_true(prop->value))
		{
			set_problem(problem, ERRCODE_INVALID_PARAMETER_VALUE,
						psprintf("producer property \"%s\" must be false",
								 prop->name),
						pstrdup("The relay moves past an event only when its delivery report says it was acknowledged: without reports of successes it would wait for ever."),
						pstrdup("Remove the property."));
			return false;
		}
		if (!allow_unsafe && !check_property(prop, problem))
			return false;
	}
	return true;
}

/*
 * outbox_property_is_secret: does the value of this property look like a
 * credential?  Errs on the side of hiding: any name containing "pass",
 * "secret", "pwd", "token", "credential", "key", "jaas" or "oauthbearer"
 * (sasl.password, ssl.key.password, ssl.keystore.password, ssl.key.pem,
 * sasl.oauthbearer.client.secret, sasl.oauthbearer.config, ...).
 */
bool
outbox_property_is_secret(const char *name)
{
	static const char *const words[] = {
		"pass", "secret", "pwd", "token", "credential", "key", "jaas",
		"oauthbearer",
	};
	char	   *lower = asc_tolower(name, strlen(name));
	bool		secret = false;
	int			i;

	for (i = 0; i < lengthof(words) && !secret; i++)
		secret = strstr(lower, words[i]) != NULL;
	pfree(lower);
	return secret;
}

/*
 * append_escaped: append s to buf, escaping ';' and '\' the way
 * outbox_parse_property_list reads them.
 */
static void
append_escaped(StringInfo buf, const char *s)
{
	for (; *s; s++)
	{
		if (*s == ';' || *s == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *s);
	}
}

/*
 * outbox_mask_property_list: what SHOW, current_setting and pg_settings
 * display for outbox_kafka.producer_properties: the properties with the
 * value of every secret-looking one replaced by OUTBOX_SECRET_MASK.  A
 * value that does not parse is masked whole.  Result palloc'd.
 */
char *
outbox_mask_property_list(const char *text)
{
	List	   *props;
	ListCell   *lc;
	StringInfoData buf;

	if (text == NULL || *text == '\0')
		return pstrdup("");
	if (!outbox_parse_property_list(text, &props, NULL))
		return pstrdup(OUTBOX_SECRET_MASK);

	initStringInfo(&buf);
	foreach(lc, props)
	{
		OutboxProperty *prop = (OutboxProperty *) lfirst(lc);

		if (buf.len > 0)
			appendStringInfoChar(&buf, ';');
		appendStringInfo(&buf, "%s=", prop->name);
		if (outbox_property_is_secret(prop->name))
			appendStringInfoString(&buf, OUTBOX_SECRET_MASK);
		else
			append_escaped(&buf, prop->value);
	}
	return buf.data;
}

/*
 * outbox_producer_settings_signature: a string that changes whenever the
 * settings a producer is built from change, the properties file included
 * (its identity, size, time of change and permissions, not its content),
 * so the relay can tell on reload that it must build a new producer.
 * Result palloc'd; it holds producer_properties, so never log it.
 */
char *
outbox_producer_settings_signature(void)
{
	struct stat st;
	const char *file = outbox_producer_properties_file ? outbox_producer_properties_file : "";
	char	   *file_state = "";

	if (*file != '\0')
	{
		if (stat(file, &st) == 0)
			file_state = psprintf("%lu/%lu/%lld/%lld.%09ld/%o",
								  (unsigned long) st.st_dev,
								  (unsigned long) st.st_ino,
								  (long long) st.st_size,
								  (long long) st.st_mtim.tv_sec,
								  (long) st.st_mtim.tv_nsec,
								  (unsigned int) st.st_mode);
		else
			file_state = psprintf("error %d", errno);
	}
	return psprintf("%s\n%s\n%s\n%s\n%d",
					outbox_bootstrap_servers ? outbox_bootstrap_servers : "",
					outbox_producer_properties ? outbox_producer_properties : "",
					file, file_state,
					(int) outbox_allow_unsafe_producer_properties);
}

/*
 * set_property: rd_kafka_conf_set with an error message that names the
 * property (and the file it came from, if any) but never echoes its
 * value (it may be a password).
 */
static bool
set_property(rd_kafka_conf_t *conf, const char *name, const char *value,
			 const char *origin, char *errbuf, size_t errbuf_size)
{
	char		rderr[256];
	rd_kafka_conf_res_t res;
	char	   *where = origin ? psprintf(" in file \"%s\"", origin) : "";

	res = rd_kafka_conf_set(conf, name, value, rderr, sizeof(rderr));
	if (res == RD_KAFKA_CONF_OK)
		return true;
	if (res == RD_KAFKA_CONF_UNKNOWN)
		snprintf(errbuf, errbuf_size, "unknown producer property \"%s\"%s",
				 name, where);
	else
		snprintf(errbuf, errbuf_size, "invalid value for producer property \"%s\"%s",
				 name, where);
	return false;
}

/*
 * outbox_producer_config_build: a librdkafka configuration for a relay
 * producer named client_id: bootstrap servers, the relay's defaults, then
 * outbox_kafka.producer_properties, then the properties file, all checked
 * again here with the same rules as the settings' check hooks.  Returns
 * NULL with a message (naming no value) in errbuf when a property is
 * refused, unknown or invalid, or the file cannot be used.  The caller
 * owns the result (rd_kafka_new takes it over).
 */
rd_kafka_conf_t *
outbox_producer_config_build(const char *client_id, char *errbuf,
							 size_t errbuf_size)
{
	/*
	 * The defaults keep G1 and G3 (see docs/configuration.md): idempotent,
	 * acknowledged by all in-sync replicas, no gaps, no timeouts (the relay
	 * holds stalled topics aside itself), and a fast reconnect so that
	 * publishing resumes within a second after the brokers come back.
	 */
	static const char *const defaults[][2] = {
		{"enable.idempotence", "true"},
		{"acks", "all"},
		{"enable.gapless.guarantee", "true"},
		{"message.timeout.ms", "0"},
		{"partitioner", "murmur2_random"},
		{"linger.ms", "1"},
		{"socket.nagle.disable", "true"},
		{"reconnect.backoff.ms", "100"},
		{"reconnect.backoff.max.ms", "1000"},
		{"retry.backoff.ms", "100"},
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	OutboxPropertyProblem problem;
	List	   *props = NIL;
	List	   *file_props = NIL;
	ListCell   *lc;
	int			i;

	if (!set_property(conf, "bootstrap.servers", outbox_bootstrap_servers, NULL, errbuf, errbuf_size) ||
		!set_property(conf, "client.id", client_id, NULL, errbuf, errbuf_size))
		goto fail;
	for (i = 0; i < lengthof(defaults); i++)
		if (!set_property(conf, defaults[i][0], defaults[i][1], NULL, errbuf, errbuf_size))
			goto fail;

	if (!outbox_parse_property_list(outbox_producer_properties, &props, &problem))
		goto refused;
	if (outbox_producer_properties_file != NULL &&
		*outbox_producer_properties_file != '\0')
	{
		if (!outbox_read_property_file(outbox_producer_properties_file,
									   &file_props, &problem))
			goto refused;
		props = list_concat(props, file_props);
	}
	if (!outbox_check_properties(props, outbox_allow_unsafe_producer_properties,
								 &problem))
		goto refused;

	foreach(lc, props)
	{
		OutboxProperty *prop = (OutboxProperty *) lfirst(lc);

		if (!set_property(conf, prop->name, prop->value, prop->origin,
						  errbuf, errbuf_size))
			goto fail;
	}

	/* last, so that nothing overrides it */
	if (!set_property(conf, "log.queue", "true", NULL, errbuf, errbuf_size))
		goto fail;
	return conf;

refused:
	strlcpy(errbuf, problem.message, errbuf_size);
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}
