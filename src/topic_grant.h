/*-------------------------------------------------------------------------
 *
 * topic_grant.h
 *	  Which roles may publish to which topics (outbox.topic_grant).
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/topic_grant.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_TOPIC_GRANT_H
#define OUTBOX_TOPIC_GRANT_H

extern void outbox_check_topic_grant(const char *topic, Oid outbox_owner);

#endif							/* OUTBOX_TOPIC_GRANT_H */
