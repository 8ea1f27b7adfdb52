/*-------------------------------------------------------------------------
 *
 * step_error.c
 *	  What a background worker of outbox_kafka (the relay, the inbox) does
 *	  when an ERROR escapes one of its steps, before it starts over.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/step_error.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "utils/memutils.h"

#include "outbox_kafka.h"

/*
 * outbox_abort_failed_step: call in the sigsetjmp handler of a worker's
 * loop, after an ERROR escaped a step: reports the error, aborts the
 * transaction and releases what AbortCurrentTransaction() leaves to the
 * caller outside a transaction (LWLocks, a condition variable sleep, the
 * wait event).  Returns a copy of the error in TopMemoryContext, which is
 * also the current context on return; the caller frees it
 * (FreeErrorData) once it has said what it does next.
 */
ErrorData *
outbox_abort_failed_step(void)
{
	ErrorData  *edata;

	/* the callbacks of the failed step point into frames that are gone */
	error_context_stack = NULL;
	HOLD_INTERRUPTS();
	/* copy the error before the transaction's memory goes away */
	MemoryContextSwitchTo(TopMemoryContext);
	edata = CopyErrorData();
	EmitErrorReport();
	LWLockReleaseAll();
	ConditionVariableCancelSleep();
	pgstat_report_wait_end();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(TopMemoryContext);
	FlushErrorState();
	pgstat_report_activity(STATE_IDLE, NULL);
	RESUME_INTERRUPTS();
	return edata;
}

/*
 * outbox_failed_step_message: what a worker says (in its log and as its
 * last error) when it retries in retry_ms after the failed step of edata;
 * palloc'd in the current memory context.
 */
char *
outbox_failed_step_message(ErrorData *edata, int retry_ms)
{
	return psprintf("error, retrying in %d ms: %s", retry_ms,
					edata->message ? edata->message : "unknown error");
}
