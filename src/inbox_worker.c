/*-------------------------------------------------------------------------
 *
 * inbox_worker.c
 *	  The inbox worker of one database: its slot, states, settings, the
 *	  consumers of its subscriptions, the main loop, back-off, shutdown and
 *	  recovery from errors.
 *
 * The launcher starts one inbox worker per database of
 * outbox_kafka.databases, next to the relay.  The worker re-reads the
 * subscriptions and their stored offsets every INBOX_REFRESH_MS (also when
 * there are none: it then only waits on its latch), so outbox.subscribe,
 * outbox.unsubscribe and outbox.inbox_rewind take effect within that time.
 * Each subscription has its own consumer, assigned every partition of its
 * topic at the stored offsets.  Each pass polls what is ready, without
 * waiting, and applies it as one transaction per subscription
 * (inbox_apply.c); between passes the worker sleeps on its latch, the pipe
 * the consumers' queues write to, and postmaster death, never in
 * librdkafka.
 *
 * A partition whose message failed is paused and resumed, at that
 * message, after a back-off that doubles with its failed tries in a row
 * (transient failures too, though they count no attempt).  An ERROR out
 * of a pass (the stored offsets changed under the batch, the extension
 * went away, a lost connection of a handler's...) rolls the transaction
 * back; the worker then drops its consumers and, after a back-off, starts
 * again from the stored offsets: nothing is applied twice.
 *
 * Copyright (c) 2026, outbox_kafka developers
 *
 * IDENTIFICATION
 *	  src/inbox_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "inbox.h"
#include "inbox_consumer.h"
#include "librdkafka_version.h"
#include "outbox_kafka.h"
#include "pg_compat.h"
#include "producer_config.h"
#include "relay.h"

/* How often subscriptions and stored offsets are read again. */
#define INBOX_REFRESH_MS		1000
/* How long a metadata request for a topic's partitions may take. */
#define INBOX_METADATA_MS		2000

/* One subscription being consumed. */
typedef struct InboxSub
{
	InboxSubscription *sub;
	InboxConsumer *consumer;	/* NULL until assigned */
	int			npartitions;
	int32	   *partitions;
	List	   *positions;		/* of InboxPosition *, one per partition */
	TimestampTz *retry_at;		/* per partition: paused until; 0 if not */
	int		   *failures;		/* per partition: failed tries in a row at
								 * its offset, counted or not (a transient
								 * failure counts no attempt, yet backs off) */
	TimestampTz held_due;		/* when to look at the held keys again */
} InboxSub;

static struct
{
	Oid			dboid;
	char	   *dbname;
	InboxSlot  *slot;
	MemoryContext subs_cxt;		/* everything of subs */
	List	   *subs;			/* of InboxSub * */
	char	   *settings;		/* Kafka settings the consumers were built from */
	int			pipe_fds[2];	/* consumers' queues write to [1] */
	WaitEventSet *wait_set;
	TimestampTz next_refresh;
	TimestampTz retry_at;		/* after an error: wait until */
	int			backoff_ms;
	bool		ready;			/* the extension is there, at our version */
	bool		stopping;
	InboxState	state;
} inbox;

static void release_slot(int code, Datum arg);
static void pin_settings(void);
static void enter_state(InboxState state, int elevel, const char *message);
static void drop_consumers(void);
static bool check_extension(void);
static void refresh(void);
static bool same_positions(List *a, List *b);
static bool assign(InboxSub *is);
static InboxPosition *position_of(InboxSub *is, int32 partition);
static void resume_due(InboxSub *is, TimestampTz now, long *wait_ms);
static bool consume(InboxSub *is);
static void publish_watermarks(void);
static void resolve_rewinds(InboxSub *is);
static char *settings_signature(void);
static long inbox_step(void);
static void wait_for_work(long timeout_ms);
static void drain_pipe(void);
static void recover_from_error(void);

/*
 * release_slot: before_shmem_exit callback: the status stops showing a
 * worker that is gone.
 */
static void
release_slot(int code, Datum arg)
{
	inbox_release_slot(inbox.slot);
	inbox.slot = NULL;
}

/*
 * pin_settings: the settings batches run with, whatever the database or
 * role defaults say.  Set at session level, so that a handler's own SET
 * clause (or SET LOCAL) still applies; search_path is the one handlers
 * run with (docs/inbox.md).  synchronous_commit is left as configured.
 */
