import { Injectable } from '@nestjs/common';
import { KafkaOptions, KafkaStatus, ServerKafka } from '@nestjs/microservices';
import { KafkaParser } from '@nestjs/microservices/helpers/kafka-parser';

/**
 * Hands the message over as kafkajs received it: key, value and header
 * values stay Buffers.  Nest's own KafkaParser decodes the key and every
 * header that starts with "{" or "[" as JSON (even with keepBinary, which
 * only covers the value): the key '[42, "eu"]' - the shape outbox.capture
 * gives composite keys - would become an array, be re-serialised as
 * '[42,"eu"]', and land on another partition of the dead-letter topic.
 */
export class RawKafkaParser extends KafkaParser {
  parse<T = Record<string, unknown>>(data: Record<string, unknown>): T {
    return {
      ...data,
      headers: { ...((data.headers as object | undefined) ?? {}) },
    } as T;
  }
}

/**
 * The billing consumer's transport: Nest's Kafka server (so @EventPattern,
 * @Payload, @Ctx and KafkaContext work as usual) with the raw parser above,
 * and "connected" again after kafkajs restarted a crashed consumer (for the
 * health check).  Created by BillingModule from the validated config and
 * given to connectMicroservice({ strategy }) in billing.main.ts.
 */
@Injectable()
export class BillingKafkaServer extends ServerKafka {
  constructor(options: KafkaOptions['options']) {
    super(options ?? {});
    this.parser = new RawKafkaParser();
  }

  protected registerConsumerEventListeners(): void {
    super.registerConsumerEventListeners();
    const consumer = this.consumer;
    consumer?.on(consumer.events.GROUP_JOIN, () =>
      this._status$.next('connected' as KafkaStatus),
    );
  }
}
