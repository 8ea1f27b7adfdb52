import { Module } from '@nestjs/common';
import { OutboxModule } from '../outbox/outbox.module';
import { OrdersController } from './orders.controller';
import { OrdersService } from './orders.service';

/**
 * The order service: HTTP in, PostgreSQL (with outbox_kafka) out.  Needs
 * ORDERS_POOL (DatabaseModule.orders(), imported by the root module).
 */
@Module({
  imports: [OutboxModule],
  controllers: [OrdersController],
  providers: [OrdersService],
})
export class OrdersModule {}
