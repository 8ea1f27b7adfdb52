/*
 * Test helpers for the inbox variant of billing (db/inbox.sql): subscribe
 * it where the topic ends now, wait until it applied everything, read its
 * counters from outbox.inbox_status.
 */
import { Kafka } from 'kafkajs';
import { Pool } from 'pg';
import { sqlFile } from './db';
import { Offsets, topicEnd, waitFor } from './kafka';

/** The subscription of db/inbox-subscribe.sql. */
export const INBOX_SUBSCRIPTION = 'billing';

/**
 * Subscribe the inbox variant (db/inbox-subscribe.sql) and place it at
 * `offsets`, in one transaction: the inbox worker reads subscriptions only
 * as committed, so it never sees the subscription at the topic's beginning.
 */
export async function subscribeInboxAt(
  pool: Pool,
  offsets: Offsets,
): Promise<void> {
  const db = await pool.connect();
  try {
    await db.query('BEGIN');
    await db.query(sqlFile('inbox-subscribe.sql'));
    await rewind(db, offsets);
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK');
    throw err;
  } finally {
    db.release();
  }
}

/** Make the inbox consume each partition again from `offsets`. */
export async function rewind(
  db: Pick<Pool, 'query'>,
  offsets: Offsets,
): Promise<void> {
  for (const [partition, offset] of offsets)
    await db.query('SELECT outbox.inbox_rewind($1, $2, $3)', [
      INBOX_SUBSCRIPTION,
      partition,
      offset.toString(),
    ]);
}

/** Wait until the inbox stored, for every partition of `topic`, an offset at its end. */
export async function waitUntilInboxApplied(
  pool: Pool,
  kafka: Kafka,
  topic: string,
): Promise<void> {
  const end = await topicEnd(kafka, topic);
  await waitFor('the inbox to apply every message', async () => {
    const r = await pool.query<{ partition: number; next_offset: string }>(
      'SELECT "partition", next_offset FROM outbox.inbox_offset WHERE subscription = $1',
      [INBOX_SUBSCRIPTION],
    );
    const stored = new Map(
      r.rows.map((row) => [row.partition, BigInt(row.next_offset)]),
    );
    return [...end].every(([p, high]) => (stored.get(p) ?? -1n) >= high);
  });
}

export interface InboxTotals {
  applied: number;
  duplicates: number;
  deadLetters: number;
}

/** outbox.inbox_status of the subscription, summed over its partitions. */
export async function inboxTotals(pool: Pool): Promise<InboxTotals> {
  const r = await pool.query<InboxTotals>(
    `SELECT coalesce(sum(applied), 0)::int AS "applied",
            coalesce(sum(duplicates), 0)::int AS "duplicates",
            coalesce(sum(dead_letters), 0)::int AS "deadLetters"
       FROM outbox.inbox_status WHERE subscription = $1`,
    [INBOX_SUBSCRIPTION],
  );
  return r.rows[0];
}
