import { KafkaOptions } from '@nestjs/microservices';
import { Partitioners } from 'kafkajs';
import type { AppConfig } from '../config/app.config';

/**
 * The billing consumer's Kafka options (kafkajs underneath).
 *
 * - postfixId '' keeps the group id as configured ("billing"), instead of
 *   Nest's default "billing-server".
 * - autoCommit false: BillingController commits each offset itself, after
 *   the charge (or dead letter) is durable.
 * - partitionsConsumedConcurrently: while one partition waits between
 *   retries of a message, the others keep going.  Within a partition kafkajs
 *   still hands over one message at a time, in offset order.
 * - fromBeginning: a new consumer group starts at the oldest message.
 * Keys, values and headers arrive as Buffers (BillingKafkaServer).
 */
export function billingKafkaOptions(
  config: AppConfig,
): NonNullable<KafkaOptions['options']> {
  return {
    postfixId: '',
    client: {
      clientId: 'billing',
      brokers: config.kafkaBrokers,
      retry: { initialRetryTime: 100, retries: 10 },
    },
    consumer: {
      groupId: config.billingGroupId,
      sessionTimeout: config.billingSessionTimeoutMs,
      heartbeatInterval: Math.min(
        3000,
        Math.floor(config.billingSessionTimeoutMs / 3),
      ),
      // wake up at least this often when a partition is idle (also how
      // long a stopping consumer may wait for an outstanding fetch)
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
    },
    subscribe: { fromBeginning: true },
    run: {
      autoCommit: false,
      partitionsConsumedConcurrently: config.billingPartitionsConcurrently,
    },
    producer: { createPartitioner: Partitioners.DefaultPartitioner },
  };
}

/**
 * The dead-letter producer (an injected ClientKafka): the same partitioner
 * as Kafka's Java client and librdkafka's murmur2, so a key lands on the
 * same partition number of the dead-letter topic as on the source topic
 * when both have as many partitions.
 */
export function deadLetterClientOptions(
  config: AppConfig,
): NonNullable<KafkaOptions['options']> {
  return {
    postfixId: '',
    producerOnlyMode: true,
    client: {
      clientId: 'billing-dlq',
      brokers: config.kafkaBrokers,
      retry: { initialRetryTime: 100, retries: 10 },
    },
    producer: {
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    },
  };
}
