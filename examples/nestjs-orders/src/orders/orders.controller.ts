import { Body, Controller, Headers, HttpCode, Post } from '@nestjs/common';
import { CreateOrderDto } from './create-order.dto';
import { CreatedOrder, OrdersService } from './orders.service';

@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  /**
   * 201 with the order id and its event id; 400 for a malformed body
   * (ValidationPipe) or an unknown product, 409 when stock is short or the
   * reference is taken (nothing is written in either case), 503 with
   * Retry-After when the database stayed busy (SqlStateExceptionFilter).
   * The caller's W3C traceparent travels with the event as a Kafka header.
   */
  @Post()
  @HttpCode(201)
  create(
    @Body() body: CreateOrderDto,
    @Headers('traceparent') traceparent?: string,
  ): Promise<CreatedOrder> {
    return this.orders.create(body, traceparent ? { traceparent } : {});
  }
}
