import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, KafkaContext } from '@nestjs/microservices';
import type { KafkaMessage } from 'kafkajs';
import { ORDER_CREATED_TOPIC } from '../config/app.config';
import { RetryLater } from './billing.errors';
import { BillingService, IncomingMessage } from './billing.service';

@Controller()
export class BillingController {
  constructor(private readonly billing: BillingService) {}

  /**
   * Every message of topic "order.created".  The transport
   * (BillingKafkaServer) hands over key, value and headers as the bytes
   * that arrived, and runs with autoCommit off: the offset is committed
   * here, only after the message's outcome is durable.  Partitions are
   * processed concurrently, each one a message at a time in offset order,
   * so an order's events are processed in order.  A message to be tried
   * again later pauses its own partition only (kafkajs fetches the next
   * batch of a broker only when every partition of the last one is done, so
   * a sleep here would stall them all).
   */
  @EventPattern(ORDER_CREATED_TOPIC)
  async onOrderCreated(@Ctx() ctx: KafkaContext): Promise<void> {
    // the message itself, not @Payload(): for a tombstone Nest's
    // deserializer passes the whole message as the payload
    const message: KafkaMessage = ctx.getMessage();
    const incoming: IncomingMessage = {
      topic: ctx.getTopic(),
      partition: ctx.getPartition(),
      offset: message.offset,
      key: message.key ?? null,
      value: message.value ?? null,
      headers: message.headers ?? {},
    };
    try {
      await this.billing.handle(incoming);
    } catch (err) {
      if (!(err instanceof RetryLater)) throw err;
      // Try this message again later without holding up the other
      // partitions: pause this one, rewind it to the message, resume after
      // the pause.  Nothing is committed meanwhile.
      const consumer = ctx.getConsumer();
      const partition = {
        topic: incoming.topic,
        partitions: [incoming.partition],
      };
      consumer.pause([partition]);
      consumer.seek({
        topic: incoming.topic,
        partition: incoming.partition,
        offset: message.offset,
      });
      setTimeout(() => consumer.resume([partition]), err.delayMs).unref();
      return;
    }

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
