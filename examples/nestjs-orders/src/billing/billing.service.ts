import { Inject, Injectable, Logger } from '@nestjs/common';
import { Pool, PoolClient } from 'pg';
import { appConfig } from '../config/app.config';
import type { AppConfig } from '../config/app.config';
import { BILLING_POOL } from '../database/database.module';
import { inTransaction } from '../database/transaction';
import { OrderCreatedEvent } from '../orders/order-created.event';
import { BusinessRuleError, RetryLater } from './billing.errors';
import { DeadLetterPublisher } from './dead-letter.publisher';
import { EventIdentity, eventIdentity, HeaderValue } from './event-identity';
import { parseOrderMessage } from './order-event.parser';

/** One Kafka message, as billing needs it. */
export interface IncomingMessage {
  topic: string;
  partition: number;
  offset: string;
  /** the key's bytes as they arrived; null for none */
  key: Buffer | null;
  /** raw bytes of the value; null for a tombstone */
  value: Buffer | null;
  /** header values as they arrived */
  headers: Record<string, HeaderValue>;
}

export type Outcome =
  | 'charged'
  /** the order was charged before under another event id (a requeued dead letter) */
  | 'already_charged'
  /** this event was processed before: a redelivery, nothing done */
  | 'duplicate'
  | 'tombstone'
  | 'ignored'
  | 'dead_lettered';

@Injectable()
export class BillingService {
  private readonly logger = new Logger(BillingService.name);
  private warnedFallback = false;
  /** failed attempts of messages waiting for their next one, by topic/partition/offset */
  private readonly attempts = new Map<string, number>();
  /** how many messages ended how, since start (for logs and tests) */
  readonly counts: Record<Outcome, number> = {
    charged: 0,
    already_charged: 0,
    duplicate: 0,
    tombstone: 0,
    ignored: 0,
    dead_lettered: 0,
  };

  constructor(
    @Inject(BILLING_POOL) private readonly pool: Pool,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly deadLetters: DeadLetterPublisher,
  ) {}

  /**
   * Process one message of "order.created" and say how it ended.  Returns
   * only when the outcome is durable (in PostgreSQL, or in the dead-letter
   * topic): the caller may then commit the offset.  Throws for failures that
   * are not the message's fault, so that it is delivered again, and
   * RetryLater when a business rule failed and the message has attempts
   * left.
   */
  async handle(msg: IncomingMessage): Promise<Outcome> {
    const outcome = await this.process(msg);
    this.counts[outcome]++;
    return outcome;
  }

  private async process(msg: IncomingMessage): Promise<Outcome> {
    // The event's identity is what makes a redelivery recognisable
    // (event-identity.ts).  Without one we cannot de-duplicate safely.
    const identity = eventIdentity(msg.headers, this.config.billingEventSource);
    if (identity === undefined) {
      await this.deadLetters.publish(
        msg,
        'missing-event-id',
        'no valid "outbox-event-id" or "outbox-id" header',
        1,
      );
      return 'dead_lettered';
    }
    if (identity.fallback && !this.warnedFallback) {
      this.warnedFallback = true;
      this.logger.warn(
        `${msg.topic} ${msg.partition}/${msg.offset} has no "outbox-event-id" header: de-duplicating on "outbox-id", ` +
          'which can repeat after DROP/CREATE EXTENSION, a restore or a failover (then new events would be skipped). ' +
          'Upgrade outbox_kafka. (Said once.)',
      );
    }

    const parsed = parseOrderMessage(msg.value, msg.key?.toString() ?? null);
    switch (parsed.kind) {
      case 'tombstone':
        // The order's key was deleted upstream (e.g. personal data erased
        // and the topic compacted).  Billing keeps its records: nothing to
        // charge, nothing to undo.  Recorded so the order of events per
        // order can be audited.
        return (await this.record(identity, msg, 'tombstone'))
          ? 'tombstone'
          : 'duplicate';

      case 'unknown-type':
        // A newer producer may add event types before this consumer knows
        // them: skip them (tolerant reader) instead of blocking the
        // partition or flooding the dead-letter topic, but leave a trace.
        this.logger.warn(
          `skipping event of unknown type "${parsed.type}" (event ${identity.eventId}, offset ${msg.partition}/${msg.offset})`,
        );
        return (await this.record(identity, msg, 'ignored'))
          ? 'ignored'
          : 'duplicate';

      case 'invalid':
        // Poison: no retry can fix it.  Unless a previous delivery already
        // moved it to the dead-letter topic, move it now.
        if (await this.alreadyProcessed(identity)) return 'duplicate';
        return this.deadLetter(
          identity,
          msg,
          'invalid-payload',
          parsed.error,
          1,
        );

      case 'order.created':
        return this.chargeOrRetry(identity, msg, parsed.event);
    }
  }

