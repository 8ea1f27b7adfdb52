import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { Pool } from 'pg';
import { appConfig } from '../config/app.config';
import type { AppConfig } from '../config/app.config';
import { ORDERS_POOL } from '../database/database.module';
import { OutboxHealthIndicator, PostgresHealthIndicator } from './indicators';

@Controller('health')
export class OrdersHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly postgres: PostgresHealthIndicator,
    private readonly outbox: OutboxHealthIndicator,
    @Inject(ORDERS_POOL) private readonly pool: Pool,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {}

  /**
   * Readiness of the order API: the database only.  Taking orders does not
   * depend on Kafka, so neither does this check - wire it to your load
   * balancer or Kubernetes readiness probe.
   */
  @Get()
  @HealthCheck()
  ready() {
    return this.health.check([
      () => this.postgres.check('database', this.pool),
    ]);
  }

  /**
   * The outbox's lag (outbox.status): 503 while events wait longer than
   * OUTBOX_MAX_LAG_SECONDS or the relay cannot publish.  For monitoring and
   * alerts, NOT for a readiness probe: a Kafka outage would otherwise take
   * the order API out of service, which is what the outbox avoids.
   */
  @Get('outbox')
  @HealthCheck()
  outboxLag() {
    return this.health.check([
      () =>
        this.outbox.check('outbox', this.pool, this.config.outboxMaxLagSeconds),
    ]);
  }
}
