/*-------------------------------------------------------------------------
 *
 * producer_config.h
 *	  Building the librdkafka configuration of the relay's producer, and
 *	  the parsing and checks of producer properties shared by the settings'
 *	  check hooks (any backend) and the relay (its worker process).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/producer_config.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_PRODUCER_CONFIG_H
#define OUTBOX_PRODUCER_CONFIG_H

#include <librdkafka/rdkafka.h>

#include "nodes/pg_list.h"

/* What a secret value is shown as (SHOW, pg_settings, current_setting). */
#define OUTBOX_SECRET_MASK		"********"

/* Smallest "retries" accepted without the opt-out. */
#define OUTBOX_MIN_PRODUCER_RETRIES	1000000

/* Largest producer properties file read. */
#define OUTBOX_MAX_PROPERTIES_FILE_BYTES	(1024 * 1024)

/* One name=value pair of producer_properties or of the properties file. */
typedef struct OutboxProperty
{
	char	   *name;
	char	   *value;
	int			position;		/* entry number, or line number in the file */
	const char *origin;			/* NULL for the setting, else the file path */
} OutboxProperty;

/*
 * Why properties were refused, ready for ereport or the GUC_check_err*
 * functions.  Never contains a property value.
 */
typedef struct OutboxPropertyProblem
{
	int			sqlerrcode;
	char	   *message;
	char	   *detail;			/* may be NULL */
	char	   *hint;			/* may be NULL */
} OutboxPropertyProblem;

extern bool outbox_parse_property_list(const char *text, List **props,
									   OutboxPropertyProblem *problem);
extern bool outbox_read_property_file(const char *path, List **props,
									  OutboxPropertyProblem *problem);
extern bool outbox_check_properties(List *props, bool allow_unsafe,
									OutboxPropertyProblem *problem);
extern bool outbox_property_is_secret(const char *name);
extern char *outbox_mask_property_list(const char *text);
extern char *outbox_producer_settings_signature(void);
extern rd_kafka_conf_t *outbox_producer_config_build(const char *client_id,
													 char *errbuf,
													 size_t errbuf_size);

#endif							/* OUTBOX_PRODUCER_CONFIG_H */
