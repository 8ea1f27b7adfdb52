import { Inject, Injectable, Logger } from '@nestjs/common';
import { ClientKafka } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { appConfig } from '../config/app.config';
import type { AppConfig } from '../config/app.config';
import type { IncomingMessage } from './billing.service';
import { headerText } from './event-identity';

/** injection token of the dead-letter ClientKafka (BillingModule) */
export const DEAD_LETTER_CLIENT = 'DEAD_LETTER_CLIENT';

/**
 * Moves a message billing cannot process to the dead-letter topic
 * ("order.created.dlq" by default): the same key, value and header bytes -
 * nothing decoded and re-encoded, so the key hashes to the same partition -
 * plus dlq-* headers saying where it came from and why it failed.
 */
@Injectable()
export class DeadLetterPublisher {
  private readonly logger = new Logger(DeadLetterPublisher.name);

  constructor(
    @Inject(DEAD_LETTER_CLIENT) private readonly client: ClientKafka,
    @Inject(appConfig.KEY) private readonly config: AppConfig,
  ) {}

  async publish(
    msg: IncomingMessage,
    reason: string,
    error: string,
    attempts: number,
  ): Promise<void> {
    this.logger.warn(
      `dead-lettering ${msg.topic} ${msg.partition}/${msg.offset} (outbox-id ${headerText(msg.headers['outbox-id']) ?? 'none'}): ${error}`,
    );
    await lastValueFrom(
      this.client.emit(this.config.deadLetterTopic, {
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
      }),
      { defaultValue: undefined },
    );
  }
}
