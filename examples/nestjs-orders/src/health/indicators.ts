import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Pool } from 'pg';

/** up when `pool` answers SELECT 1 within `timeoutMs` */
@Injectable()
export class PostgresHealthIndicator {
  constructor(private readonly health: HealthIndicatorService) {}

  async check(key: string, pool: Pool, timeoutMs = 2000) {
    const indicator = this.health.check(key);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        pool.query('SELECT 1'),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
      return indicator.up();
    } catch (err) {
      return indicator.down({ message: (err as Error).message });
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface OutboxStatusRow {
  state: string | null;
  pending_events: string;
  oldest_pending_seconds: number | null;
  held_topics: string | null;
  last_error: string | null;
}

/**
 * The outbox's lag, from outbox.status (readable by pg_monitor, see
 * db/grants.sql): down when the oldest unpublished event is older than
 * `maxLagSeconds`, or the relay is in a state that publishes nothing.
 */
@Injectable()
export class OutboxHealthIndicator {
  constructor(private readonly health: HealthIndicatorService) {}

  async check(key: string, pool: Pool, maxLagSeconds: number) {
    const indicator = this.health.check(key);
    let row: OutboxStatusRow | undefined;
    try {
      const r = await pool.query<OutboxStatusRow>(
        `SELECT state, pending_events::text,
                extract(epoch FROM oldest_pending_age)::float8 AS oldest_pending_seconds,
                held_topics::text, last_error
           FROM outbox.status`,
      );
      row = r.rows[0];
    } catch (err) {
      return indicator.down({ message: (err as Error).message });
    }
    if (row === undefined) return indicator.down({ message: 'no relay' });
    const data = {
      state: row.state,
      pendingEvents: Number(row.pending_events),
      oldestPendingSeconds: row.oldest_pending_seconds ?? 0,
      heldTopics: Number(row.held_topics ?? 0),
      lastError: row.last_error,
    };
    const stuck = ['broker_unreachable', 'misconfigured', 'stopped'].includes(
      row.state ?? '',
    );
    return stuck || data.oldestPendingSeconds > maxLagSeconds
      ? indicator.down(data)
      : indicator.up(data);
  }
}
