import { Injectable } from '@nestjs/common';
import { OutboxEvent } from './outbox-event';
import { OutboxTransaction, queryRows } from './outbox.executor';

/**
 * The one statement every enqueue runs.  Every parameter is cast:
 * outbox.enqueue has a jsonb, a text and a bytea variant, and with untyped
 * parameters ($2 instead of $2::jsonb) PostgreSQL picks the TEXT one - the
 * event is then published without "content-type: application/json" and
 * consumers that look at the content type treat it as opaque text.
 */
export const ENQUEUE_SQL =
  'SELECT outbox.enqueue($1::text, $2::jsonb, key => $3::text, headers => $4::jsonb) AS id';

@Injectable()
export class OutboxService {
  /**
   * Store `event` in the caller's transaction `tx`; the outbox_kafka relay
   * publishes it after COMMIT, and never if the transaction rolls back.
   * Returns the event's outbox-id (a bigint, as a decimal string).
   *
   * `tx` is a pg PoolClient inside BEGIN/COMMIT, a TypeORM EntityManager or
   * QueryRunner inside a transaction, or a Kysely Transaction.
   */
  async enqueue<P>(
    tx: OutboxTransaction,
    event: OutboxEvent<P>,
  ): Promise<string> {
    const headers = Object.fromEntries(
      Object.entries(event.headers ?? {}).filter(([, v]) => v !== undefined),
    );
    const rows = await queryRows(tx, ENQUEUE_SQL, [
      event.topic,
      event.payload === null ? null : JSON.stringify(event.payload),
      event.key ?? null,
      Object.keys(headers).length > 0 ? JSON.stringify(headers) : null,
    ]);
    return String(rows[0].id);
  }
}
