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

#include "utils/guc.h"

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

#endif							/* OUTBOX_PG_COMPAT_H */
