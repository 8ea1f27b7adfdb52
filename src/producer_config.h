/*-------------------------------------------------------------------------
 *
 * producer_config.h
 *	  Building the librdkafka configuration of the relay's producer.
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

extern rd_kafka_conf_t *outbox_producer_config_build(const char *client_id,
													 char *errbuf,
													 size_t errbuf_size);

#endif							/* OUTBOX_PRODUCER_CONFIG_H */
