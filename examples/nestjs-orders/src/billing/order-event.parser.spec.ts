import { parseOrderMessage } from './order-event.parser';

const orderId = '0b0f7c2e-4a57-4c43-9d7e-3f1c2b9a8e10';
const event = {
  type: 'order.created',
  orderId,
  customerId: 7,
  reference: 'ref-1',
  currency: 'EUR',
  totalCents: 700,
  lines: [
    { sku: 'a', quantity: 2, unitPriceCents: 250 },
    { sku: 'b', quantity: 1, unitPriceCents: 200 },
  ],
  createdAt: '2026-11-29T10:00:00.000Z',
};
const bytes = (v: unknown) =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

describe('parseOrderMessage', () => {
  it('accepts an order.created event keyed by its order id', () => {
    expect(parseOrderMessage(bytes(event), orderId)).toEqual({
      kind: 'order.created',
      event,
    });
  });

  it('accepts fields a newer producer adds', () => {
    expect(
      parseOrderMessage(bytes({ ...event, channel: 'web' }), orderId).kind,
    ).toBe('order.created');
  });

  it('treats a null value as a tombstone', () => {
    expect(parseOrderMessage(null, orderId)).toEqual({ kind: 'tombstone' });
  });

  it('reports an unknown event type without failing', () => {
    expect(
      parseOrderMessage(bytes({ type: 'order.shipped', orderId }), orderId),
    ).toEqual({
      kind: 'unknown-type',
      type: 'order.shipped',
    });
  });

  it.each([
    ['text that is not JSON', 'not json', /not JSON/],
    ['a JSON array', [1, 2], /not a JSON object/],
    ['an object without a type', { orderId }, /no "type"/],
    ['a bad order id', { ...event, orderId: 'x' }, /orderId/],
    [
      'a total that is not the sum of the lines',
      { ...event, totalCents: 701 },
      /sum of the lines/,
    ],
    ['a negative customer id', { ...event, customerId: -1 }, /customerId/],
    [
      'quantities and prices given as strings',
      {
        ...event,
        lines: [
          { sku: 'a', quantity: '2', unitPriceCents: '250' },
          { sku: 'b', quantity: 1, unitPriceCents: 200 },
        ],
      },
      /lines\.0\.quantity.*lines\.0\.unitPriceCents/,
    ],
    [
      'a total given as a string',
      { ...event, totalCents: '700' },
      /totalCents/,
    ],
    ['a line that is not an object', { ...event, lines: [7] }, /lines/],
  ])('rejects %s as invalid', (_what, value, error) => {
    const parsed = parseOrderMessage(bytes(value), orderId);
    expect(parsed.kind).toBe('invalid');
    expect(parsed.kind === 'invalid' && parsed.error).toMatch(error);
  });

  it('rejects an event whose key is not its order id', () => {
    const parsed = parseOrderMessage(bytes(event), 'another-key');
    expect(parsed.kind === 'invalid' && parsed.error).toMatch(
      /differs from the message key/,
    );
  });
});
