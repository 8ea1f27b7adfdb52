import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { BillingModule } from './billing/billing.module';
import { AppConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { BillingHealthController } from './health/billing-health.controller';
import { ConsumerHealthIndicator } from './health/consumer.indicator';
import { PostgresHealthIndicator } from './health/indicators';

/**
 * The billing consumer (entry point src/billing.main.ts): Kafka in,
 * PostgreSQL out, and an HTTP port for its health check only.
 */
@Module({
  imports: [
    AppConfigModule,
    DatabaseModule.billing(),
    TerminusModule,
    BillingModule,
  ],
  controllers: [BillingHealthController],
  providers: [PostgresHealthIndicator, ConsumerHealthIndicator],
})
export class BillingAppModule {}