  /**
   * Charge the order.  A business rule failure is tried again
   * billingMaxAttempts times in all, with a pause that doubles each time,
   * then dead-lettered.  The pause is not slept here: RetryLater asks the
   * controller to pause this partition only and deliver the message again.
   */
  private async chargeOrRetry(
    identity: EventIdentity,
    msg: IncomingMessage,
    event: OrderCreatedEvent,
  ): Promise<Outcome> {
    const { billingMaxAttempts: max, billingRetryBackoffMs: backoff } =
      this.config;
    const where = `${msg.topic}/${msg.partition}/${msg.offset}`;
    try {
      const outcome = await this.charge(identity, msg, event);
      this.attempts.delete(where);
      return outcome;
    } catch (err) {
      if (!(err instanceof BusinessRuleError)) throw err;
      const attempt = (this.attempts.get(where) ?? 0) + 1;
      if (attempt >= max) {
        this.attempts.delete(where);
        if (await this.alreadyProcessed(identity)) return 'duplicate';
        return this.deadLetter(
          identity,
          msg,
          'business-rule',
          err.message,
          attempt,
        );
      }
      this.attempts.set(where, attempt);
      this.logger.warn(
        `order ${event.orderId}: ${err.message}; attempt ${attempt} of ${max}`,
      );
      throw new RetryLater(backoff * 2 ** (attempt - 1), err.message);
    }
  }

  /**
   * The de-duplicating transaction: the processed_events row and the
   * charges row commit together or not at all.  A redelivered message finds
   * its event id taken and changes nothing.
   */
  private async charge(
    identity: EventIdentity,
    msg: IncomingMessage,
    event: OrderCreatedEvent,
  ): Promise<Outcome> {
    return inTransaction(this.pool, async (db) => {
      // Taken first: a concurrent delivery of the same message (after a
      // rebalance) waits here for our commit, then finds the row.
      if (!(await this.insertProcessed(db, identity, msg, 'charged')))
        return 'duplicate';

      const account = await db.query<{ status: string }>(
        'SELECT status FROM billing.accounts WHERE customer_id = $1',
        [event.customerId],
      );
      if (account.rowCount === 0) {
        throw new BusinessRuleError(
          `customer ${event.customerId} has no billing account`,
        );
      }
      if (account.rows[0].status !== 'active') {
        throw new BusinessRuleError(
          `billing account of customer ${event.customerId} is ${account.rows[0].status}`,
        );
      }
      const charged = await db.query(
        `INSERT INTO billing.charges (order_id, customer_id, amount_cents, currency, event_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (order_id) DO NOTHING`,
        [
          event.orderId,
          event.customerId,
          event.totalCents,
          event.currency,
          identity.eventId,
        ],
      );
      if (charged.rowCount === 0) {
        await db.query(
          "UPDATE billing.processed_events SET outcome = 'already_charged' WHERE source = $1 AND event_id = $2",
          [identity.source, identity.eventId],
        );
        return 'already_charged';
      }
      return 'charged';
    });
  }

  private async deadLetter(
    identity: EventIdentity,
    msg: IncomingMessage,
    reason: string,
    error: string,
    attempts: number,
  ): Promise<Outcome> {
    await this.deadLetters.publish(msg, reason, error, attempts);
    // After the send: if we crash in between, the message is dead-lettered
    // twice (with the same event id), never lost.
    await this.record(identity, msg, 'dead_lettered');
    return 'dead_lettered';
  }

  /** Record a message that needs no business write; false if seen before. */
  private async record(
    identity: EventIdentity,
    msg: IncomingMessage,
    outcome: Outcome,
  ): Promise<boolean> {
    return inTransaction(this.pool, (db) =>
      this.insertProcessed(db, identity, msg, outcome),
    );
  }

  private async insertProcessed(
    db: PoolClient,
    identity: EventIdentity,
    msg: IncomingMessage,
    outcome: Outcome,
  ): Promise<boolean> {
    const r = await db.query(
      `INSERT INTO billing.processed_events (source, event_id, outbox_id, topic, kafka_partition, kafka_offset, event_key, outcome)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (source, event_id) DO NOTHING`,
      [
        identity.source,
        identity.eventId,
        identity.outboxId,
        msg.topic,
        msg.partition,
        msg.offset,
        msg.key?.toString() ?? null,
        outcome,
      ],
    );
    return r.rowCount === 1;
  }

  private async alreadyProcessed(identity: EventIdentity): Promise<boolean> {
    const r = await this.pool.query(
      'SELECT 1 FROM billing.processed_events WHERE source = $1 AND event_id = $2',
      [identity.source, identity.eventId],
    );
    return r.rowCount === 1;
  }
}
