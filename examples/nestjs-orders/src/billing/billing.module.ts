import { Module } from '@nestjs/common';
import { ClientsModule, Transport } from '@nestjs/microservices';
import { appConfig } from '../config/app.config';
import type { AppConfig } from '../config/app.config';
import { BillingController } from './billing.controller';
import { BillingService } from './billing.service';
import {
  DEAD_LETTER_CLIENT,
  DeadLetterPublisher,
} from './dead-letter.publisher';
import { billingKafkaOptions, deadLetterClientOptions } from './kafka-options';
import { BillingKafkaServer } from './kafka-server';

/**
 * The billing consumer: Kafka in, charges in its own tables out.  Needs
 * BILLING_POOL (DatabaseModule.billing(), imported by the root module).
 * BillingKafkaServer is the transport; the application passes it to
 * connectMicroservice({ strategy }) (billing.main.ts).
 */
@Module({
  imports: [
    ClientsModule.registerAsync([
      {
        name: DEAD_LETTER_CLIENT,
        inject: [appConfig.KEY],
        useFactory: (config: AppConfig) => ({
          transport: Transport.KAFKA,
          options: deadLetterClientOptions(config),
        }),
      },
    ]),
  ],
  controllers: [BillingController],
  providers: [
    BillingService,
    DeadLetterPublisher,
    {
      provide: BillingKafkaServer,
      inject: [appConfig.KEY],
      useFactory: (config: AppConfig) =>
        new BillingKafkaServer(billingKafkaOptions(config)),
    },
  ],
  exports: [BillingService, BillingKafkaServer],
})
export class BillingModule {}
