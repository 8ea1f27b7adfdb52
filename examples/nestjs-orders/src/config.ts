/**
 * Settings of the example, all from the environment.
 *
 * PostgreSQL: DATABASE_URL (the order service's database, where outbox_kafka
 * is installed) and BILLING_DATABASE_URL (the billing consumer's, defaults to
 * DATABASE_URL).  Either may be left unset to use the libpq variables
 * PGHOST, PGPORT, PGUSER, PGDATABASE.  Kafka: KAFKA_BROKERS (comma-separated).
 */
export const ORDER_CREATED_TOPIC = 'order.created';

export interface AppConfig {
  ordersDatabaseUrl?: string;
  billingDatabaseUrl?: string;
  kafkaBrokers: string[];
  billingGroupId: string;
  /** topic poison messages are moved to */
  deadLetterTopic: string;
  /** attempts at a business rule before the message is dead-lettered */
  billingMaxAttempts: number;
  /** pause before the second attempt; doubled for each further one */
  billingRetryBackoffMs: number;
  /** how long the group waits for a silent consumer before rebalancing */
  billingSessionTimeoutMs: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const ordersDatabaseUrl = env.DATABASE_URL || undefined;
  return {
    ordersDatabaseUrl,
    billingDatabaseUrl: env.BILLING_DATABASE_URL || ordersDatabaseUrl,
    kafkaBrokers: (env.KAFKA_BROKERS ?? 'localhost:9092')
      .split(',')
      .map((b) => b.trim())
      .filter((b) => b !== ''),
    billingGroupId: env.BILLING_GROUP_ID ?? 'billing',
    deadLetterTopic:
      env.BILLING_DEAD_LETTER_TOPIC ?? `${ORDER_CREATED_TOPIC}.dlq`,
    billingMaxAttempts: positiveInt(env.BILLING_MAX_ATTEMPTS, 3),
    billingRetryBackoffMs: positiveInt(env.BILLING_RETRY_BACKOFF_MS, 200),
    billingSessionTimeoutMs: positiveInt(env.BILLING_SESSION_TIMEOUT_MS, 30000),
  };
}

function positiveInt(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`expected a positive integer, got "${value}"`);
  }
  return n;
}