static void
pin_settings(void)
{
	static const char *const pinned[][2] = {
		{"default_transaction_read_only", "off"},
		{"default_transaction_isolation", "read committed"},
		{"default_transaction_deferrable", "off"},
		{"statement_timeout", "0"},
		{"lock_timeout", "0"},
		{"idle_in_transaction_session_timeout", "0"},
		{"idle_session_timeout", "0"},
		{"session_replication_role", "origin"},
		{"search_path", "\"$user\", public"},
	};
	int			i;

	for (i = 0; i < lengthof(pinned); i++)
		SetConfigOption(pinned[i][0], pinned[i][1], PGC_SUSET, PGC_S_SESSION);
}

/*
 * enter_state: publish state; a new problem (message not NULL) is logged
 * at elevel once and shown as the last error.
 */
static void
enter_state(InboxState state, int elevel, const char *message)
{
	if (message != NULL && (state != inbox.state || elevel >= WARNING))
	{
		ereport(elevel,
				(errmsg("outbox_kafka inbox worker for database \"%s\": %s",
						inbox.dbname, message)));
		inbox_slot_set_error(inbox.slot, message);
	}
	inbox.state = state;
	inbox_slot_set_state(inbox.slot, state);
}

/*
 * drop_consumers: destroy every consumer and forget the subscriptions;
 * the next refresh starts over from storage.
 */
static void
drop_consumers(void)
{
	ListCell   *lc;

	foreach(lc, inbox.subs)
		inbox_consumer_destroy(((InboxSub *) lfirst(lc))->consumer);
	inbox.subs = NIL;
	MemoryContextReset(inbox.subs_cxt);
	inbox_slot_set_watermarks(inbox.slot, NIL);
}

/*
 * check_extension: is the extension installed at the version this library
 * serves?  Says why not in the state.  Needs an open transaction.
 */
static bool
check_extension(void)
{
	char	   *version = outbox_storage_extension_version();

	if (version == NULL)
	{
		enter_state(INBOX_STATE_WAITING_FOR_EXTENSION, LOG,
					"extension outbox_kafka is not installed in this database");
		return false;
	}
	if (strcmp(version, OUTBOX_SCHEMA_VERSION) != 0)
	{
		enter_state(INBOX_STATE_MISCONFIGURED, LOG,
					psprintf("extension outbox_kafka is at version %s in this database, but the loaded library needs version %s; run ALTER EXTENSION outbox_kafka UPDATE",
							 version, OUTBOX_SCHEMA_VERSION));
		return false;
	}
	return true;
}

/*
 * same_positions: do two lists of InboxPosition * name the same offsets
 * for the partitions both know?
 */
static bool
same_positions(List *a, List *b)
{
	ListCell   *la;
	ListCell   *lb;

	foreach(la, a)
	{
		InboxPosition *pa = (InboxPosition *) lfirst(la);

		foreach(lb, b)
		{
			InboxPosition *pb = (InboxPosition *) lfirst(lb);

			if (pa->partition == pb->partition && pa->next_offset >= 0 &&
				pa->next_offset != pb->next_offset)
				return false;
		}
	}
	return true;
}

/*
 * refresh: read the subscriptions and stored offsets; start consuming new
 * subscriptions, stop removed or changed ones, and re-assign one whose
 * stored offsets were moved (outbox.inbox_rewind).  Rotates the
 * de-duplication tables when due.  Runs its own transaction.
 */
