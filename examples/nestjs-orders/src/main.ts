import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { billingKafkaOptions } from './billing/kafka-options';

/**
 * One process with both parts, for trying the example: the order service's
 * HTTP API (PORT, default 3000) and the billing consumer.  They share no
 * state but the databases; in production they are two deployments.
 */
async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  app.connectMicroservice(billingKafkaOptions(), { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.listen(process.env.PORT ?? 3000);
}
void bootstrap();
