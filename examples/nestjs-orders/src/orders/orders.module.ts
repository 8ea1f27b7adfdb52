import { Module } from '@nestjs/common';
import { OrdersController } from './orders.controller';
import { OrdersService } from './orders.service';

/** The order service: HTTP in, PostgreSQL (with outbox_kafka) out. */
@Module({
  controllers: [OrdersController],
  providers: [OrdersService],
})
export class OrdersModule {}
