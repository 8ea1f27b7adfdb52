import { OrderCreatedEvent } from '../orders/order-created.event';

/** What a message on "order.created" turned out to be. */
export type ParsedOrderMessage =
  | { kind: 'order.created'; event: OrderCreatedEvent }
  /** null value: the order's key was deleted (compacted topics) */
  | { kind: 'tombstone' }
  /** valid JSON with a "type" this consumer does not know (yet) */
  | { kind: 'unknown-type'; type: string }
  /** not something any version of the producer sends: a poison message */
  | { kind: 'invalid'; error: string };

/**
 * Classify the raw value of a message (bytes, or null for a tombstone) and
 * check every field billing relies on.  Never throws: a message that cannot
 * be understood is 'invalid', and goes to the dead-letter topic.
 */
export function parseOrderMessage(
  value: Buffer | null,
  key: string | null,
): ParsedOrderMessage {
  if (value === null) return { kind: 'tombstone' };
  let body: unknown;
  try {
    body = JSON.parse(value.toString('utf8'));
  } catch (e) {
    return {
      kind: 'invalid',
      error: `payload is not JSON: ${(e as Error).message}`,
    };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { kind: 'invalid', error: 'payload is not a JSON object' };
  }
  const b = body as Record<string, unknown>;
  if (typeof b.type !== 'string')
    return { kind: 'invalid', error: 'payload has no "type"' };
  if (b.type !== 'order.created') return { kind: 'unknown-type', type: b.type };

  const problems: string[] = [];
  if (typeof b.orderId !== 'string' || !/^[0-9a-f-]{36}$/.test(b.orderId))
    problems.push('orderId');
  else if (key !== b.orderId)
    problems.push('orderId differs from the message key');
  if (!Number.isSafeInteger(b.customerId) || (b.customerId as number) < 1)
    problems.push('customerId');
  if (typeof b.currency !== 'string' || !/^[A-Z]{3}$/.test(b.currency))
    problems.push('currency');
  if (!Number.isSafeInteger(b.totalCents) || (b.totalCents as number) <= 0)
    problems.push('totalCents');
  if (typeof b.reference !== 'string') problems.push('reference');
  if (!Array.isArray(b.lines) || b.lines.length === 0) problems.push('lines');
  else {
    const sum = (
      b.lines as { quantity?: unknown; unitPriceCents?: unknown }[]
    ).reduce((s, l) => s + Number(l?.quantity) * Number(l?.unitPriceCents), 0);
    if (sum !== b.totalCents)
      problems.push('totalCents is not the sum of the lines');
  }
  if (problems.length > 0) {
    return {
      kind: 'invalid',
      error: `invalid order.created event: ${problems.join(', ')}`,
    };
  }
  return { kind: 'order.created', event: b as unknown as OrderCreatedEvent };
}
