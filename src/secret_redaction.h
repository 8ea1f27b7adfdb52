/*-------------------------------------------------------------------------
 *
 * secret_redaction.h
 *	  Keeping the value of outbox_kafka.producer_properties out of
 *	  pg_stat_activity, pg_stat_statements and the server log.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/secret_redaction.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_SECRET_REDACTION_H
#define OUTBOX_SECRET_REDACTION_H

#include "nodes/nodes.h"

/* The setting whose value is secret, and the one naming its file. */
#define OUTBOX_SECRET_SETTING		"outbox_kafka.producer_properties"
#define OUTBOX_SECRET_FILE_SETTING	"outbox_kafka.producer_properties_file"
/* Refuses credentials, but statements setting it are redacted all the same. */
#define OUTBOX_CONSUMER_SECRET_SETTING	"outbox_kafka.consumer_properties"

extern void outbox_secret_redaction_install(void);
extern const char *outbox_utility_setting_name(Node *stmt);

#endif							/* OUTBOX_SECRET_REDACTION_H */
