/*-------------------------------------------------------------------------
 *
 * consumer_config.h
 *	  The checks of outbox_kafka.consumer_properties (consumer_config.c).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/consumer_config.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_CONSUMER_CONFIG_H
#define OUTBOX_CONSUMER_CONFIG_H

#include "producer_config.h"

extern bool outbox_check_consumer_properties(List *props,
											 OutboxPropertyProblem *problem);

#endif							/* OUTBOX_CONSUMER_CONFIG_H */
