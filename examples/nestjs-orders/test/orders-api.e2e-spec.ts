/*
 * The order API against PostgreSQL alone (no Kafka): run as the non-owner
 * role orders_app with db/grants.sql, concurrent orders, a server that
 * drops its connections, the entry point with Kafka unreachable, and the
 * OutboxService recipes for pg, TypeORM and Kysely.
 *
 * Needs a PostgreSQL 15 with outbox_kafka installed in the test database
 * (DATABASE_URL or the PG* variables), as a user who can create roles and
 * schemas.  Skipped without DATABASE_URL / PGDATABASE.  It drops and
 * re-creates the schemas "shop" and "billing".
 */
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ChildProcess, spawn } from 'child_process';
import { Kysely, PostgresDialect } from 'kysely';
import { createServer } from 'net';
import { join } from 'path';
import { Pool } from 'pg';
import request from 'supertest';
import { App } from 'supertest/types';
import { DataSource } from 'typeorm';
import { ORDERS_POOL } from '../src/database/database.module';
import { OrdersApiModule } from '../src/orders-api.module';
import { outboxTopic } from '../src/outbox/outbox-event';
import { OutboxService } from '../src/outbox/outbox.service';
import { CreatedOrder } from '../src/orders/orders.service';
import { adminPool, haveDatabase, resetSchema, urlAs } from './support/db';
import { waitFor } from './support/kafka';

