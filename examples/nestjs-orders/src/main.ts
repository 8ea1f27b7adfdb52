import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { appConfig, AppConfig } from './config/app.config';
import { OrdersApiModule } from './orders-api.module';

/**
 * Entry point of the order API (`npm run start:orders`).  It needs
 * PostgreSQL only: Kafka can be down, the relay inside PostgreSQL publishes
 * once it is back.  The billing consumer is another process
 * (src/billing.main.ts).
 */
async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(OrdersApiModule, {
    abortOnError: false, // let bootstrap().catch() report it
  });
  // SIGTERM/SIGINT: stop accepting, finish requests, close the pool
  app.enableShutdownHooks();
  const config = app.get<AppConfig>(appConfig.KEY);
  await app.listen(config.port);
  new Logger('OrdersApi').log(`order API listening on port ${config.port}`);
}

bootstrap().catch((err: Error) => {
  console.error(`order API failed to start: ${err.stack ?? String(err)}`);
  process.exit(1);
});
