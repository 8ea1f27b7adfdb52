/*-------------------------------------------------------------------------
 *
 * relay_context.c
 *	  The state of one database's relay worker (RelayWorker relay) and the
 *	  services the parts of its loop share: the worker state shown in
 *	  outbox.status, the transaction of one step, the count of commits.
 *
 * worker.c drives the loop; publish.c and held_lane.c work chunks and held
 * topics with what is here.  Nothing here calls back into them.  They ask
 * for a new producer with relay_request_rebuild(); the driver acts on it
 * between steps.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/relay_context.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "relay_worker.h"

/* How often a worker stuck in a bad state says so again in the log. */
#define REMINDER_INTERVAL_MS 60000

RelayWorker relay;

/*
 * relay_enter_state: publish state in shared memory; log detail (at
 * elevel) when the state changes, and again every REMINDER_INTERVAL_MS
 * while a bad state lasts.  Entering a good state (idle, publishing) clears
 * the last error: the status view says what is wrong only while it is.
 * detail may be NULL.
 */
void
relay_enter_state(OutboxWorkerState state, int elevel, const char *detail)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		changed = (state != relay.state);
	bool		good = outbox_state_flows(state);

	if (changed && good && !outbox_state_flows(relay.state))
	{
		outbox_slot_clear_error(relay.slot);
		if (relay.state != OUTBOX_STATE_STARTING)
		{
			ereport(LOG,
					(errmsg("outbox_kafka worker for database \"%s\" is %s again: events flow",
							relay.dbname ? relay.dbname : "?",
							outbox_state_name(state))));
		}
	}

	if (!changed && (detail == NULL || elevel < LOG ||
					 !TimestampDifferenceExceeds(relay.state_logged_at, now,
												 REMINDER_INTERVAL_MS)))
	{
		if (detail != NULL && elevel >= WARNING)
			outbox_slot_set_error(relay.slot, detail);
		return;
	}

	if (changed)
		outbox_slot_set_state(relay.slot, state);
	relay.state = state;

	if (detail != NULL)
	{
		ereport(elevel,
				(errmsg("outbox_kafka worker for database \"%s\" is %s%s: %s",
						relay.dbname ? relay.dbname : "?",
						outbox_state_name(state),
						changed ? "" : " (still)",
						detail)));
		if (elevel >= WARNING)
			outbox_slot_set_error(relay.slot, detail);
		relay.state_logged_at = now;
	}
}

/*
 * relay_begin_step: open the transaction (with a snapshot) of one unit of
 * the relay's work, shown as activity in pg_stat_activity.
 */
void
relay_begin_step(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/*
 * relay_end_step: commit the transaction opened by relay_begin_step().
 */
void
relay_end_step(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* commit leaves TopMemoryContext current; keep loop garbage short-lived */
	MemoryContextSwitchTo(relay.loop_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * relay_new_commits: were transactions that enqueued committed since new
 * events were last looked for (relay_look_for_commits)?
 */
bool
relay_new_commits(void)
{
	return relay.slot == NULL ||
		pg_atomic_read_u64(&relay.slot->commits) != relay.commits_looked_at;
}

/*
 * relay_look_for_commits: new events are about to be looked for (before
 * the snapshot is taken): commits counted from now on are new.
 */
void
relay_look_for_commits(void)
{
	relay.commits_seen = false;
	if (relay.slot != NULL)
		relay.commits_looked_at = pg_atomic_read_u64(&relay.slot->commits);
}

/*
 * relay_note_progress: an event was settled for good (acknowledged, or
 * dead-lettered after it was refused for what it is): the failures before
 * it made progress, so the back-offs (the retries' and the producer
 * rebuilds') start again from the least.  They grow only while failing
 * makes no progress.
 */
void
relay_note_progress(void)
{
	relay.backoff_ms = 0;
	relay.rebuild_backoff_ms = 0;
}

/*
 * relay_request_rebuild: the producer is in a fatal state (reason says
 * why): the driver destroys it and builds a new one before the next step.
 * The first request until then wins.
 */
void
relay_request_rebuild(const char *reason)
{
	if (relay.rebuild_reason == NULL)
		relay.rebuild_reason = MemoryContextStrdup(TopMemoryContext, reason);
}
