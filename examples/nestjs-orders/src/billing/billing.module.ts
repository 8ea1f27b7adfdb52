import { Module } from '@nestjs/common';
import { BillingController } from './billing.controller';
import { BillingService } from './billing.service';
import { DeadLetterPublisher } from './dead-letter.publisher';

/** The billing consumer: Kafka in, charges in its own tables out. */
@Module({
  controllers: [BillingController],
  providers: [BillingService, DeadLetterPublisher],
  exports: [BillingService],
})
export class BillingModule {}
