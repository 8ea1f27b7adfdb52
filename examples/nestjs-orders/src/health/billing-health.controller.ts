import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { Pool } from 'pg';
import { BILLING_POOL } from '../database/database.module';
import { ConsumerHealthIndicator } from './consumer.indicator';
import { PostgresHealthIndicator } from './indicators';

@Controller('health')
export class BillingHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly postgres: PostgresHealthIndicator,
    private readonly consumer: ConsumerHealthIndicator,
    @Inject(BILLING_POOL) private readonly pool: Pool,
  ) {}

  /** The billing consumer: its database and its Kafka consumer. */
  @Get()
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.postgres.check('database', this.pool),
      () => this.consumer.check('consumer'),
    ]);
  }
}
