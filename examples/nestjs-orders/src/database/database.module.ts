import {
  DynamicModule,
  Logger,
  Module,
  OnApplicationShutdown,
} from '@nestjs/common';
import { Pool } from 'pg';
import { AppConfig, appConfig } from '../config/app.config';

/** Pool of the order service's database (the one with outbox_kafka). */
export const ORDERS_POOL = Symbol('ORDERS_POOL');
/** Pool of the billing consumer's database. */
export const BILLING_POOL = Symbol('BILLING_POOL');

/**
 * A pg Pool that survives its server going away.  When PostgreSQL restarts
 * or fails over, it terminates every connection (SQLSTATE 57P01) and the
 * pool emits 'error' for each idle one.  An EventEmitter without an 'error'
 * listener throws, and the process dies of "Unhandled 'error' event".  With
 * the listener, the broken client is dropped and the next query opens a new
 * connection; a query that was running gets the error and the caller
 * decides (HTTP 503, or Kafka redelivery).
 */
export function createPool(
  name: string,
  connectionString: string | undefined,
  max: number,
): Pool {
  const logger = new Logger(`Pool(${name})`);
  const pool = new Pool({ connectionString, max });
  pool.on('error', (err: Error & { code?: string }) => {
    logger.warn(
      `idle connection lost (${err.code ?? 'no SQLSTATE'}): ${err.message}; it will be replaced`,
    );
  });
  return pool;
}

/** Ends the pool when the application shuts down (enableShutdownHooks). */
class PoolCloser implements OnApplicationShutdown {
  constructor(private readonly pool: Pool) {}
  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}

@Module({})
export class DatabaseModule {
  /** The order service's pool, as ORDERS_POOL. */
  static orders(): DynamicModule {
    return DatabaseModule.forPool(
      ORDERS_POOL,
      'orders',
      (c) => c.ordersDatabaseUrl,
    );
  }

  /** The billing consumer's pool, as BILLING_POOL. */
  static billing(): DynamicModule {
    return DatabaseModule.forPool(
      BILLING_POOL,
      'billing',
      (c) => c.billingDatabaseUrl,
    );
  }

  private static forPool(
    token: symbol,
    name: string,
    url: (config: AppConfig) => string | undefined,
  ): DynamicModule {
    return {
      module: DatabaseModule,
      // imported once by the application's root module, used by all
      global: true,
      providers: [
        {
          provide: token,
          inject: [appConfig.KEY],
          useFactory: (config: AppConfig) =>
            createPool(name, url(config), config.databasePoolMax),
        },
        {
          provide: `${name}PoolCloser`,
          inject: [token],
          useFactory: (pool: Pool) => new PoolCloser(pool),
        },
      ],
      exports: [token],
    };
  }
}
