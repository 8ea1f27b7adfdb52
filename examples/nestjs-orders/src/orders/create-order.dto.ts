import { BadRequestException } from '@nestjs/common';

export interface OrderLineDto {
  sku: string;
  quantity: number;
}

/** Body of POST /orders. */
export interface CreateOrderDto {
  customerId: number;
  /** the client's own reference, unique per order */
  reference: string;
  currency: string;
  lines: OrderLineDto[];
}

/**
 * Check the shape of a POST /orders body and return it typed; throws
 * BadRequestException (HTTP 400) naming the first problem.  Checks that need
 * the database (known products, stock) are made by OrdersService inside its
 * transaction.
 */
export function parseCreateOrder(body: unknown): CreateOrderDto {
  const fail = (why: string): never => {
    throw new BadRequestException(why);
  };
  if (typeof body !== 'object' || body === null)
    fail('body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (!Number.isSafeInteger(b.customerId) || (b.customerId as number) < 1)
    fail('customerId must be a positive integer');
  if (typeof b.reference !== 'string' || !/^[\w.-]{1,64}$/.test(b.reference))
    fail('reference must be 1 to 64 letters, digits, "_", "." or "-"');
  if (typeof b.currency !== 'string' || !/^[A-Z]{3}$/.test(b.currency))
    fail('currency must be an ISO 4217 code such as "EUR"');
  if (!Array.isArray(b.lines) || b.lines.length === 0 || b.lines.length > 50)
    fail('lines must be an array of 1 to 50 order lines');
  const lines = (b.lines as unknown[]).map((l, i): OrderLineDto => {
    const line = (typeof l === 'object' && l !== null ? l : {}) as Record<
      string,
      unknown
    >;
    if (typeof line.sku !== 'string' || line.sku === '')
      fail(`lines[${i}].sku must be a non-empty string`);
    if (
      !Number.isSafeInteger(line.quantity) ||
      (line.quantity as number) < 1 ||
      (line.quantity as number) > 1000
    )
      fail(`lines[${i}].quantity must be an integer from 1 to 1000`);
    return { sku: line.sku as string, quantity: line.quantity as number };
  });
  return {
    customerId: b.customerId as number,
    reference: b.reference as string,
    currency: b.currency as string,
    lines,
  };
}
