import { Module } from '@nestjs/common';
import { OutboxService } from './outbox.service';

/**
 * OutboxService for any module that writes events: import OutboxModule,
 * inject OutboxService, call enqueue(tx, event) inside your transaction.
 * It holds no connection of its own - the caller's transaction is the
 * point - so it works with whatever pool, ORM or query builder you use.
 */
@Module({
  providers: [OutboxService],
  exports: [OutboxService],
})
export class OutboxModule {}
