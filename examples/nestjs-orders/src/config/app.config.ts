import { ConfigType, registerAs } from '@nestjs/config';
import { plainToInstance, Type } from 'class-transformer';
import {
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  validateSync,
} from 'class-validator';

export const ORDER_CREATED_TOPIC = 'order.created';

/**
 * The environment variables of the example, with their defaults.  Every
 * value is checked when the application starts (in the factory of
 * `appConfig`, i.e. inside bootstrap()): a typo in a number fails the start
 * with a message naming the variable, instead of surfacing later as NaN.
 */
export class EnvironmentVariables {
  /** the order service's database, where outbox_kafka is installed (else PG* variables) */
  @IsOptional() @IsString() DATABASE_URL?: string;
  /** the billing consumer's database (defaults to DATABASE_URL) */
  @IsOptional() @IsString() BILLING_DATABASE_URL?: string;

  @Matches(/^[^,\s]+(,[^,\s]+)*$/, {
    message: 'KAFKA_BROKERS must be host:port[,host:port...]',
  })
  KAFKA_BROKERS = 'localhost:9092';

  /** HTTP port of the order API */
  @Type(() => Number) @IsInt() @Min(0) @Max(65535) PORT = 3000;
  /** HTTP port of the billing consumer's health endpoint */
  @Type(() => Number) @IsInt() @Min(0) @Max(65535) BILLING_PORT = 3001;

  @Type(() => Number) @IsInt() @Min(1) @Max(100) DATABASE_POOL_MAX = 10;
  /** attempts at an order transaction that hit a deadlock or serialization failure */
  @Type(() => Number) @IsInt() @Min(1) @Max(20) ORDER_TX_ATTEMPTS = 5;
  /** /health/outbox is down when the oldest unpublished event is older */
  @Type(() => Number) @IsInt() @Min(1) OUTBOX_MAX_LAG_SECONDS = 60;

  @IsString() BILLING_GROUP_ID = 'billing';
  @IsString() BILLING_DEAD_LETTER_TOPIC = `${ORDER_CREATED_TOPIC}.dlq`;
  /** name of the database whose outbox billing reads: part of the dedupe key */
  @IsString() BILLING_EVENT_SOURCE = 'orders';
  @Type(() => Number) @IsInt() @Min(1) BILLING_MAX_ATTEMPTS = 3;
  @Type(() => Number) @IsInt() @Min(1) BILLING_RETRY_BACKOFF_MS = 200;
  @Type(() => Number) @IsInt() @Min(1000) BILLING_SESSION_TIMEOUT_MS = 30000;
  /** partitions processed at the same time (each one still in order) */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(64)
  BILLING_PARTITIONS_CONCURRENTLY = 3;
}

/** Check `env` and return it typed; throws naming every bad variable. */
export function validateEnv(env: NodeJS.ProcessEnv): EnvironmentVariables {
  // an empty variable counts as unset, as in a shell
  const set = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const config = plainToInstance(EnvironmentVariables, set, {
    exposeDefaultValues: true,
  });
  const errors = validateSync(config);
  if (errors.length > 0) {
    const why = errors
      .map((e) => Object.values(e.constraints ?? {}).join('; '))
      .join('\n  ');
    throw new Error(`invalid configuration:\n  ${why}`);
  }
  return config;
}

/**
 * The typed settings, as a @nestjs/config namespace: inject with
 * `@Inject(appConfig.KEY) config: AppConfig`.  The factory runs when the
 * application is created, not when this file is imported.
 */
export const appConfig = registerAs('app', () => {
  const env = validateEnv(process.env);
  return {
    ordersDatabaseUrl: env.DATABASE_URL,
    billingDatabaseUrl: env.BILLING_DATABASE_URL ?? env.DATABASE_URL,
    databasePoolMax: env.DATABASE_POOL_MAX,
    kafkaBrokers: env.KAFKA_BROKERS.split(','),
    port: env.PORT,
    billingPort: env.BILLING_PORT,
    orderTxAttempts: env.ORDER_TX_ATTEMPTS,
    outboxMaxLagSeconds: env.OUTBOX_MAX_LAG_SECONDS,
    billingGroupId: env.BILLING_GROUP_ID,
    deadLetterTopic: env.BILLING_DEAD_LETTER_TOPIC,
    billingEventSource: env.BILLING_EVENT_SOURCE,
    billingMaxAttempts: env.BILLING_MAX_ATTEMPTS,
    billingRetryBackoffMs: env.BILLING_RETRY_BACKOFF_MS,
    billingSessionTimeoutMs: env.BILLING_SESSION_TIMEOUT_MS,
    billingPartitionsConcurrently: env.BILLING_PARTITIONS_CONCURRENTLY,
  };
});
export type AppConfig = ConfigType<typeof appConfig>;
