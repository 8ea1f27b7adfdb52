import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { parseCreateOrder } from './create-order.dto';
import { CreatedOrder, OrdersService } from './orders.service';

@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  /**
   * 201 with the order id and its event id; 400 for a malformed body or an
   * unknown product, 409 when stock is short or the reference is taken
   * (nothing is written in either case).
   */
  @Post()
  @HttpCode(201)
  create(@Body() body: unknown): Promise<CreatedOrder> {
    return this.orders.create(parseCreateOrder(body));
  }
}
