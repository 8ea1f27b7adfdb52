/**
 * A business rule refused the charge (no active billing account).  Such a
 * failure may clear up (the account is being set up), so it is retried a few
 * times before the message is dead-lettered.  Any other error - the
 * database is down, a bug - is not the message's fault: it is rethrown, the
 * offset is not committed, and kafkajs delivers the message again.
 */
export class BusinessRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BusinessRuleError';
  }
}

/**
 * Thrown by BillingService when a message's business rule failed and it
 * has attempts left: the caller (BillingController) pauses the partition,
 * seeks back to the message, and resumes after `delayMs`.  No sleep inside
 * the handler, so the other partitions keep flowing meanwhile.
 */
export class RetryLater extends Error {
  constructor(
    readonly delayMs: number,
    message: string,
  ) {
    super(message);
    this.name = 'RetryLater';
  }
}
