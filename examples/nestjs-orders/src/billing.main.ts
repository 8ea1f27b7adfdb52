import { INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BillingAppModule } from './billing-app.module';
import { BillingKafkaServer } from './billing/kafka-server';
import { appConfig } from './config/app.config';
import type { AppConfig } from './config/app.config';

/**
 * Create the billing consumer: the Kafka consumer as a microservice of a
 * small HTTP application that serves GET /health.  Used by bootstrap()
 * below and by the end-to-end test.
 */
export async function createBillingApp(): Promise<INestApplication> {
  const app = await NestFactory.create(BillingAppModule, {
    abortOnError: false,
  });
  app.connectMicroservice({ strategy: app.get(BillingKafkaServer) });
  // SIGTERM/SIGINT: kafkajs finishes the message in hand and leaves the
  // group, the dead-letter producer disconnects, the pool closes
  app.enableShutdownHooks();
  return app;
}

/** Entry point of the billing consumer (`npm run start:billing`). */
async function bootstrap(): Promise<void> {
  const app = await createBillingApp();
  const config = app.get<AppConfig>(appConfig.KEY);
  // health first: it reports the consumer down while Kafka is unreachable
  await app.listen(config.billingPort);
  await app.startAllMicroservices();
  new Logger('Billing').log(
    `billing consumer in group "${config.billingGroupId}"; health on port ${config.billingPort}`,
  );
}

if (require.main === module) {
  bootstrap().catch((err: Error) => {
    console.error(
      `billing consumer failed to start: ${err.stack ?? String(err)}`,
    );
    process.exit(1);
  });
}
