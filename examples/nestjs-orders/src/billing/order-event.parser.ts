import 'reflect-metadata';
import { plainToInstance, Type } from 'class-transformer';
import {
  ArrayMinSize,
  IsArray,
  IsInt,
  IsISO8601,
  IsNotEmpty,
  IsString,
  Matches,
  Min,
  ValidateNested,
  ValidationError,
  validateSync,
} from 'class-validator';
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

class OrderLineEventDto {
  @IsString() @IsNotEmpty() sku!: string;
  @IsInt() @Min(1) quantity!: number;
  @IsInt() @Min(0) unitPriceCents!: number;
}

/**
 * The fields billing relies on, checked with class-validator and NO type
 * conversion: "2" is not a quantity, "700" is not an amount.  Unknown extra
 * fields are allowed (a newer producer may add some).
 */
class OrderCreatedEventDto implements OrderCreatedEvent {
  type!: 'order.created';
  @Matches(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  orderId!: string;
  @IsInt() @Min(1) customerId!: number;
  @IsString() reference!: string;
  @Matches(/^[A-Z]{3}$/) currency!: string;
  @IsInt() @Min(1) totalCents!: number;
  @IsArray()
  @ArrayMinSize(1)
  @ValidateNested({ each: true })
  @Type(() => OrderLineEventDto)
  lines!: OrderLineEventDto[];
  @IsISO8601() createdAt!: string;
}

function describeErrors(errors: ValidationError[], path = ''): string[] {
  return errors.flatMap((e) => {
    const at = path === '' ? e.property : `${path}.${e.property}`;
    const own = e.constraints
      ? [`${at}: ${Object.values(e.constraints)[0]}`]
      : [];
    return [...own, ...describeErrors(e.children ?? [], at)];
  });
}

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
  const type = (body as { type?: unknown }).type;
  if (typeof type !== 'string')
    return { kind: 'invalid', error: 'payload has no "type"' };
  if (type !== 'order.created') return { kind: 'unknown-type', type };

  const event = plainToInstance(OrderCreatedEventDto, body, {
    enableImplicitConversion: false,
  });
  const problems = describeErrors(validateSync(event));
  if (problems.length === 0) {
    if (event.orderId !== key)
      problems.push('orderId differs from the message key');
    const sum = event.lines.reduce(
      (s, l) => s + l.quantity * l.unitPriceCents,
      0,
    );
    if (sum !== event.totalCents)
      problems.push('totalCents is not the sum of the lines');
  }
  if (problems.length > 0) {
    return {
      kind: 'invalid',
      error: `invalid order.created event: ${problems.join(', ')}`,
    };
  }
  return { kind: 'order.created', event };
}
