import { Injectable, Logger } from '@nestjs/common';
import { loadConfig } from '../config';
import type { IncomingMessage } from './billing.service';

/** The part of a kafkajs producer the publisher uses (KafkaContext.getProducer()). */
export interface MessageSender {
  send(record: {
    topic: string;
    messages: {
      key: string | null;
      value: Buffer | null;
      headers: Record<string, string>;
    }[];
  }): Promise<unknown>;
}

/**
 * Moves a message billing cannot process to the dead-letter topic
 * ("order.created.dlq" by default): same key and value bytes, the original
 * headers (outbox-id included, so the DLQ can be de-duplicated too), plus
 * dlq-* headers saying where it came from and why it failed.
 */
@Injectable()
export class DeadLetterPublisher {
  private readonly logger = new Logger(DeadLetterPublisher.name);
  private readonly config = loadConfig();
  private sender?: MessageSender;

  /** The producer to send with (the Kafka transport's own, set per message). */
  use(sender: MessageSender): void {
    this.sender = sender;
  }

  async publish(
    msg: IncomingMessage,
    reason: string,
    error: string,
    attempts: number,
  ): Promise<void> {
    if (!this.sender) throw new Error('DeadLetterPublisher has no producer');
    this.logger.warn(
      `dead-lettering ${msg.topic} ${msg.partition}/${msg.offset} (outbox-id ${msg.headers['outbox-id'] ?? 'none'}): ${error}`,
    );
    await this.sender.send({
      topic: this.config.deadLetterTopic,
      messages: [
        {
          key: msg.key,
          value: msg.value,
          headers: {
            ...msg.headers,
            'dlq-reason': reason,
            'dlq-error': error,
            'dlq-attempts': String(attempts),
            'dlq-original-topic': msg.topic,
            'dlq-original-partition': String(msg.partition),
            'dlq-original-offset': msg.offset,
            'dlq-consumer-group': this.config.billingGroupId,
            'dlq-failed-at': new Date().toISOString(),
          },
        },
      ],
    });
  }
}
