/*-------------------------------------------------------------------------
 *
 * producer_config.c
 *	  The librdkafka configuration of the relay's producer: the defaults
 *	  the relay's guarantees rest on, and outbox_kafka.producer_properties
 *	  applied on top of them.
 *
 * Property values may be credentials: no message built here ever echoes
 * a value, only property names.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/producer_config.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <librdkafka/rdkafka.h>

#include "relay.h"
#include "producer_config.h"

static bool set_property(rd_kafka_conf_t *conf, const char *name,
						 const char *value, char *errbuf, size_t errbuf_size);
static bool apply_producer_properties(rd_kafka_conf_t *conf, char *errbuf,
									  size_t errbuf_size);

/*
 * set_property: rd_kafka_conf_set with an error message that names the
 * property but never echoes its value (it may be a password).
 */
static bool
set_property(rd_kafka_conf_t *conf, const char *name, const char *value,
			 char *errbuf, size_t errbuf_size)
{
	char		rderr[256];
	rd_kafka_conf_res_t res;

	res = rd_kafka_conf_set(conf, name, value, rderr, sizeof(rderr));
	if (res == RD_KAFKA_CONF_OK)
		return true;
	if (res == RD_KAFKA_CONF_UNKNOWN)
		snprintf(errbuf, errbuf_size, "unknown producer property \"%s\"", name);
	else
		snprintf(errbuf, errbuf_size, "invalid value for producer property \"%s\"", name);
	return false;
}

/*
 * apply_producer_properties: apply outbox_kafka.producer_properties
 * ("key=value;key=value") on top of the defaults.
 */
static bool
apply_producer_properties(rd_kafka_conf_t *conf, char *errbuf,
						  size_t errbuf_size)
{
	char	   *copy;
	char	   *entry;
	char	   *save = NULL;
	bool		ok = true;

	if (outbox_producer_properties == NULL || *outbox_producer_properties == '\0')
		return true;

	copy = pstrdup(outbox_producer_properties);
	for (entry = strtok_r(copy, ";", &save); entry != NULL && ok;
		 entry = strtok_r(NULL, ";", &save))
	{
		char	   *eq = strchr(entry, '=');
		char	   *name = entry;
		char	   *value;
		char	   *end;

		if (eq == NULL)
		{
			/* the check hook allows only blank entries without '=' */
			continue;
		}
		*eq = '\0';
		value = eq + 1;
		while (*name == ' ' || *name == '\t')
			name++;
		for (end = eq - 1; end >= name && (*end == ' ' || *end == '\t'); end--)
			*end = '\0';
		while (*value == ' ' || *value == '\t')
			value++;
		for (end = value + strlen(value) - 1; end >= value && (*end == ' ' || *end == '\t'); end--)
			*end = '\0';
		ok = set_property(conf, name, value, errbuf, errbuf_size);
	}
	pfree(copy);
	return ok;
}

/*
 * outbox_producer_config_build: a librdkafka configuration for a relay
 * producer named client_id: bootstrap servers, the relay's defaults, then
 * outbox_kafka.producer_properties.  Returns NULL with a message (naming
 * no value) in errbuf when a property is unknown or invalid.  The caller
 * owns the result (rd_kafka_new takes it over).
 */
rd_kafka_conf_t *
outbox_producer_config_build(const char *client_id, char *errbuf,
							 size_t errbuf_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *defaults[][2] = {
		{"enable.idempotence", "true"},
		{"acks", "all"},
		{"partitioner", "murmur2_random"},
		{"linger.ms", "1"},
		{"socket.nagle.disable", "true"},
	};
	int			i;

	if (!set_property(conf, "bootstrap.servers", outbox_bootstrap_servers, errbuf, errbuf_size) ||
		!set_property(conf, "client.id", client_id, errbuf, errbuf_size) ||
		!set_property(conf, "log.queue", "true", errbuf, errbuf_size))
		goto fail;
	for (i = 0; i < lengthof(defaults); i++)
		if (!set_property(conf, defaults[i][0], defaults[i][1], errbuf, errbuf_size))
			goto fail;
	if (!apply_producer_properties(conf, errbuf, errbuf_size))
		goto fail;
	return conf;

fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}