(haveDatabase ? describe : describe.skip)('order API on PostgreSQL', () => {
  jest.setTimeout(60_000);

  let admin: Pool;
  let app: INestApplication<App>;

  beforeAll(async () => {
    admin = adminPool();
    await resetSchema(admin);
  });

  afterAll(async () => {
    await app?.close();
    await admin?.end();
  });

  /** The order API as the application runs it: as orders_app. */
  const startApi = async () => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = urlAs('orders_app');
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [OrdersApiModule],
      }).compile();
      const api = moduleRef.createNestApplication<INestApplication<App>>();
      await api.init();
      return api;
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
  };

  const order = (reference: string, lines: object[], customerId = 1) =>
    request(app.getHttpServer())
      .post('/orders')
      .send({ customerId, reference, currency: 'EUR', lines });

  it('takes orders as the non-owner role orders_app, with db/grants.sql', async () => {
    app = await startApi();
    const pool = app.get<Pool>(ORDERS_POOL);
    const who = await pool.query<{ u: string; owner: boolean }>(
      `SELECT current_user AS u,
              pg_has_role(current_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'shop'), 'USAGE') AS owner`,
    );
    expect(who.rows[0]).toEqual({ u: 'orders_app', owner: false });

    const res = await order('grants-1', [{ sku: 'apple', quantity: 1 }]);
    expect(res.status).toBe(201);
    const created = res.body as CreatedOrder;
    const ev = await admin.query<{ payload_kind: string; key: string }>(
      'SELECT payload_kind, key FROM outbox.event WHERE id = $1',
      [created.eventId],
    );
    // enqueued as jsonb: published with content-type application/json
    expect(ev.rows[0]).toEqual({ payload_kind: 'j', key: created.orderId });

    // the role owns nothing and reaches nothing else
    await expect(pool.query('DROP TABLE shop.orders')).rejects.toMatchObject({
      code: '42501',
    });
    await expect(
      pool.query('SELECT * FROM billing.charges'),
    ).rejects.toMatchObject({ code: '42501' });
  });

  it('refuses what the DTO does not allow with 400, converting nothing', async () => {
    for (const lines of [
      [{ sku: 'apple', quantity: '2' }],
      [{ sku: 'apple', quantity: 2, price: 1 }],
      [],
    ]) {
      const res = await order('bad-lines', lines);
      expect(res.status).toBe(400);
    }
    const n = await admin.query(
      "SELECT 1 FROM shop.orders WHERE reference = 'bad-lines'",
    );
    expect(n.rowCount).toBe(0);
  });

  it('answers 120 concurrent orders with opposite line orders without a 500', async () => {
    const before = await admin.query<{ sku: string; stock: number }>(
      "SELECT sku, stock FROM shop.products WHERE sku IN ('apple', 'pear') ORDER BY sku",
    );
    const responses = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        order(
          `concurrent-${i}`,
          i % 2 === 0
            ? [
                { sku: 'apple', quantity: 1 },
                { sku: 'pear', quantity: 1 },
              ]
            : [
                { sku: 'pear', quantity: 1 },
                { sku: 'apple', quantity: 1 },
              ],
        ),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    const after = await admin.query<{ sku: string; stock: number }>(
      "SELECT sku, stock FROM shop.products WHERE sku IN ('apple', 'pear') ORDER BY sku",
    );
    expect(after.rows.map((r) => r.stock)).toEqual(
      before.rows.map((r) => r.stock - 120),
    );
  });

  it('keeps serving after PostgreSQL terminated its connections (57P01)', async () => {
    const pool = app.get<Pool>(ORDERS_POOL);
    expect(pool.idleCount).toBeGreaterThan(0);
    const killed = await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'orders_app'",
    );
    expect(killed.rowCount).toBeGreaterThan(0);
    // the pool notices (an 'error' per idle client, which must not crash us)
    await waitFor('the pool to drop the dead connections', () =>
      Promise.resolve(pool.idleCount === 0),
    );
    const res = await order('after-restart', [{ sku: 'pear', quantity: 1 }]);
    expect(res.status).toBe(201);
  });

  it('serves GET /health from the database, and the outbox lag on /health/outbox', async () => {
    type Health = { details: Record<string, { status: string }> };
    const health = await request(app.getHttpServer()).get('/health');
    expect(health.status).toBe(200);
    expect((health.body as Health).details.database.status).toBe('up');
    // up or down depends on the relay; either way it reports the backlog
    const lag = await request(app.getHttpServer()).get('/health/outbox');
    expect([200, 503]).toContain(lag.status);
    expect((lag.body as Health).details.outbox).toHaveProperty('pendingEvents');
  });

  describe('OutboxService recipes (in the caller\u2019s transaction)', () => {
    const Recipe = outboxTopic<{ recipe: string; n: number }>('order.created');
    const outbox = new OutboxService();
    const kindOf = async (id: string) =>
      (
        await admin.query<{ payload_kind: string; headers: object }>(
          'SELECT payload_kind, headers FROM outbox.event WHERE id = $1',
          [id],
        )
      ).rows[0];
    const traceparent =
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

    it('pg: a PoolClient between BEGIN and COMMIT', async () => {
      const pool = new Pool({ connectionString: urlAs('orders_app') });
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const id = await outbox.enqueue(
          client,
          Recipe.event(
            { recipe: 'pg', n: 1 },
            { key: 'r-pg', headers: { traceparent } },
          ),
        );
        await client.query('COMMIT');
        expect(await kindOf(id)).toEqual({
          payload_kind: 'j',
          headers: { traceparent },
        });
      } finally {
        client.release();
        await pool.end();
      }
    });

    it('TypeORM: the EntityManager of dataSource.transaction()', async () => {
      const ds = new DataSource({ type: 'postgres', url: urlAs('orders_app') });
      await ds.initialize();
      try {
        const id = await ds.transaction((manager) =>
          outbox.enqueue(
            manager,
            Recipe.event({ recipe: 'typeorm', n: 2 }, { key: 'r-typeorm' }),
          ),
        );
        expect((await kindOf(id)).payload_kind).toBe('j');
        // rolled back: the event goes with it
        let rolledBack = '';
        await expect(
          ds.transaction(async (manager) => {
            rolledBack = await outbox.enqueue(
              manager,
              Recipe.event({ recipe: 'typeorm', n: 3 }),
            );
            throw new Error('business rule failed');
          }),
        ).rejects.toThrow('business rule failed');
        expect(await kindOf(rolledBack)).toBeUndefined();
      } finally {
        await ds.destroy();
      }
    });

    it('Kysely: the Transaction of db.transaction().execute()', async () => {
      const db = new Kysely<object>({
        dialect: new PostgresDialect({
          pool: new Pool({ connectionString: urlAs('orders_app') }),
        }),
      });
      try {
        const id = await db
          .transaction()
          .execute((trx) =>
            outbox.enqueue(
              trx,
              Recipe.event({ recipe: 'kysely', n: 4 }, { key: 'r-kysely' }),
            ),
          );
        expect((await kindOf(id)).payload_kind).toBe('j');
      } finally {
        await db.destroy();
      }
    });

    it('the pitfall: untyped parameters pick the text variant (no content-type)', async () => {
      const r = await admin.query<{ id: string }>(
        'SELECT outbox.enqueue($1, $2) AS id',
        ['order.created', JSON.stringify({ recipe: 'untyped' })],
      );
      expect((await kindOf(r.rows[0].id)).payload_kind).toBe('t');
    });
  });

  describe('entry point src/main.ts', () => {
    let child: ChildProcess | undefined;
    afterEach(() => {
      if (child && child.exitCode === null) child.kill('SIGKILL');
    });

    const freePort = () =>
      new Promise<number>((resolve) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const { port } = s.address() as { port: number };
          s.close(() => resolve(port));
        });
      });

    const startMain = (env: NodeJS.ProcessEnv) => {
      let output = '';
      const proc = spawn(
        process.execPath,
        ['-r', 'ts-node/register/transpile-only', join('src', 'main.ts')],
        {
          cwd: join(__dirname, '..'),
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | string | null>((resolve) =>
        proc.on('exit', (code, signal) => resolve(code ?? signal)),
      );
      return { proc, exited, output: () => output };
    };

    it('takes orders with Kafka unreachable, and stops cleanly on SIGTERM', async () => {
      const port = await freePort();
      const main = startMain({
        DATABASE_URL: urlAs('orders_app'),
        KAFKA_BROKERS: '127.0.0.1:9', // nothing listens there
        PORT: String(port),
      });
      child = main.proc;
      const url = `http://127.0.0.1:${port}`;
      await waitFor(
        'the order API to listen',
        async () => {
          if (main.proc.exitCode !== null)
            throw new Error(`exited: ${main.output()}`);
          try {
            return (await request(url).get('/health')).status === 200;
          } catch {
            return false;
          }
        },
        30_000,
      );
      const res = await request(url)
        .post('/orders')
        .send({
          customerId: 1,
          reference: 'kafka-down-1',
          currency: 'EUR',
          lines: [{ sku: 'apple', quantity: 1 }],
        });
      expect(res.status).toBe(201);
      // Nest closes the app (enableShutdownHooks), then ends with the signal
      main.proc.kill('SIGTERM');
      expect(await main.exited).toBe('SIGTERM');
      expect(main.output()).not.toMatch(/ERROR/);
    });

    it('exits non-zero with a message when it cannot start', async () => {
      const main = startMain({ PORT: 'not-a-port' });
      child = main.proc;
      expect(await main.exited).toBe(1);
      expect(main.output()).toMatch(
        /order API failed to start: .*invalid configuration/s,
      );
      expect(main.output()).toMatch(/PORT/);
    });
  });
});