static void
refresh(void)
{
	List	   *subs;
	List	   *kept = NIL;
	ListCell   *lc;
	MemoryContext loop_cxt = CurrentMemoryContext;

	if (!outbox_database_listed(inbox.dbname))
	{
		/* a launcher that started us is gone, and the list changed */
		ereport(LOG,
				(errmsg("outbox_kafka inbox worker for database \"%s\" stops: no longer listed in \"outbox_kafka.databases\"",
						inbox.dbname)));
		drop_consumers();
		proc_exit(0);
	}
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "reading inbox subscriptions");
	inbox.ready = check_extension();
	if (!inbox.ready)
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(loop_cxt);
		drop_consumers();
		pgstat_report_activity(STATE_IDLE, NULL);
		return;
	}

	MemoryContextSwitchTo(loop_cxt);
	subs = inbox_storage_subscriptions();
	foreach(lc, inbox.subs)
	{
		InboxSub   *is = (InboxSub *) lfirst(lc);
		ListCell   *ln;
		bool		keep = false;

		foreach(ln, subs)
			if (strcmp(((InboxSubscription *) lfirst(ln))->signature,
					   is->sub->signature) == 0)
				keep = true;
		if (keep && is->consumer != NULL &&
			!same_positions(is->positions, inbox_storage_positions(is->sub->name)))
		{
			ereport(LOG,
					(errmsg("outbox_kafka inbox: the stored offsets of subscription \"%s\" were moved; consuming from them",
							is->sub->name)));
			keep = false;
		}
		if (keep)
			kept = lappend(kept, is);
		else
		{
			inbox_consumer_destroy(is->consumer);
			is->consumer = NULL;
			inbox_apply_forget_plans();
		}
	}
	/* subscriptions not consumed yet */
	foreach(lc, subs)
	{
		InboxSubscription *sub = (InboxSubscription *) lfirst(lc);
		ListCell   *lk;
		bool		known = false;
		InboxSub   *is;
		MemoryContext old;

		foreach(lk, kept)
			if (strcmp(((InboxSub *) lfirst(lk))->sub->signature, sub->signature) == 0)
				known = true;
		if (known)
			continue;
		old = MemoryContextSwitchTo(inbox.subs_cxt);
		is = palloc0(sizeof(InboxSub));
		is->sub = palloc(sizeof(InboxSubscription));
		is->sub->name = pstrdup(sub->name);
		is->sub->topic = pstrdup(sub->topic);
		is->sub->handler = sub->handler;
		is->sub->owner = sub->owner;
		is->sub->max_attempts = sub->max_attempts;
		is->sub->hold = sub->hold;
		is->sub->hold_key = sub->hold_key;
		is->sub->dead_letter_topic = sub->dead_letter_topic ?
			pstrdup(sub->dead_letter_topic) : NULL;
		is->sub->signature = pstrdup(sub->signature);
		kept = lappend(kept, is);
		MemoryContextSwitchTo(old);
	}
	{
		MemoryContext old = MemoryContextSwitchTo(inbox.subs_cxt);

		inbox.subs = list_copy(kept);
		MemoryContextSwitchTo(old);
	}
	inbox_dedupe_rotate(outbox_inbox_dedupe_window_s);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(loop_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * position_of: is's position of partition, added (unknown: -1) if new.
 */
static InboxPosition *
position_of(InboxSub *is, int32 partition)
{
	ListCell   *lc;
	InboxPosition *pos;
	MemoryContext old;

	foreach(lc, is->positions)
	{
		pos = (InboxPosition *) lfirst(lc);
		if (pos->partition == partition)
			return pos;
	}
	old = MemoryContextSwitchTo(inbox.subs_cxt);
	pos = palloc0(sizeof(InboxPosition));
	pos->partition = partition;
	pos->next_offset = -1;
	is->positions = lappend(is->positions, pos);
	MemoryContextSwitchTo(old);
	return pos;
}

/*
 * assign: create is's consumer and assign it every partition of the topic
 * at the stored offsets (the beginning where none is stored).  A message
 * that failed before waits out its back-off first.  On failure (brokers
 * down, unknown topic) says so and leaves the consumer out; the next pass
 * tries again.  Returns false if the consumer cannot even be built from
 * the settings.
 */
static bool
assign(InboxSub *is)
{
	char		errbuf[512];
	char	   *group = psprintf("outbox_kafka.%s.%s", inbox.dbname, is->sub->name);
	List	   *stored;
	int32	   *partitions = NULL;
	int64	   *offsets;
	int			n;
	int			i;
	MemoryContext loop_cxt = CurrentMemoryContext;

	is->consumer = inbox_consumer_create(group, is->sub->topic,
										 inbox.pipe_fds[1], errbuf, sizeof(errbuf));
	if (is->consumer == NULL)
	{
		enter_state(INBOX_STATE_MISCONFIGURED, WARNING,
					psprintf("cannot consume topic \"%s\": %s", is->sub->topic, errbuf));
		return false;
	}
	n = inbox_consumer_partitions(is->consumer, INBOX_METADATA_MS, &partitions,
								  errbuf, sizeof(errbuf));
	if (n <= 0)
	{
		inbox_slot_set_error(inbox.slot,
							 psprintf("subscription \"%s\": %s", is->sub->name,
									  n < 0 ? errbuf : "the topic has no partitions"));
		inbox_consumer_destroy(is->consumer);
		is->consumer = NULL;
		return true;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(inbox.subs_cxt);
	stored = inbox_storage_positions(is->sub->name);
	PopActiveSnapshot();
	CommitTransactionCommand();

	MemoryContextSwitchTo(inbox.subs_cxt);
	is->positions = stored;
	is->npartitions = n;
	is->partitions = palloc(sizeof(int32) * n);
	memcpy(is->partitions, partitions, sizeof(int32) * n);
	is->retry_at = palloc0(sizeof(TimestampTz) * n);
	is->failures = palloc0(sizeof(int) * n);
	MemoryContextSwitchTo(loop_cxt);
	offsets = palloc(sizeof(int64) * n);
	for (i = 0; i < n; i++)
	{
		InboxPosition *pos = position_of(is, partitions[i]);

		offsets[i] = pos->next_offset;
		if (pos->attempts > 0)
			is->retry_at[i] = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														  inbox_backoff_delay(pos->attempts));
	}
	inbox_consumer_assign(is->consumer, n, partitions, offsets);
	for (i = 0; i < n; i++)
		if (is->retry_at[i] != 0)
			inbox_consumer_pause(is->consumer, partitions[i]);
	ereport(LOG,
			(errmsg("outbox_kafka inbox: subscription \"%s\" consumes %d partitions of topic \"%s\"",
					is->sub->name, n, is->sub->topic)));
	return true;
}

/*
 * resume_due: resume the paused partitions of is whose back-off is over,
 * at their stored offset; lowers *wait_ms to the next one due.
 */
static void
resume_due(InboxSub *is, TimestampTz now, long *wait_ms)
{
	int			i;

	for (i = 0; i < is->npartitions; i++)
	{
		if (is->retry_at[i] == 0)
			continue;
		if (now >= is->retry_at[i])
		{
			InboxPosition *pos = position_of(is, is->partitions[i]);

			is->retry_at[i] = 0;
			inbox_consumer_resume_at(is->consumer, is->partitions[i],
									 pos->next_offset);
		}
		else
		{
			/* not in Min()/Max(): they would evaluate it twice */
			long		left = outbox_ms_until(is->retry_at[i]);

			*wait_ms = Min(*wait_ms, Max(left, 1));
		}
	}
}

/*
 * consume: apply what is's consumer has ready, as one transaction; pause
 * partitions that stopped at a failed message.  Returns whether anything
 * was applied (more may be ready).
 */
static bool
consume(InboxSub *is)
{
	InboxMessage *messages = palloc(sizeof(InboxMessage) * outbox_inbox_batch_size);
	char		errbuf[512];
	int			n;
	List	   *results;
	ListCell   *lc;
	int32	   *commit_partitions;
	int64	   *commit_offsets;
	int			ncommit = 0;
	int			kept;
	int			i;
	TimestampTz now;

	n = inbox_consumer_poll(is->consumer, messages, outbox_inbox_batch_size);
	if (inbox_consumer_take_error(is->consumer, errbuf, sizeof(errbuf)))
		inbox_slot_set_error(inbox.slot, psprintf("subscription \"%s\": %s",
												  is->sub->name, errbuf));

	/*
	 * Drop messages of paused partitions: pausing need not purge what was
	 * fetched before (seeking, at resume, does), and a message after a
	 * failed one must not be applied before it.
	 */
	kept = 0;
	for (i = 0; i < n; i++)
	{
		int			j;
		bool		paused = false;

		for (j = 0; j < is->npartitions; j++)
			if (is->partitions[j] == messages[i].partition && is->retry_at[j] != 0)
				paused = true;
		if (!paused)
			messages[kept++] = messages[i];
	}
	n = kept;
	if (n == 0)
		return false;

	results = inbox_apply_batch(is->sub, is->positions, messages, n);
	now = GetCurrentTimestamp();
	commit_partitions = palloc(sizeof(int32) * list_length(results));
	commit_offsets = palloc(sizeof(int64) * list_length(results));
	foreach(lc, results)
	{
		InboxPartitionResult *r = (InboxPartitionResult *) lfirst(lc);
		InboxPosition *pos = position_of(is, r->partition);

		pos->next_offset = r->next_offset;
		pos->attempts = r->attempts;
		if (r->next_offset >= 0)
		{
			commit_partitions[ncommit] = r->partition;
			commit_offsets[ncommit++] = r->next_offset;
		}
		for (i = 0; i < is->npartitions; i++)
		{
			if (is->partitions[i] != r->partition)
				continue;
			if (!r->stopped)
			{
				is->failures[i] = 0;
				break;
			}
			is->failures[i]++;
			is->retry_at[i] = TimestampTzPlusMilliseconds(now,
														  inbox_backoff_delay(Max(r->attempts, is->failures[i])));
			inbox_consumer_pause(is->consumer, r->partition);
		}
	}
	inbox_consumer_commit(is->consumer, ncommit, commit_partitions, commit_offsets);
	return true;
}

/*
 * publish_watermarks: the high watermarks of every consumed partition,
 * for outbox.inbox_status.
 */
static void
publish_watermarks(void)
{
	List	   *marks = NIL;
	ListCell   *lc;

	foreach(lc, inbox.subs)
	{
		InboxSub   *is = (InboxSub *) lfirst(lc);
		int			i;

		if (is->consumer == NULL)
			continue;
		for (i = 0; i < is->npartitions; i++)
		{
			InboxWatermark *wm = palloc0(sizeof(InboxWatermark));

			strlcpy(wm->subscription, is->sub->name, INBOX_NAME_LEN);
			wm->partition = is->partitions[i];
			wm->high = inbox_consumer_high_watermark(is->consumer, is->partitions[i]);
			marks = lappend(marks, wm);
		}
	}
	inbox_slot_set_watermarks(inbox.slot, marks);
}

/*
 * resolve_rewinds: turn the rewinds by timestamp of is (outbox.inbox_rewind
 * with a timestamp) into stored offsets: ask the cluster for the offset of
 * each partition's first message at or after the time, store it
 * compare-and-set on the offset consumed from, forget the request, and
 * drop the consumer so that the next pass assigns it at the new offsets.
 * If the cluster cannot say, the request stays and is tried at the next
 * refresh.
 */
static void
resolve_rewinds(InboxSub *is)
{
	MemoryContext loop_cxt = CurrentMemoryContext;
	List	   *requests;
	ListCell   *lc;
	int64	  **offsets;
	int			i;
	char		errbuf[512];

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(loop_cxt);
	requests = inbox_storage_rewind_requests(is->sub->name);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(loop_cxt);
	if (requests == NIL)
		return;

	/* ask first, outside any transaction: it may take a while */
	offsets = palloc0(sizeof(int64 *) * list_length(requests));
	i = 0;
	foreach(lc, requests)
	{
		InboxRewindRequest *req = (InboxRewindRequest *) lfirst(lc);
		int64		at_ms = (req->at + ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
										USECS_PER_DAY)) / 1000;

		offsets[i] = palloc(sizeof(int64) * is->npartitions);
		if (req->partition >= 0)
		{
			int			j;
			bool		known = false;

			for (j = 0; j < is->npartitions; j++)
				known = known || is->partitions[j] == req->partition;
			if (!known)
			{
				inbox_slot_set_error(inbox.slot,
									 psprintf("subscription \"%s\": cannot rewind partition %d: the topic has no such partition",
											  is->sub->name, req->partition));
				pfree(offsets[i]);
				offsets[i++] = NULL;
				continue;
			}
		}
		if (!inbox_consumer_offsets_for_times(is->consumer, is->npartitions,
											  is->partitions, at_ms, INBOX_METADATA_MS,
											  offsets[i], errbuf, sizeof(errbuf)))
		{
			inbox_slot_set_error(inbox.slot,
								 psprintf("subscription \"%s\": cannot rewind by timestamp yet: %s",
										  is->sub->name, errbuf));
			return;
		}
		i++;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "rewinding an inbox subscription");
	i = 0;
	foreach(lc, requests)
	{
		InboxRewindRequest *req = (InboxRewindRequest *) lfirst(lc);
		int			j;

		for (j = 0; offsets[i] != NULL && j < is->npartitions; j++)
		{
			if (req->partition >= 0 && req->partition != is->partitions[j])
				continue;
			inbox_storage_rewind_partition(is->sub->name, is->partitions[j],
										   position_of(is, is->partitions[j])->next_offset,
										   offsets[i][j]);
			position_of(is, is->partitions[j])->next_offset = offsets[i][j];
			ereport(LOG,
					(errmsg("outbox_kafka inbox: subscription \"%s\" rewinds partition %d to offset " INT64_FORMAT ", its first message at or after %s",
							is->sub->name, is->partitions[j], offsets[i][j],
							timestamptz_to_str(req->at))));
		}
		inbox_storage_rewind_done(is->sub->name, req);
		i++;
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(loop_cxt);

	inbox_consumer_destroy(is->consumer);
	is->consumer = NULL;
}

/*
 * settings_signature: the settings the consumers are built from (the
 * producer's connection settings and outbox_kafka.consumer_properties),
 * to notice a change on reload.
 */
static char *
settings_signature(void)
{
	return psprintf("%s|%s", outbox_producer_settings_signature(),
					outbox_consumer_properties ? outbox_consumer_properties : "");
}

/*
 * inbox_step: one pass of the loop.  Returns how long to sleep before the
 * next (0: go on at once).
 */
static long
inbox_step(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		wait_ms = INBOX_REFRESH_MS;
	bool		busy = false;
	bool		misconfigured = false;
	bool		refreshed = false;
	ListCell   *lc;

	if (RecoveryInProgress())
	{
		drop_consumers();
		enter_state(INBOX_STATE_STANDBY, LOG,
					"the server is a standby: the inbox waits for promotion");
		return INBOX_REFRESH_MS;
	}
	if (now >= inbox.next_refresh)
	{
		refresh();
		inbox.next_refresh = TimestampTzPlusMilliseconds(now, INBOX_REFRESH_MS);
		publish_watermarks();
		refreshed = true;
	}
	if (!inbox.ready)
		return INBOX_REFRESH_MS;

	foreach(lc, inbox.subs)
	{
		InboxSub   *is = (InboxSub *) lfirst(lc);

		if (is->sub->hold_key && now >= is->held_due)
		{
			long		held_ms = inbox_held_retry(is->sub);

			is->held_due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), held_ms);
		}
		if (is->sub->hold_key)
		{
			long		held_wait = outbox_ms_until(is->held_due);

			wait_ms = Min(wait_ms, Max(held_wait, 1));
		}
		if (is->consumer == NULL && !assign(is))
			misconfigured = true;
		if (is->consumer == NULL)
			continue;
		if (refreshed)
		{
			resolve_rewinds(is);
			if (is->consumer == NULL)
				continue;
		}
		resume_due(is, now, &wait_ms);
		if (consume(is))
			busy = true;
		else
		{
			/* idle: the offsets kept for Kafka go out when due */
			long		commit_ms = inbox_consumer_commit_due(is->consumer);

			if (commit_ms > 0 && commit_ms < wait_ms)
				wait_ms = commit_ms;
		}
	}
	if (busy)
	{
		publish_watermarks();
		/* a pass without error: the back-off starts over */
		inbox.backoff_ms = 0;
	}
	if (!misconfigured)
		enter_state(inbox.subs == NIL ? INBOX_STATE_IDLE : INBOX_STATE_CONSUMING,
					LOG, NULL);
	if (busy)
		return 0;
	{
		/* not in Min()/Max(): they would evaluate it twice */
		long		refresh_ms = outbox_ms_until(inbox.next_refresh);

		return Min(wait_ms, Max(refresh_ms, 1));
	}
}

