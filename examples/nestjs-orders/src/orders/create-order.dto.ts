import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsInt,
  IsNotEmpty,
  IsString,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';

export class OrderLineDto {
  @IsString()
  @IsNotEmpty()
  sku!: string;

  /** a JSON number: "2" (a string) is refused, not converted */
  @IsInt()
  @Min(1)
  @Max(1000)
  quantity!: number;
}

/**
 * Body of POST /orders, checked by the global ValidationPipe (main.ts):
 * unknown properties and wrong types are refused with 400, nothing is
 * coerced.  Checks that need the database (known products, stock) are made
 * by OrdersService inside its transaction.
 */
export class CreateOrderDto {
  @IsInt()
  @Min(1)
  customerId!: number;

  /** the client's own reference, unique per order */
  @IsString()
  @Matches(/^[\w.-]{1,64}$/, {
    message: 'reference must be 1 to 64 letters, digits, "_", "." or "-"',
  })
  reference!: string;

  @IsString()
  @Matches(/^[A-Z]{3}$/, {
    message: 'currency must be an ISO 4217 code such as "EUR"',
  })
  currency!: string;

  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(50)
  @ValidateNested({ each: true })
  @Type(() => OrderLineDto)
  lines!: OrderLineDto[];
}
