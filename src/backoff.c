/*-------------------------------------------------------------------------
 *
 * backoff.c
 *	  How long a background worker of outbox_kafka (the relay, the inbox)
 *	  waits after the n-th failure in a row: the first wait, doubled per
 *	  failure, capped.  Each caller keeps its own first wait and cap.
 *	  And how long is left of a wait.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/backoff.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "outbox_kafka.h"

/*
 * outbox_backoff_next: the wait after one more failure, given the wait
 * after the previous one (0 if the previous attempt succeeded): first_ms,
 * then doubled, at most max_ms.  first_ms > 0, max_ms >= first_ms.
 */
int
outbox_backoff_next(int previous_ms, int first_ms, int max_ms)
{
	if (previous_ms <= 0)
		return first_ms;
	/* no overflow: previous_ms is at most max_ms, an int of milliseconds */
	return previous_ms > max_ms / 2 ? max_ms : previous_ms * 2;
}

/*
 * outbox_backoff_after: the wait after failures failures in a row
 * (failures >= 1; less counts as 1): what outbox_backoff_next gives the
 * failures-th time, starting from a success.
 */
int
outbox_backoff_after(int failures, int first_ms, int max_ms)
{
	int			wait_ms = first_ms;

	while (--failures > 0 && wait_ms < max_ms)
		wait_ms = outbox_backoff_next(wait_ms, first_ms, max_ms);
	return wait_ms < max_ms ? wait_ms : max_ms;
}

/*
 * outbox_ms_until: milliseconds from now until t (rounded up, so that a
 * wait for it does not wake just before), at least 0.
 */
long
outbox_ms_until(TimestampTz t)
{
	long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), t);

	return Max(ms, 0);
}

/*
 * outbox_backoff_schedule: after one more failure, set *backoff_ms to the
 * next wait (outbox_backoff_next) and return when it ends, from now.
 */
TimestampTz
outbox_backoff_schedule(int *backoff_ms, int first_ms, int max_ms)
{
	*backoff_ms = outbox_backoff_next(*backoff_ms, first_ms, max_ms);
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), *backoff_ms);
}
