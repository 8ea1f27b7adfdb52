/*-------------------------------------------------------------------------
 *
 * librdkafka_version.h
 *	  What the librdkafka the relay runs with is, and what it cannot do.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/librdkafka_version.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_LIBRDKAFKA_VERSION_H
#define OUTBOX_LIBRDKAFKA_VERSION_H

/* rd_kafka_conf_t, without librdkafka's header for the callers */
struct rd_kafka_conf_s;

extern void outbox_librdkafka_vet_config(struct rd_kafka_conf_s *conf);
extern const char *outbox_librdkafka_version(void);

#endif							/* OUTBOX_LIBRDKAFKA_VERSION_H */
