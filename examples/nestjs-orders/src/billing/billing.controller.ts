import { Controller } from '@nestjs/common';
import {
  Ctx,
  EventPattern,
  KafkaContext,
  Payload,
} from '@nestjs/microservices';
import { ORDER_CREATED_TOPIC } from '../config';
import { BillingService, IncomingMessage } from './billing.service';
import { DeadLetterPublisher } from './dead-letter.publisher';

/** A header value as the Kafka transport hands it over, as text. */
function headerText(v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'string') return v;
  // Nest's parser turns header values that look like JSON into objects
  return JSON.stringify(v);
}

@Controller()
export class BillingController {
  constructor(
    private readonly billing: BillingService,
    private readonly deadLetters: DeadLetterPublisher,
  ) {}

  /**
   * Every message of topic "order.created".  The transport runs with
   * autoCommit off and keepBinary on (see kafka-options.ts): the value
   * arrives as the raw bytes, and the offset is committed here, only after
   * the message's outcome is durable.  kafkajs hands us one message at a
   * time per partition, so an order's events are processed in order.
   */
  @EventPattern(ORDER_CREATED_TOPIC)
  async onOrderCreated(
    @Payload() payload: unknown,
    @Ctx() ctx: KafkaContext,
  ): Promise<void> {
    const message = ctx.getMessage();
    // For a tombstone Nest passes the whole message as the payload (its
    // deserializer falls back when the value is null): test the value.
    const value =
      message.value === null
        ? null
        : Buffer.isBuffer(payload)
          ? payload
          : message.value;
    const headers: Record<string, string> = {};
    for (const [name, v] of Object.entries(message.headers ?? {})) {
      if (v !== undefined) headers[name] = headerText(v);
    }
    const incoming: IncomingMessage = {
      topic: ctx.getTopic(),
      partition: ctx.getPartition(),
      offset: message.offset,
      key:
        message.key === null || message.key === undefined
          ? null
          : headerText(message.key),
      value,
      headers,
    };

    this.deadLetters.use(ctx.getProducer());
    await this.billing.handle(incoming, ctx.getHeartbeat());

    // The next offset to read, as Kafka expects it.  Until this commit a
    // restart delivers the message again - harmless, processed_events
    // remembers it.
    await ctx.getConsumer().commitOffsets([
      {
        topic: incoming.topic,
        partition: incoming.partition,
        offset: (BigInt(message.offset) + 1n).toString(),
      },
    ]);
  }
}
