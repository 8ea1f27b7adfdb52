import { outboxTopic } from '../outbox/outbox-event';
import { ORDER_CREATED_TOPIC } from '../config/app.config';

/**
 * The event the order service publishes, through outbox.enqueue(), on topic
 * "order.created" with the order id as Kafka key.  Shared by the producer
 * (orders) and the consumer (billing) of this example; in a real system it
 * would be a published schema.
 */
export interface OrderCreatedEvent {
  type: 'order.created';
  orderId: string;
  customerId: number;
  reference: string;
  currency: string;
  totalCents: number;
  lines: { sku: string; quantity: number; unitPriceCents: number }[];
  createdAt: string;
}

export const OrderCreated = outboxTopic<OrderCreatedEvent>(ORDER_CREATED_TOPIC);
