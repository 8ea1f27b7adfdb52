/**
 * An event to publish through outbox_kafka, typed by its payload.
 *
 * `payload` is serialised as JSON and enqueued as jsonb, so the relay adds
 * "content-type: application/json"; `null` with a key is a tombstone.
 * `headers` are your own Kafka headers (names starting with "outbox-" are
 * reserved: outbox.enqueue refuses them).
 */
export interface OutboxEvent<P = unknown> {
  topic: string;
  /** Kafka key: all events of a key land on one partition, in commit order */
  key?: string | null;
  payload: P | null;
  headers?: OutboxHeaders;
}

export interface OutboxHeaders {
  /** W3C trace context of the request that caused the event */
  traceparent?: string;
  tracestate?: string;
  [name: string]: string | undefined;
}

/**
 * A topic and the payload type its events carry, declared once and shared
 * by producer and consumer code:
 *
 *   export const OrderCreated = outboxTopic<OrderCreatedEvent>('order.created');
 *   await outbox.enqueue(tx, OrderCreated.event(payload, { key: orderId }));
 */
export interface OutboxTopic<P> {
  readonly topic: string;
  event(
    payload: P | null,
    options?: { key?: string | null; headers?: OutboxHeaders },
  ): OutboxEvent<P>;
}

export function outboxTopic<P>(topic: string): OutboxTopic<P> {
  return {
    topic,
    event: (payload, options = {}) => ({ topic, payload, ...options }),
  };
}
