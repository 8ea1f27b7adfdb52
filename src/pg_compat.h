/*-------------------------------------------------------------------------
 *
 * pg_compat.h
 *	  What differs between the PostgreSQL major versions outbox_kafka is
 *	  built against (15 to 18), in one place.  Code elsewhere uses the API
 *	  of the newest version; this header supplies it for older ones.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/pg_compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_PG_COMPAT_H
#define OUTBOX_PG_COMPAT_H

#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"

/*
 * A GUC check hook's *extra (like a replaced *newval) is freed by the GUC
 * machinery.  Since PostgreSQL 16 it lives in GUC's memory context and is
 * freed with guc_free(), i.e. pfree(): it must come from guc_malloc(), and a
 * malloc()ed one fails with "pfree called with invalid pointer".  Up to 15
 * it is free()d, and guc_malloc() is static in guc.c: use malloc() there.
 */
#if PG_VERSION_NUM < 160000
#define guc_malloc(elevel, size) malloc(size)
#endif

/*
 * CreateWaitEventSet() takes the ResourceOwner that tracks the set since
 * PostgreSQL 17 (NULL: untracked, allocated in TopMemoryContext), and the
 * MemoryContext to allocate it in before.  outbox_create_wait_event_set()
 * makes a set that lives until FreeWaitEventSet() or process exit on every
 * version.
 */
#if PG_VERSION_NUM >= 170000
#define outbox_create_wait_event_set(nevents) CreateWaitEventSet(NULL, (nevents))
#else
#define outbox_create_wait_event_set(nevents) CreateWaitEventSet(TopMemoryContext, (nevents))
#endif

/*
 * index_beginscan() takes the scan's instrumentation (NULL: none) since
 * PostgreSQL 18.
 */
#if PG_VERSION_NUM >= 180000
#define outbox_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), (norderbys))
#else
#define outbox_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), (norderbys))
#endif

#endif							/* OUTBOX_PG_COMPAT_H */
