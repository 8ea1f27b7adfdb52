/*-------------------------------------------------------------------------
 *
 * consumer_config.c
 *	  Which librdkafka consumer properties outbox_kafka.consumer_properties
 *	  may set for the inbox's consumers.
 *
 * The setting has the syntax of outbox_kafka.producer_properties (parsed
 * by producer_config.c).  Refused, always: what the inbox sets itself
 * because exactly-once depends on it (the group, offset commits and
 * stores, where to start without a stored offset, the isolation level,
 * the servers, the log queue), and the connection and credential
 * properties (security.protocol, sasl.*, ssl.*, and anything that looks
 * like a secret): the consumers take those from producer_properties, the
 * one setting whose value the server keeps out of logs and views, so this
 * setting never holds a secret.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/consumer_config.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "consumer_config.h"

/* Properties the inbox sets itself: changing them breaks exactly-once. */
static const char *const owned[] = {
	"group.id", "group.instance.id", "group.protocol", "group.remote.assignor",
	"partition.assignment.strategy", "enable.auto.commit",
	"enable.auto.offset.store", "auto.commit.enable", "auto.offset.reset",
	"offset.store.method", "isolation.level", "enable.partition.eof",
	"bootstrap.servers", "metadata.broker.list", "client.id", "log.queue",
};

/* Prefixes of connection properties, taken from producer_properties. */
static const char *const connection[] = {
	"security.protocol", "sasl.", "ssl.",
};

/*
 * outbox_check_consumer_properties: refuse what the file comment lists.
 * The first refusal fills *problem (SQLSTATE 22023); messages name the
 * property, never its value.
 */
bool
outbox_check_consumer_properties(List *props, OutboxPropertyProblem *problem)
{
	ListCell   *lc;

	foreach(lc, props)
	{
		OutboxProperty *prop = (OutboxProperty *) lfirst(lc);
		const char *name = prop->name;
		int			i;

		if (pg_strncasecmp(name, "topic.", 6) == 0)
			name += 6;
		for (i = 0; i < lengthof(owned); i++)
		{
			if (pg_strcasecmp(name, owned[i]) != 0)
				continue;
			problem->sqlerrcode = ERRCODE_INVALID_PARAMETER_VALUE;
			problem->message = psprintf("consumer property \"%s\" is set by the inbox and cannot be changed",
										prop->name);
			problem->detail = pstrdup("The inbox keeps its offsets in PostgreSQL and assigns partitions itself; this property would break exactly-once.");
			problem->hint = pstrdup("Remove the property.");
			return false;
		}
		for (i = 0; i < lengthof(connection); i++)
		{
			if (pg_strncasecmp(name, connection[i], strlen(connection[i])) != 0 &&
				!outbox_property_is_secret(name))
				continue;
			problem->sqlerrcode = ERRCODE_INVALID_PARAMETER_VALUE;
			problem->message = psprintf("consumer property \"%s\" belongs in outbox_kafka.producer_properties",
										prop->name);
			problem->detail = pstrdup("The inbox connects with the connection and credential properties of outbox_kafka.producer_properties (and its file), whose values are kept out of logs and views.");
			problem->hint = pstrdup("Set it in outbox_kafka.producer_properties or outbox_kafka.producer_properties_file.");
			return false;
		}
	}
	return true;
}
