import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Subscription } from 'rxjs';
import { BillingKafkaServer } from '../billing/kafka-server';

/**
 * The billing consumer's state, from the transport's status stream: up
 * while it is connected (or rebalancing), down before it first joined its
 * group and after it crashed, stopped or disconnected.
 */
@Injectable()
export class ConsumerHealthIndicator implements OnModuleDestroy {
  private status = 'not started';
  private readonly subscription: Subscription;

  constructor(
    private readonly health: HealthIndicatorService,
    server: BillingKafkaServer,
  ) {
    this.subscription = server.status.subscribe((s) => (this.status = s));
  }

  check(key: string) {
    const indicator = this.health.check(key);
    return ['connected', 'rebalancing'].includes(this.status)
      ? indicator.up({ state: this.status })
      : indicator.down({ state: this.status });
  }

  onModuleDestroy(): void {
    this.subscription.unsubscribe();
  }
}
