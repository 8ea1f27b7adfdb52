import { Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { SqlStateExceptionFilter } from './common/sqlstate-exception.filter';
import { strictValidationPipe } from './common/validation';
import { AppConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import {
  OutboxHealthIndicator,
  PostgresHealthIndicator,
} from './health/indicators';
import { OrdersHealthController } from './health/orders-health.controller';
import { OrdersModule } from './orders/orders.module';

/**
 * The order API (entry point src/main.ts): HTTP, PostgreSQL and nothing
 * else.  No Kafka client - it starts, and takes orders, while Kafka is
 * unreachable.
 */
@Module({
  imports: [
    AppConfigModule,
    DatabaseModule.orders(),
    TerminusModule,
    OrdersModule,
  ],
  controllers: [OrdersHealthController],
  providers: [
    PostgresHealthIndicator,
    OutboxHealthIndicator,
    { provide: APP_PIPE, useFactory: strictValidationPipe },
    { provide: APP_FILTER, useClass: SqlStateExceptionFilter },
  ],
})
export class OrdersApiModule {}