/*
 * drain_pipe: empty the wake-up pipe (non-blocking).
 */
static void
drain_pipe(void)
{
	char		buf[64];

	while (read(inbox.pipe_fds[0], buf, sizeof(buf)) > 0)
		;
}

/*
 * wait_for_work: sleep up to timeout_ms on the latch, the consumers'
 * pipe and postmaster death.
 */
static void
wait_for_work(long timeout_ms)
{
	WaitEvent	event;

	if (inbox.wait_set == NULL)
	{
		inbox.wait_set = outbox_create_wait_event_set(3);
		AddWaitEventToSet(inbox.wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(inbox.wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		AddWaitEventToSet(inbox.wait_set, WL_SOCKET_READABLE, inbox.pipe_fds[0], NULL, NULL);
	}
	if (WaitEventSetWait(inbox.wait_set, timeout_ms, &event, 1, PG_WAIT_EXTENSION) > 0)
	{
		if (event.events & WL_LATCH_SET)
			ResetLatch(MyLatch);
		if (event.events & WL_SOCKET_READABLE)
			drain_pipe();
	}
}

/*
 * recover_from_error: after an ERROR escaped a pass: report it, abort the
 * transaction, drop the consumers and try again from the stored offsets
 * after a back-off.
 */
static void
recover_from_error(void)
{
	ErrorData  *edata = outbox_abort_failed_step();

	inbox_apply_forget_plans();
	drop_consumers();
	inbox.ready = false;
	inbox.next_refresh = 0;
	inbox.retry_at = outbox_backoff_schedule(&inbox.backoff_ms, INBOX_BACKOFF_MIN_MS * 10,
											 INBOX_BACKOFF_MAX_MS);
	enter_state(INBOX_STATE_BACKING_OFF, WARNING,
				outbox_failed_step_message(edata, inbox.backoff_ms));
	FreeErrorData(edata);
}

/*
 * outbox_inbox_worker_main: entry point of an inbox worker; main_arg is
 * the OID of its database.
 */
void
outbox_inbox_worker_main(Datum main_arg)
{
	sigjmp_buf	local_sigjmp_buf;
	MemoryContext loop_cxt;

	memset(&inbox, 0, sizeof(inbox));
	inbox.dboid = DatumGetObjectId(main_arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	inbox.slot = inbox_claim_slot(inbox.dboid);
	if (inbox.slot == NULL)
	{
		ereport(LOG,
				(errmsg("outbox_kafka inbox worker exits: database %u already has one",
						inbox.dboid)));
		proc_exit(0);
	}
	before_shmem_exit(release_slot, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(inbox.dboid, InvalidOid, 0);
	pin_settings();
	if (pipe(inbox.pipe_fds) != 0 ||
		fcntl(inbox.pipe_fds[0], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(inbox.pipe_fds[1], F_SETFL, O_NONBLOCK) != 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create the inbox worker's wake-up pipe: %m")));

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "outbox_kafka inbox loop",
									 ALLOCSET_DEFAULT_SIZES);
	inbox.subs_cxt = AllocSetContextCreate(TopMemoryContext, "outbox_kafka inbox subscriptions",
										   ALLOCSET_DEFAULT_SIZES);
	inbox.settings = MemoryContextStrdup(TopMemoryContext, settings_signature());

	StartTransactionCommand();
	inbox.dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(inbox.dboid));
	/* key: ('i','b') */
	outbox_guard_database(0x6962, 0x786f, "inbox worker", inbox.dbname);
	CommitTransactionCommand();
	pgstat_report_appname("outbox_kafka inbox");
	ereport(LOG,
			(errmsg("outbox_kafka inbox worker started for database \"%s\" (librdkafka %s)",
					inbox.dbname, outbox_librdkafka_version())));

	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		recover_from_error();
		if (inbox.stopping)
			proc_exit(1);
	}
	PG_exception_stack = &local_sigjmp_buf;

	while (!ShutdownRequestPending)
	{
		long		wait_ms;

		MemoryContextSwitchTo(loop_cxt);
		MemoryContextReset(loop_cxt);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			char	   *settings;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			settings = settings_signature();
			if (strcmp(settings, inbox.settings) != 0)
			{
				/* new servers or credentials: new consumers */
				drop_consumers();
				pfree(inbox.settings);
				inbox.settings = MemoryContextStrdup(TopMemoryContext, settings);
			}
			inbox.next_refresh = 0;
			inbox.retry_at = 0;
		}
		if (inbox.retry_at != 0 && GetCurrentTimestamp() < inbox.retry_at)
			wait_ms = outbox_ms_until(inbox.retry_at);
		else
		{
			inbox.retry_at = 0;
			wait_ms = inbox_step();
		}
		if (wait_ms > 0 && !ShutdownRequestPending)
			wait_for_work(wait_ms);
	}

	inbox.stopping = true;
	drop_consumers();
	ereport(LOG,
			(errmsg("outbox_kafka inbox worker for database \"%s\" stopped", inbox.dbname)));
	proc_exit(0);
}
