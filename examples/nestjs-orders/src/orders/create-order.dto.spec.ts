import { BadRequestException } from '@nestjs/common';
import { parseCreateOrder } from './create-order.dto';

const valid = {
  customerId: 7,
  reference: 'web-2026-0001',
  currency: 'EUR',
  lines: [{ sku: 'apple', quantity: 2 }],
};

describe('parseCreateOrder', () => {
  it('returns a well-formed body typed', () => {
    expect(parseCreateOrder(valid)).toEqual(valid);
  });

  it.each([
    ['a body that is not an object', 'text', /JSON object/],
    [
      'a customer id that is not an integer',
      { ...valid, customerId: '7' },
      /customerId/,
    ],
    ['an empty reference', { ...valid, reference: '' }, /reference/],
    ['a lower-case currency', { ...valid, currency: 'eur' }, /currency/],
    ['no lines', { ...valid, lines: [] }, /lines must be/],
    [
      'a zero quantity',
      { ...valid, lines: [{ sku: 'apple', quantity: 0 }] },
      /lines\[0\]\.quantity/,
    ],
    [
      'a line without a sku',
      { ...valid, lines: [{ quantity: 1 }] },
      /lines\[0\]\.sku/,
    ],
  ])('rejects %s with 400', (_what, body, message) => {
    expect(() => parseCreateOrder(body)).toThrow(BadRequestException);
    expect(() => parseCreateOrder(body)).toThrow(message);
  });
});
