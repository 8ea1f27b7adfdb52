/*-------------------------------------------------------------------------
 *
 * wall_clock.h
 *	  The benchmark programs' clock: wall-clock seconds since the epoch,
 *	  comparable with the database's clock_timestamp() on the same machine.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  bench/wall_clock.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef OUTBOX_BENCH_WALL_CLOCK_H
#define OUTBOX_BENCH_WALL_CLOCK_H

#include <time.h>

/* now_s: wall-clock time in seconds, as the database's clock_timestamp(). */
static inline double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif							/* OUTBOX_BENCH_WALL_CLOCK_H */
