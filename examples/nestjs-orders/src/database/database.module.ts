import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { Pool } from 'pg';
import { loadConfig } from '../config';

/** Pool of the order service's database (the one with outbox_kafka). */
export const ORDERS_POOL = Symbol('ORDERS_POOL');
/** Pool of the billing consumer's database. */
export const BILLING_POOL = Symbol('BILLING_POOL');

@Global()
@Module({
  providers: [
    {
      provide: ORDERS_POOL,
      useFactory: () =>
        new Pool({ connectionString: loadConfig().ordersDatabaseUrl, max: 5 }),
    },
    {
      provide: BILLING_POOL,
      useFactory: () =>
        new Pool({ connectionString: loadConfig().billingDatabaseUrl, max: 5 }),
    },
  ],
  exports: [ORDERS_POOL, BILLING_POOL],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(
    @Inject(ORDERS_POOL) private readonly orders: Pool,
    @Inject(BILLING_POOL) private readonly billing: Pool,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.orders.end(), this.billing.end()]);
  }
}
