import { KafkaOptions, Transport } from '@nestjs/microservices';
import { Partitioners } from 'kafkajs';
import { AppConfig, loadConfig } from '../config';

/**
 * The billing consumer's Kafka transport (kafkajs underneath).
 *
 * - postfixId '' keeps the group id as configured ("billing"), instead of
 *   Nest's default "billing-server".
 * - autoCommit false: BillingController commits each offset itself, after
 *   the charge (or dead letter) is durable.
 * - keepBinary: the handler gets the value's bytes and parses them strictly;
 *   a dead letter carries exactly the bytes that arrived.
 * - fromBeginning: a new consumer group starts at the oldest message.
 */
export function billingKafkaOptions(
  config: AppConfig = loadConfig(),
): KafkaOptions {
  return {
    transport: Transport.KAFKA,
    options: {
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
      run: { autoCommit: false },
      parser: { keepBinary: true },
      // for the dead-letter topic: same partition for a key as the Java client
      producer: { createPartitioner: Partitioners.DefaultPartitioner },
    },
  };
}
