import {
  BadRequestException,
  ConflictException,
  Inject,
  Injectable,
  Logger,
} from '@nestjs/common';
import { Pool, PoolClient } from 'pg';
import { appConfig } from '../config/app.config';
import type { AppConfig } from '../config/app.config';
import { ORDERS_POOL } from '../database/database.module';
import { retryTransaction } from '../database/retry';
import { inTransaction } from '../database/transaction';
import { OutboxService } from '../outbox/outbox.service';
import { CreateOrderDto } from './create-order.dto';
import { OrderCreated, OrderCreatedEvent } from './order-created.event';

export interface CreatedOrder {
  orderId: string;
  /** id of the outbox event: the value of the Kafka header "outbox-id" */
  eventId: string;
  totalCents: number;
}

@Injectable()
export class OrdersService {
  private readonly logger = new Logger(OrdersService.name);

  constructor(
    @Inject(ORDERS_POOL) private readonly pool: Pool,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
    private readonly outbox: OutboxService,
  ) {}

  /**
   * Write the order and its "order.created" event in ONE transaction.
   *
   * There is no Kafka client here: outbox.enqueue() stores the event in the
   * same transaction as the order rows, and the outbox_kafka relay inside
   * PostgreSQL publishes it after COMMIT.  If anything below throws, the
   * whole transaction rolls back - order, lines and event alike - so Kafka
   * never hears of an order that does not exist.
   *
   * A deadlock or serialization failure rolls back everything, so the whole
   * transaction is run again (a few times, with a growing pause); after
   * that the caller gets 503 with Retry-After.
   */
  async create(
    dto: CreateOrderDto,
    headers: { traceparent?: string } = {},
  ): Promise<CreatedOrder> {
    return retryTransaction(
      () => inTransaction(this.pool, (db) => this.write(db, dto, headers)),
      {
        attempts: this.config.orderTxAttempts,
        onRetry: (err, n) =>
          this.logger.warn(
            `order ${dto.reference}: ${(err as Error).message}; running the transaction again (attempt ${n + 1})`,
          ),
      },
    );
  }

  private async write(
    db: PoolClient,
    dto: CreateOrderDto,
    headers: { traceparent?: string },
  ): Promise<CreatedOrder> {
    // Lock the products of the order FIRST and always in the same order
    // (by sku).  Two orders with the same products in opposite line order
    // then queue up behind each other instead of each holding one row the
    // other needs ("deadlock detected").
    const skus = [...new Set(dto.lines.map((l) => l.sku))];
    const products = await db.query<{ sku: string; price_cents: string }>(
      `SELECT sku, price_cents FROM shop.products
        WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE`,
      [skus],
    );
    const priceOf = new Map(
      products.rows.map((r) => [r.sku, Number(r.price_cents)]),
    );
    const lines = dto.lines.map((l) => {
      const unitPriceCents = priceOf.get(l.sku);
      if (unitPriceCents === undefined) {
        throw new BadRequestException(`unknown product "${l.sku}"`);
      }
      return { sku: l.sku, quantity: l.quantity, unitPriceCents };
    });
    const totalCents = lines.reduce(
      (sum, l) => sum + l.quantity * l.unitPriceCents,
      0,
    );

    const order = await db.query<{ id: string; created_at: Date }>(
      `INSERT INTO shop.orders (customer_id, reference, currency, total_cents)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (reference) DO NOTHING
       RETURNING id, created_at`,
      [dto.customerId, dto.reference, dto.currency, totalCents],
    );
    if (order.rowCount === 0) {
      throw new ConflictException(
        `an order with reference "${dto.reference}" exists`,
      );
    }
    const { id: orderId, created_at: createdAt } = order.rows[0];
    for (const [i, l] of lines.entries()) {
      await db.query(
        `INSERT INTO shop.order_lines (order_id, line_no, sku, quantity, unit_price_cents)
         VALUES ($1, $2, $3, $4, $5)`,
        [orderId, i + 1, l.sku, l.quantity, l.unitPriceCents],
      );
    }

    const event: OrderCreatedEvent = {
      type: 'order.created',
      orderId,
      customerId: dto.customerId,
      reference: dto.reference,
      currency: dto.currency,
      totalCents,
      lines,
      createdAt: createdAt.toISOString(),
    };
    // The key makes every event of this order go to one partition, in
    // commit order.  OutboxService casts the payload to jsonb, so the event
    // is published with "content-type: application/json".
    const eventId = await this.outbox.enqueue(
      db,
      OrderCreated.event(event, { key: orderId, headers }),
    );

    // Stock is taken after the enqueue on purpose, to show the outbox's
    // point: when it fails, the order AND the event enqueued above go away
    // with the rollback.  (The rows are locked already, in sku order.)
    const quantityOf = new Map<string, number>();
    for (const l of lines)
      quantityOf.set(l.sku, (quantityOf.get(l.sku) ?? 0) + l.quantity);
    for (const sku of [...quantityOf.keys()].sort()) {
      const reserved = await db.query(
        'UPDATE shop.products SET stock = stock - $2 WHERE sku = $1 AND stock >= $2',
        [sku, quantityOf.get(sku)],
      );
      if (reserved.rowCount === 0) {
        throw new ConflictException(`not enough stock of "${sku}"`);
      }
    }
    return { orderId, eventId, totalCents };
  }
}
