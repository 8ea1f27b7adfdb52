import {
  BadRequestException,
  ConflictException,
  Inject,
  Injectable,
} from '@nestjs/common';
import { Pool } from 'pg';
import { ORDER_CREATED_TOPIC } from '../config';
import { ORDERS_POOL } from '../database/database.module';
import { inTransaction } from '../database/transaction';
import { CreateOrderDto } from './create-order.dto';
import { OrderCreatedEvent } from './order-created.event';

export interface CreatedOrder {
  orderId: string;
  /** id of the outbox event: the value of the Kafka header "outbox-id" */
  eventId: string;
  totalCents: number;
}

@Injectable()
export class OrdersService {
  constructor(@Inject(ORDERS_POOL) private readonly pool: Pool) {}

  /**
   * Write the order and its "order.created" event in ONE transaction.
   *
   * There is no Kafka client here: outbox.enqueue() stores the event in the
   * same transaction as the order rows, and the outbox_kafka relay inside
   * PostgreSQL publishes it after COMMIT.  If anything below throws, the
   * whole transaction rolls back - order, lines and event alike - so Kafka
   * never hears of an order that does not exist.
   */
  async create(dto: CreateOrderDto): Promise<CreatedOrder> {
    return inTransaction(this.pool, async (db) => {
      const skus = dto.lines.map((l) => l.sku);
      const prices = await db.query<{ sku: string; price_cents: string }>(
        'SELECT sku, price_cents FROM shop.products WHERE sku = ANY($1)',
        [skus],
      );
      const priceOf = new Map(
        prices.rows.map((r) => [r.sku, Number(r.price_cents)]),
      );
      const lines = dto.lines.map((l) => {
        const unitPriceCents = priceOf.get(l.sku);
        if (unitPriceCents === undefined) {
          throw new BadRequestException(`unknown product "${l.sku}"`);
        }
        return { ...l, unitPriceCents };
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
      // commit order.  ::jsonb picks the JSON variant of enqueue, published
      // with "content-type: application/json".
      const enqueued = await db.query<{ id: string }>(
        'SELECT outbox.enqueue($1, $2::jsonb, key => $3) AS id',
        [ORDER_CREATED_TOPIC, JSON.stringify(event), orderId],
      );

      // Stock is reserved last on purpose: when it fails, the order AND the
      // event enqueued above go away with the rollback.
      for (const l of lines) {
        const reserved = await db.query(
          'UPDATE shop.products SET stock = stock - $2 WHERE sku = $1 AND stock >= $2',
          [l.sku, l.quantity],
        );
        if (reserved.rowCount === 0) {
          throw new ConflictException(`not enough stock of "${l.sku}"`);
        }
      }
      return { orderId, eventId: enqueued.rows[0].id, totalCents };
    });
  }
}
