import { Inject, Injectable, Logger } from '@nestjs/common';
import { Pool, PoolClient } from 'pg';
import { AppConfig, loadConfig } from '../config';
import { BILLING_POOL } from '../database/database.module';
import { inTransaction } from '../database/transaction';
import { OrderCreatedEvent } from '../orders/order-created.event';
import { BusinessRuleError } from './billing.errors';
import { DeadLetterPublisher } from './dead-letter.publisher';
import { parseOrderMessage } from './order-event.parser';

/** One Kafka message, as billing needs it. */
export interface IncomingMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** raw bytes of the value; null for a tombstone */
  value: Buffer | null;
  headers: Record<string, string>;
}

export type Outcome =
  | 'charged'
  /** the order was charged before under another outbox-id (a requeued dead letter) */
  | 'already_charged'
  /** this outbox-id was processed before: a redelivery, nothing done */
  | 'duplicate'
  | 'tombstone'
  | 'ignored'
  | 'dead_lettered';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

@Injectable()
export class BillingService {
  private readonly logger = new Logger(BillingService.name);
  private readonly config: AppConfig = loadConfig();
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
    private readonly deadLetters: DeadLetterPublisher,
  ) {}

  /**
   * Process one message of "order.created" and say how it ended.  Returns
   * only when the outcome is durable (in PostgreSQL, or in the dead-letter
   * topic): the caller may then commit the offset.  Throws for failures that
   * are not the message's fault, so that it is delivered again.
   *
   * `heartbeat` keeps the consumer in its group while retries wait.
   */
  async handle(
    msg: IncomingMessage,
    heartbeat: () => Promise<void>,
  ): Promise<Outcome> {
    const outcome = await this.process(msg, heartbeat);
    this.counts[outcome]++;
    return outcome;
  }

  private async process(
    msg: IncomingMessage,
    heartbeat: () => Promise<void>,
  ): Promise<Outcome> {
    // outbox_kafka puts "outbox-id" on every message; it is what makes a
    // redelivery recognisable.  Without it we cannot de-duplicate safely.
    const idText = msg.headers['outbox-id'];
    if (idText === undefined || !/^\d{1,19}$/.test(idText)) {
      await this.deadLetters.publish(
        msg,
        'missing-outbox-id',
        'no valid "outbox-id" header',
        1,
      );
      return 'dead_lettered';
    }
    const outboxId = idText;

    const parsed = parseOrderMessage(msg.value, msg.key);
    switch (parsed.kind) {
      case 'tombstone':
        // The order's key was deleted upstream (e.g. personal data erased
        // and the topic compacted).  Billing keeps its records: nothing to
        // charge, nothing to undo.  Recorded so the order of events per
        // order can be audited.
        return (await this.record(outboxId, msg, 'tombstone'))
          ? 'tombstone'
          : 'duplicate';

      case 'unknown-type':
        // A newer producer may add event types before this consumer knows
        // them: skip them (tolerant reader) instead of blocking the
        // partition or flooding the dead-letter topic, but leave a trace.
        this.logger.warn(
          `skipping event of unknown type "${parsed.type}" (outbox-id ${outboxId}, offset ${msg.partition}/${msg.offset})`,
        );
        return (await this.record(outboxId, msg, 'ignored'))
          ? 'ignored'
          : 'duplicate';

      case 'invalid':
        // Poison: no retry can fix it.  Unless a previous delivery already
        // moved it to the dead-letter topic, move it now.
        if (await this.alreadyProcessed(outboxId)) return 'duplicate';
        return this.deadLetter(
          outboxId,
          msg,
          'invalid-payload',
          parsed.error,
          1,
        );

      case 'order.created':
        return this.chargeWithRetries(outboxId, msg, parsed.event, heartbeat);
    }
  }

  /**
   * Charge the order, retrying a business rule failure up to
   * billingMaxAttempts times with a growing pause, then dead-letter it.
   */
  private async chargeWithRetries(
    outboxId: string,
    msg: IncomingMessage,
    event: OrderCreatedEvent,
    heartbeat: () => Promise<void>,
  ): Promise<Outcome> {
    const { billingMaxAttempts: max, billingRetryBackoffMs: backoff } =
      this.config;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.charge(outboxId, msg, event);
      } catch (err) {
        if (!(err instanceof BusinessRuleError)) throw err;
        if (attempt >= max) {
          if (await this.alreadyProcessed(outboxId)) return 'duplicate';
          return this.deadLetter(
            outboxId,
            msg,
            'business-rule',
            err.message,
            attempt,
          );
        }
        this.logger.warn(
          `order ${event.orderId}: ${err.message}; attempt ${attempt} of ${max}`,
        );
        await sleep(backoff * 2 ** (attempt - 1));
        await heartbeat();
      }
    }
  }

  /**
   * The de-duplicating transaction: the processed_events row and the
   * charges row commit together or not at all.  A redelivered message finds
   * its outbox-id taken and changes nothing.
   */
  private async charge(
    outboxId: string,
    msg: IncomingMessage,
    event: OrderCreatedEvent,
  ): Promise<Outcome> {
    return inTransaction(this.pool, async (db) => {
      // Taken first: a concurrent delivery of the same message (after a
      // rebalance) waits here for our commit, then finds the row.
      if (!(await this.insertProcessed(db, outboxId, msg, 'charged')))
        return 'duplicate';

      const account = await db.query<{ status: string }>(
        'SELECT status FROM billing.accounts WHERE customer_id = $1 FOR SHARE',
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
        `INSERT INTO billing.charges (order_id, customer_id, amount_cents, currency, outbox_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (order_id) DO NOTHING`,
        [
          event.orderId,
          event.customerId,
          event.totalCents,
          event.currency,
          outboxId,
        ],
      );
      if (charged.rowCount === 0) {
        await db.query(
          "UPDATE billing.processed_events SET outcome = 'already_charged' WHERE outbox_id = $1",
          [outboxId],
        );
        return 'already_charged';
      }
      return 'charged';
    });
  }

  private async deadLetter(
    outboxId: string,
    msg: IncomingMessage,
    reason: string,
    error: string,
    attempts: number,
  ): Promise<Outcome> {
    await this.deadLetters.publish(msg, reason, error, attempts);
    // After the send: if we crash in between, the message is dead-lettered
    // twice (with the same outbox-id), never lost.
    await this.record(outboxId, msg, 'dead_lettered');
    return 'dead_lettered';
  }

  /** Record a message that needs no business write; false if seen before. */
  private async record(
    outboxId: string,
    msg: IncomingMessage,
    outcome: Outcome,
  ): Promise<boolean> {
    return inTransaction(this.pool, (db) =>
      this.insertProcessed(db, outboxId, msg, outcome),
    );
  }

  private async insertProcessed(
    db: PoolClient,
    outboxId: string,
    msg: IncomingMessage,
    outcome: Outcome,
  ): Promise<boolean> {
    const r = await db.query(
      `INSERT INTO billing.processed_events (outbox_id, topic, kafka_partition, kafka_offset, event_key, outcome)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (outbox_id) DO NOTHING`,
      [outboxId, msg.topic, msg.partition, msg.offset, msg.key, outcome],
    );
    return r.rowCount === 1;
  }

  private async alreadyProcessed(outboxId: string): Promise<boolean> {
    const r = await this.pool.query(
      'SELECT 1 FROM billing.processed_events WHERE outbox_id = $1',
      [outboxId],
    );
    return r.rowCount === 1;
  }
}
