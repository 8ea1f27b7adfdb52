import { BadRequestException } from '@nestjs/common';
import { strictValidationPipe } from '../common/validation';
import { CreateOrderDto } from './create-order.dto';

const valid = {
  customerId: 7,
  reference: 'web-2026-0001',
  currency: 'EUR',
  lines: [{ sku: 'apple', quantity: 2 }],
};

/** what the global ValidationPipe does with a POST /orders body */
const validate = (body: unknown) =>
  strictValidationPipe().transform(body, {
    type: 'body',
    metatype: CreateOrderDto,
  }) as Promise<CreateOrderDto>;

describe('CreateOrderDto with the ValidationPipe', () => {
  it('returns a well-formed body as a CreateOrderDto', async () => {
    const dto = await validate(valid);
    expect(dto).toBeInstanceOf(CreateOrderDto);
    expect(dto).toEqual(valid);
  });

  it.each([
    ['a body that is not an object', 'text', /./],
    [
      'a customer id given as a string',
      { ...valid, customerId: '7' },
      /customerId/,
    ],
    ['an empty reference', { ...valid, reference: '' }, /reference/],
    ['a lower-case currency', { ...valid, currency: 'eur' }, /currency/],
    ['no lines', { ...valid, lines: [] }, /lines/],
    [
      'a zero quantity',
      { ...valid, lines: [{ sku: 'apple', quantity: 0 }] },
      /quantity/,
    ],
    [
      'a quantity given as a string',
      { ...valid, lines: [{ sku: 'apple', quantity: '2' }] },
      /quantity/,
    ],
    [
      'a fractional quantity',
      { ...valid, lines: [{ sku: 'apple', quantity: 1.5 }] },
      /quantity/,
    ],
    ['a line without a sku', { ...valid, lines: [{ quantity: 1 }] }, /sku/],
    ['a line that is not an object', { ...valid, lines: ['apple'] }, /lines/],
    ['an unknown property', { ...valid, discount: 100 }, /discount/],
  ])('rejects %s with 400', async (_what, body, message) => {
    const result = validate(body);
    await expect(result).rejects.toBeInstanceOf(BadRequestException);
    await result.catch((e: BadRequestException) =>
      expect(JSON.stringify(e.getResponse())).toMatch(message),
    );
  });
});
