/** SQLSTATEs after which the whole transaction may simply be run again. */
export const RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set([
  '40P01', // deadlock_detected
  '40001', // serialization_failure
]);

export function sqlState(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; driverError?: { code?: unknown } };
  // pg's DatabaseError has `code`; TypeORM wraps it in QueryFailedError.driverError
  const code = e.code ?? e.driverError?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)
    ? code
    : undefined;
}

export interface RetryOptions {
  /** total attempts, the first included */
  attempts: number;
  /** pause before the second attempt; doubled each time, with jitter */
  baseDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  onRetry?: (err: unknown, attempt: number) => void;
}

/**
 * Run `attempt` until it succeeds, fails with an error that is not a
 * deadlock or serialization failure, or `attempts` are used up (then the
 * last error is thrown: the exception filter answers 503 + Retry-After).
 * `attempt` must be a whole transaction: a deadlock rolls back everything.
 */
export async function retryTransaction<T>(
  attempt: () => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const {
    attempts,
    baseDelayMs = 10,
    maxDelayMs = 500,
    sleep = (ms) => new Promise<void>((r) => setTimeout(r, ms)),
  } = options;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const code = sqlState(err);
      if (n >= attempts || code === undefined || !RETRYABLE_SQLSTATES.has(code))
        throw err;
      options.onRetry?.(err, n);
      const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (n - 1));
      await sleep(ceiling / 2 + Math.random() * (ceiling / 2));
    }
  }
}
