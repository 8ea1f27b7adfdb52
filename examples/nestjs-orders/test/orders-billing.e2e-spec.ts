/*
 * End to end: HTTP -> order service -> PostgreSQL + outbox_kafka -> Kafka ->
 * billing -> charges, for both variants of billing side by side: the
 * hand-written kafkajs consumer (src/billing/, billing.charges) and the
 * inbox variant (db/inbox.sql: a PL/pgSQL handler that outbox_kafka's
 * inbox worker calls, billing_inbox.charges).
 *
 * Needs a PostgreSQL 15 where outbox_kafka is preloaded and publishes the
 * test database (DATABASE_URL, or the PG* variables), and the same Kafka
 * (KAFKA_BROKERS) that the relay publishes to, with topics "order.created"
 * and "order.created.dlq".  test/t/050_nestjs_orders.pl in the outbox_kafka
 * tree provides both.  Skipped when KAFKA_BROKERS is not set.
 *
 * It drops and re-creates the schemas "shop" and "billing".
 */
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Kafka, Partitioners } from 'kafkajs';
import { Pool } from 'pg';
import request from 'supertest';
import { App } from 'supertest/types';
import { createBillingApp } from '../src/billing.main';
import { BillingService } from '../src/billing/billing.service';
import { ORDER_CREATED_TOPIC } from '../src/config/app.config';
import { OrdersApiModule } from '../src/orders-api.module';
import { CreatedOrder } from '../src/orders/orders.service';
import { adminPool, resetSchema, urlAs } from './support/db';
import {
  inboxTotals,
  INBOX_SUBSCRIPTION,
  rewind,
  subscribeInboxAt,
  waitUntilInboxApplied,
} from './support/inbox';
import {
  Offsets,
  groupOffsets,
  newKafka,
  readTopics,
  setGroupOffsets,
  topicEnd,
  waitFor,
  waitForGroupCoordinator,
} from './support/kafka';

/** progress lines with the time since start, on stderr (Jest keeps stdout for results) */
const t0 = Date.now();
const step = (what: string) =>
  process.stderr.write(
    `[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`,
  );

const haveServices = !!process.env.KAFKA_BROKERS;
const DLQ = `${ORDER_CREATED_TOPIC}.dlq`;

(haveServices ? describe : describe.skip)(
  'orders -> outbox_kafka -> billing',
  () => {
    jest.setTimeout(100_000);

    let pool: Pool;
    let kafka: Kafka;
    let http: INestApplication<App>;
    let billing: INestApplication | undefined;
    let groupId: string;
    let topicStart: Offsets;
    let dlqStart: Offsets;

    /** committed orders: order id -> what they must be charged */
    const committed = new Map<
      string,
      { customerId: number; totalCents: number; reference: string }
    >();
    const rolledBack: string[] = [];

    /** The billing consumer as billing.main.ts runs it, as billing_app. */
    const startBilling = async () => {
      process.env.BILLING_DATABASE_URL = urlAs('billing_app');
      const app = await createBillingApp();
      await app.init();
      await app.startAllMicroservices();
      return app;
    };

    const billingService = () => billing!.get(BillingService);

    /** Wait until the relay published everything and billing committed every offset. */
    const waitUntilBilled = async () => {
      await waitFor('the relay to publish every committed event', async () => {
        const r = await pool.query<{ done: boolean }>(
          'SELECT pending_events = 0 AS done FROM outbox.status',
        );
        return r.rows[0]?.done === true;
      });
      const end = await topicEnd(kafka, ORDER_CREATED_TOPIC);
      await waitFor(
        'billing to commit the offsets of every message',
        async () => {
          const committedOffsets = await groupOffsets(
            kafka,
            groupId,
            ORDER_CREATED_TOPIC,
          );
          return [...end].every(
            ([p, high]) => (committedOffsets.get(p) ?? -1n) >= high,
          );
        },
      );
    };

    /** Wait until the relay published everything and the inbox applied it. */
    const waitUntilInboxBilled = async () => {
      await waitFor('the relay to publish every committed event', async () => {
        const r = await pool.query<{ done: boolean }>(
          'SELECT pending_events = 0 AS done FROM outbox.status',
        );
        return r.rows[0]?.done === true;
      });
      await waitUntilInboxApplied(pool, kafka, ORDER_CREATED_TOPIC);
    };

    /** billing_inbox.charges: order id -> its charges */
    const inboxCharges = async () => {
      const r = await pool.query<{
        order_id: string;
        customer_id: string;
        amount_cents: string;
        n: number;
      }>(
        `SELECT order_id, min(customer_id) AS customer_id,
                min(amount_cents) AS amount_cents, count(*)::int AS n
           FROM billing_inbox.charges GROUP BY order_id`,
      );
      return new Map(r.rows.map((c) => [c.order_id, c]));
    };

    /** Every committed order charged exactly once by the inbox variant, nothing else. */
    const expectInboxChargedOnce = async () => {
      const charges = await inboxCharges();
      expect(charges.size).toBe(committed.size);
      for (const [orderId, order] of committed) {
        const c = charges.get(orderId);
        expect(c).toBeDefined();
        expect(c!.n).toBe(1);
        expect(Number(c!.amount_cents)).toBe(order.totalCents);
        expect(Number(c!.customer_id)).toBe(order.customerId);
      }
    };

    const postOrder = (body: object) =>
      request(http.getHttpServer()).post('/orders').send(body);

    /** Create an order that must succeed; remember what it must be charged. */
    const createOrder = async (
      customerId: number,
      reference: string,
      lines: { sku: string; quantity: number }[],
    ) => {
      const res = await postOrder({
        customerId,
        reference,
        currency: 'EUR',
        lines,
      });
      expect(res.status).toBe(201);
      committed.set((res.body as CreatedOrder).orderId, {
        customerId,
        totalCents: (res.body as CreatedOrder).totalCents,
        reference,
      });
      return (res.body as CreatedOrder).orderId;
    };

    beforeAll(async () => {
      groupId = `billing-e2e-${process.pid}-${Date.now()}`;
      process.env.BILLING_GROUP_ID = groupId;
      process.env.BILLING_MAX_ATTEMPTS = '3';
      // long enough that a partition waiting between retries is noticed
      process.env.BILLING_RETRY_BACKOFF_MS = '1500';
      // a consumer restart rebalances sooner (librdkafka's mock cluster waits
      // about a session timeout before it admits a new member)
      process.env.BILLING_SESSION_TIMEOUT_MS = '6000';
      // the test is the owner; the applications run as orders_app and billing_app
      pool = adminPool();
      await resetSchema(pool);

      kafka = newKafka(process.env.KAFKA_BROKERS!.split(','));
      // events of other suites (orders-api.e2e-spec.ts) are in Kafka first
      await waitFor('the relay to publish earlier events', async () => {
        const r = await pool.query<{ done: boolean }>(
          'SELECT pending_events = 0 AS done FROM outbox.status',
        );
        return r.rows[0]?.done === true;
      });
      // Start the new group where the topic ends now: earlier runs' messages
      // are not this test's business.
      topicStart = await topicEnd(kafka, ORDER_CREATED_TOPIC);
      dlqStart = await topicEnd(kafka, DLQ);
      await waitForGroupCoordinator(kafka, groupId, ORDER_CREATED_TOPIC);
      await setGroupOffsets(kafka, groupId, ORDER_CREATED_TOPIC, topicStart);
      step('consumer group placed at the end of the topic');
      await subscribeInboxAt(pool, topicStart);
      step('inbox variant subscribed at the end of the topic');

      process.env.DATABASE_URL = urlAs('orders_app');
      const moduleRef = await Test.createTestingModule({
        imports: [OrdersApiModule],
      }).compile();
      http = moduleRef.createNestApplication();
      await http.init();
      delete process.env.DATABASE_URL;
      step('orders HTTP app ready');
      billing = await startBilling();
      step('billing consumer started');
    });

    afterAll(async () => {
      await billing?.close();
      await http?.close();
      await pool?.end();
    });

    it('publishes committed orders only, and billing charges each once', async () => {
      // committed orders, several at a time, of customers with an active account
      const batch: Promise<string>[] = [];
      for (let i = 1; i <= 12; i++) {
        const lines = [{ sku: 'apple', quantity: i }];
        if (i % 3 === 0) lines.push({ sku: 'pear', quantity: 1 });
        batch.push(createOrder(1 + (i % 4), `ok-${i}`, lines));
        if (batch.length === 4) await Promise.all(batch.splice(0));
      }

      // rolled back: the event was enqueued, then stock reservation failed
      for (const ref of ['short-1', 'short-2']) {
        const res = await postOrder({
          customerId: 1,
          reference: ref,
          currency: 'EUR',
          lines: [
            { sku: 'apple', quantity: 1 },
            { sku: 'rare-book', quantity: 2 },
          ],
        });
        expect(res.status).toBe(409);
        expect((res.body as { message: string }).message).toMatch(
          /not enough stock of "rare-book"/,
        );
        rolledBack.push(ref);
      }
      // rolled back: unknown product; and a reference that is taken
      let res = await postOrder({
        customerId: 2,
        reference: 'unknown-sku',
        currency: 'EUR',
        lines: [{ sku: 'plum', quantity: 1 }],
      });
      expect(res.status).toBe(400);
      rolledBack.push('unknown-sku');
      res = await postOrder({
        customerId: 2,
        reference: 'ok-1',
        currency: 'EUR',
        lines: [{ sku: 'pear', quantity: 1 }],
      });
      expect(res.status).toBe(409);
      // refused before any write
      res = await postOrder({
        customerId: 'two',
        reference: 'bad-body',
        currency: 'EUR',
        lines: [],
      });
      expect(res.status).toBe(400);
      rolledBack.push('bad-body');

      const { rows } = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM shop.orders WHERE reference = ANY($1)',
        [rolledBack],
      );
      expect(rows[0].n).toBe(0);
      const stock = await pool.query<{ stock: number }>(
        "SELECT stock FROM shop.products WHERE sku = 'rare-book'",
      );
      expect(stock.rows[0].stock).toBe(1);

      await waitUntilBilled();

      const charges = await pool.query<{
        order_id: string;
        customer_id: string;
        amount_cents: string;
      }>('SELECT order_id, customer_id, amount_cents FROM billing.charges');
      expect(charges.rowCount).toBe(committed.size);
      for (const c of charges.rows) {
        const order = committed.get(c.order_id);
        expect(order).toBeDefined();
        expect(Number(c.amount_cents)).toBe(order!.totalCents);
        expect(Number(c.customer_id)).toBe(order!.customerId);
      }
      expect(billingService().counts.charged).toBe(committed.size);
    });

    it('inbox variant: charges each committed order once, in the transaction of its offset', async () => {
      await waitUntilInboxBilled();
      await expectInboxChargedOnce();
      const totals = await inboxTotals(pool);
      expect(totals).toEqual({
        applied: committed.size,
        duplicates: 0,
        deadLetters: 0,
      });
      // the handler ran as the role that subscribed (db/inbox-subscribe.sql)
      const sub = await pool.query<{ owner: string; handler: string }>(
        'SELECT owner::text AS owner, handler::text AS handler FROM outbox.subscriptions WHERE subscription = $1',
        [INBOX_SUBSCRIPTION],
      );
      expect(sub.rows).toEqual([
        {
          owner: 'billing_inbox',
          handler: 'billing_inbox.bill_order(outbox.inbox_message)',
        },
      ]);
      // the offsets are in PostgreSQL, one row per partition, at the topic's end
      const stored = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM outbox.inbox_offset WHERE subscription = $1',
        [INBOX_SUBSCRIPTION],
      );
      expect(stored.rows[0].n).toBe(topicStart.size);
    });

    it('dead-letters poison messages and moves on; skips tombstones and unknown types', async () => {
      // business rule failures: the orders commit, billing cannot charge them
      const suspended = await createOrder(6, 'suspended-customer', [
        { sku: 'pear', quantity: 2 },
      ]);
      const noAccount = await createOrder(5, 'no-account', [
        { sku: 'pear', quantity: 1 },
      ]);
      committed.delete(suspended);
      committed.delete(noAccount);

      // messages no version of the order service sends, as another producer might
      const notJson = await enqueue(`'this is not JSON'::text`, `'poison-1'`);
      const badEvent = await enqueue(
        `'{"type": "order.created", "orderId": "nope"}'::jsonb`,
        `'poison-2'`,
      );
      // a composite key as outbox.capture writes it, and a header that looks
      // like JSON: both must reach the dead-letter topic byte for byte
      const compositeKey = '[42, "eu"]';
      const jsonLooking = await enqueue(
        `'{"type": "order.created", "orderId": "nope"}'::jsonb`,
        `'${compositeKey}', headers => '{"x-tags": "[1, 2]", "x-ctx": "{\\"a\\": 1}"}'`,
      );

      // for one committed order: an event type billing does not know, then a tombstone
      const [someOrder] = committed.keys();
      const unknownType = await enqueue(
        `jsonb_build_object('type', 'order.shipped', 'orderId', '${someOrder}')`,
        `'${someOrder}'`,
      );
      const tombstone = await enqueue('NULL::jsonb', `'${someOrder}'`);

      // the same order again under a new outbox-id, as
      // outbox.requeue_dead_letters() would send it
      const [, another] = committed.keys();
      const requeued = String(
        (
          await pool.query<{ id: string }>(
            `SELECT outbox.enqueue('order.created', jsonb_build_object(
                    'type', 'order.created', 'orderId', o.id, 'customerId', o.customer_id,
                    'reference', o.reference, 'currency', o.currency, 'totalCents', o.total_cents,
                    'lines', (SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity,
                                                                  'unitPriceCents', l.unit_price_cents) ORDER BY l.line_no)
                                FROM shop.order_lines l WHERE l.order_id = o.id),
                    'createdAt', o.created_at), key => o.id::text) AS id
             FROM shop.orders o WHERE o.id = $1`,
            [another],
          )
        ).rows[0].id,
      );

      await waitUntilBilled();

      const outcomes = await pool.query<{ outbox_id: string; outcome: string }>(
        'SELECT outbox_id, outcome FROM billing.processed_events',
      );
      const outcomeOf = new Map(
        outcomes.rows.map((r) => [r.outbox_id, r.outcome]),
      );
      expect(outcomeOf.get(notJson)).toBe('dead_lettered');
      expect(outcomeOf.get(badEvent)).toBe('dead_lettered');
      expect(outcomeOf.get(unknownType)).toBe('ignored');
      expect(outcomeOf.get(tombstone)).toBe('tombstone');
      expect(outcomeOf.get(requeued)).toBe('already_charged');

      const charged = await pool.query(
        'SELECT order_id FROM billing.charges WHERE order_id = ANY($1)',
        [[suspended, noAccount]],
      );
      expect(charged.rowCount).toBe(0);

      const dlq = (await readTopics(kafka, new Map([[DLQ, dlqStart]]))).filter(
        (m) => m.topic === DLQ,
      );
      const dlqById = new Map(dlq.map((m) => [m.headers['outbox-id'], m]));
      expect(dlq).toHaveLength(5);
      const composite = dlqById.get(jsonLooking)!;
      expect(composite.key).toBe(compositeKey);
      expect(composite.headers['x-tags']).toBe('[1, 2]');
      expect(composite.headers['x-ctx']).toBe('{"a": 1}');
      // the same key bytes hash to the same partition of the equally
      // partitioned dead-letter topic
      expect(String(composite.partition)).toBe(
        composite.headers['dlq-original-partition'],
      );
      const recorded = await pool.query<{ event_key: string }>(
        'SELECT event_key FROM billing.processed_events WHERE outbox_id = $1',
        [jsonLooking],
      );
      expect(recorded.rows).toEqual([{ event_key: compositeKey }]);
      expect(dlqById.get(notJson)?.headers['dlq-reason']).toBe(
        'invalid-payload',
      );
      expect(dlqById.get(notJson)?.headers['dlq-error']).toMatch(/not JSON/);
      expect(dlqById.get(notJson)?.value?.toString()).toBe('this is not JSON');
      expect(dlqById.get(notJson)?.key).toBe('poison-1');
      expect(dlqById.get(badEvent)?.headers['dlq-error']).toMatch(/orderId/);
      const business = dlq.filter(
        (m) => m.headers['dlq-reason'] === 'business-rule',
      );
      expect(business.map((m) => m.key).sort()).toEqual(
        [suspended, noAccount].sort(),
      );
      for (const m of business) {
        expect(m.headers['dlq-attempts']).toBe('3');
        expect(m.headers['dlq-original-topic']).toBe(ORDER_CREATED_TOPIC);
        expect(m.headers['content-type']).toBe('application/json');
        expect(m.headers['outbox-created-at']).toMatch(/^\d{4}-\d\d-\d\dT/);
      }
      expect(
        business.find((m) => m.key === suspended)?.headers['dlq-error'],
      ).toMatch(/suspended/);
      expect(
        business.find((m) => m.key === noAccount)?.headers['dlq-error'],
      ).toMatch(/no billing account/);

      // per order, billing saw the events in the order they were committed
      const seen = await pool.query<{ outbox_id: string }>(
        'SELECT outbox_id FROM billing.processed_events WHERE event_key = $1 ORDER BY seq',
        [someOrder],
      );
      const ids = seen.rows.map((r) => BigInt(r.outbox_id));
      expect(ids).toHaveLength(3);
      expect([...ids].sort((a, b) => (a < b ? -1 : 1))).toEqual(ids);
      expect(seen.rows.map((r) => outcomeOf.get(r.outbox_id))).toEqual([
        'charged',
        'ignored',
        'tombstone',
      ]);
    });

    it('inbox variant: moves poison messages to outbox.inbox_dead_letter after 3 attempts and moves on', async () => {
      await waitUntilInboxBilled();
      // the two business rule failures are not charged, the requeued copy
      // of an order is not charged again, tombstones and unknown types
      // charge nothing
      await expectInboxChargedOnce();

      const business = await pool.query<{ id: string; reference: string }>(
        "SELECT id::text AS id, reference FROM shop.orders WHERE reference IN ('suspended-customer', 'no-account')",
      );
      const orderOf = new Map(business.rows.map((r) => [r.reference, r.id]));
      const { rows } = await pool.query<{
        key: string;
        value: Buffer | null;
        headers: Record<string, string | null>;
        error: string;
        sqlstate: string;
        attempts: number;
        partition: number;
        offset: string;
      }>(
        `SELECT convert_from(key, 'UTF8') AS key, value, headers, error, sqlstate,
                attempts, "partition", "offset"
           FROM outbox.inbox_dead_letter WHERE subscription = $1 ORDER BY id`,
        [INBOX_SUBSCRIPTION],
      );
      const byKey = new Map(rows.map((r) => [r.key, r]));
      const expectDeadLetter = (
        r: { sqlstate: string; error: string } | undefined,
        sqlstate: string,
        error: RegExp,
      ) => {
        expect(r?.sqlstate).toBe(sqlstate);
        expect(r?.error).toMatch(error);
      };
      expect([...byKey.keys()].sort()).toEqual(
        [
          'poison-1',
          'poison-2',
          '[42, "eu"]',
          orderOf.get('suspended-customer'),
          orderOf.get('no-account'),
        ].sort(),
      );
      for (const r of rows) expect(r.attempts).toBe(3);
      expectDeadLetter(
        byKey.get('poison-1'),
        '22P02',
        /invalid input syntax for type json/,
      );
      expect(byKey.get('poison-1')!.value?.toString()).toBe('this is not JSON');
      expectDeadLetter(
        byKey.get('poison-2'),
        '22023',
        /invalid order\.created event/,
      );
      // key, value and headers as they were in Kafka
      const composite = byKey.get('[42, "eu"]')!;
      expect(composite.headers['x-tags']).toBe('[1, 2]');
      expect(composite.headers['x-ctx']).toBe('{"a": 1}');
      expect(composite.headers['outbox-event-id']).toMatch(/^[0-9a-f-]{36}$/);
      expectDeadLetter(
        byKey.get(orderOf.get('suspended-customer')!),
        'P0001',
        /suspended/,
      );
      expectDeadLetter(
        byKey.get(orderOf.get('no-account')!),
        'P0001',
        /no billing account/,
      );

      // nothing skipped: every message since the start was applied or dead-lettered
      const end = await topicEnd(kafka, ORDER_CREATED_TOPIC);
      const published = [...end].reduce(
        (sum, [p, high]) => sum + Number(high - (topicStart.get(p) ?? 0n)),
        0,
      );
      const totals = await inboxTotals(pool);
      expect(totals.duplicates).toBe(0);
      expect(totals.deadLetters).toBe(5);
      expect(totals.applied + totals.deadLetters).toBe(published);
    });

    it('charges nobody twice when the partition is replayed after a restart', async () => {
      const processedBefore = Number(
        (
          await pool.query<{ n: string }>(
            'SELECT count(*) AS n FROM billing.processed_events',
          )
        ).rows[0].n,
      );

      // The consumer stops; orders keep coming in meanwhile.
      step('stopping billing');
      await billing!.close();
      billing = undefined;
      step('billing stopped');
      for (let i = 1; i <= 3; i++)
        await createOrder(i, `while-down-${i}`, [
          { sku: 'apple', quantity: 1 },
        ]);

      // Replay: as if the consumer had crashed before committing any offset.
      await setGroupOffsets(kafka, groupId, ORDER_CREATED_TOPIC, topicStart);
      step('group offsets moved back');
      billing = await startBilling();
      step('billing started again');
      await waitUntilBilled();
      step('replay billed');

      const counts = billingService().counts;
      expect(counts.duplicate).toBe(processedBefore);
      expect(counts.charged).toBe(3);
      expect(counts.dead_lettered).toBe(0);

      const charges = await pool.query<{ order_id: string; n: number }>(
        'SELECT order_id, count(*)::int AS n FROM billing.charges GROUP BY order_id',
      );
      expect(charges.rowCount).toBe(committed.size);
      for (const c of charges.rows) {
        expect(committed.has(c.order_id)).toBe(true);
        expect(c.n).toBe(1);
      }

      // nothing new in the dead-letter topic
      expect((await topicEnd(kafka, DLQ)).size).toBe(dlqStart.size);
      const dlqCount = [...(await topicEnd(kafka, DLQ))].reduce(
        (s, [p, high]) => s + Number(high - (dlqStart.get(p) ?? 0n)),
        0,
      );
      expect(dlqCount).toBe(5);

      // What Kafka holds: every committed order once (plus the requeued copy),
      // no rolled-back order, and per key the outbox ids in offset order.
      const msgs = (
        await readTopics(kafka, new Map([[ORDER_CREATED_TOPIC, topicStart]]))
      ).filter((m) => m.topic === ORDER_CREATED_TOPIC);
      const refs = msgs.map((m) => {
        try {
          return (
            JSON.parse(m.value?.toString() ?? 'null') as {
              reference?: string;
            } | null
          )?.reference;
        } catch {
          return undefined; // the poison message
        }
      });
      for (const ref of rolledBack) expect(refs).not.toContain(ref);
      for (const order of committed.values())
        expect(refs).toContain(order.reference);
      const lastIdOfKey = new Map<string, bigint>();
      for (const m of msgs) {
        const id = BigInt(m.headers['outbox-id']);
        const key = m.key ?? '';
        expect(id > (lastIdOfKey.get(key) ?? 0n)).toBe(true);
        lastIdOfKey.set(key, id);
      }
    });

    it('inbox variant: charges nobody twice when rewound to where the test started', async () => {
      // the orders taken while the hand-written consumer was down, too
      await waitUntilInboxBilled();
      await expectInboxChargedOnce();
      const before = await inboxTotals(pool);

      await rewind(pool, topicStart);
      step('inbox rewound');
      await waitUntilInboxBilled();
      step('inbox replay applied');

      await expectInboxChargedOnce();
      const after = await inboxTotals(pool);
      // every message applied before is now skipped on its de-duplication
      // record, without calling the handler
      expect(after.applied).toBe(before.applied);
      expect(after.duplicates - before.duplicates).toBe(before.applied);
      // Dead-lettered messages have no de-duplication record: a rewind
      // tries them again (after a fix it would apply them); here they fail
      // again and are dead-lettered again.
      expect(after.deadLetters).toBeGreaterThanOrEqual(before.deadLetters);
    });

    it('processes other partitions while one waits between retries', async () => {
      // two orders on different partitions: the first for a suspended
      // customer (retried with pauses, then dead-lettered), the second fine
      const partitionOf = (key: string) =>
        Partitioners.DefaultPartitioner()({
          topic: ORDER_CREATED_TOPIC,
          partitionMetadata: [0, 1, 2].map((partitionId) => ({
            partitionId,
            leader: 0,
            replicas: [0],
            isr: [0],
            partitionErrorCode: 0,
          })),
          message: { key, value: null },
        });
      const ids = Array.from({ length: 20 }, () => crypto.randomUUID());
      const stuck = ids[0];
      const other = ids.find((id) => partitionOf(id) !== partitionOf(stuck))!;
      const event = (orderId: string, customerId: number) =>
        JSON.stringify({
          type: 'order.created',
          orderId,
          customerId,
          reference: `partition-${orderId}`,
          currency: 'EUR',
          totalCents: 250,
          lines: [{ sku: 'apple', quantity: 1, unitPriceCents: 250 }],
          createdAt: new Date().toISOString(),
        });
      await pool.query(
        "SELECT outbox.enqueue('order.created', $1::jsonb, key => $2)",
        [event(stuck, 6), stuck],
      );
      await pool.query(
        "SELECT outbox.enqueue('order.created', $1::jsonb, key => $2)",
        [event(other, 1), other],
      );

      await waitFor(
        'the order on the other partition to be charged',
        async () =>
          (
            await pool.query(
              'SELECT 1 FROM billing.charges WHERE order_id = $1',
              [other],
            )
          ).rowCount === 1,
      );
      // ...while the first is still between its retries
      const first = await pool.query(
        'SELECT 1 FROM billing.processed_events WHERE event_key = $1',
        [stuck],
      );
      expect(first.rowCount).toBe(0);
      await waitUntilBilled();
      const outcome = await pool.query<{ outcome: string }>(
        'SELECT outcome FROM billing.processed_events WHERE event_key = $1',
        [stuck],
      );
      expect(outcome.rows).toEqual([{ outcome: 'dead_lettered' }]);

      // the inbox variant: the same two messages, each partition on its own
      await waitUntilInboxBilled();
      const charged = await pool.query<{ order_id: string }>(
        'SELECT order_id FROM billing_inbox.charges WHERE order_id = ANY($1)',
        [[stuck, other]],
      );
      expect(charged.rows).toEqual([{ order_id: other }]);
      const parked = await pool.query<{ attempts: number }>(
        `SELECT attempts FROM outbox.inbox_dead_letter
          WHERE subscription = $1 AND key = convert_to($2, 'UTF8')`,
        [INBOX_SUBSCRIPTION, stuck],
      );
      expect(parked.rows).toEqual([{ attempts: 3 }]);
      committed.set(other, {
        customerId: 1,
        totalCents: 250,
        reference: `partition-${other}`,
      });
    });

    it('both variants charge a redelivered event once (the same outbox-event-id produced twice)', async () => {
      await waitUntilBilled();
      await waitUntilInboxBilled();
      // a committed order's message, produced again as an at-least-once
      // producer does after a lost acknowledgement: same partition, key,
      // value and headers (outbox-event-id among them)
      const [orderId] = committed.keys();
      const original = (
        await readTopics(kafka, new Map([[ORDER_CREATED_TOPIC, topicStart]]))
      ).find((m) => m.topic === ORDER_CREATED_TOPIC && m.key === orderId)!;
      expect(original.headers['outbox-event-id']).toMatch(/^[0-9a-f-]{36}$/);
      const handWrittenBefore = { ...billingService().counts };
      const inboxBefore = await inboxTotals(pool);

      const producer = kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      try {
        await producer.send({
          topic: ORDER_CREATED_TOPIC,
          messages: [
            {
              partition: original.partition,
              key: original.key,
              value: original.value,
              headers: original.headers,
            },
          ],
        });
      } finally {
        await producer.disconnect();
      }
      step('event produced again');

      await waitUntilBilled();
      const counts = billingService().counts;
      expect(counts.duplicate).toBe(handWrittenBefore.duplicate + 1);
      expect(counts.charged).toBe(handWrittenBefore.charged);
      const handWritten = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM billing.charges WHERE order_id = $1',
        [orderId],
      );
      expect(handWritten.rows[0].n).toBe(1);

      await waitUntilInboxBilled();
      const inboxAfter = await inboxTotals(pool);
      expect(inboxAfter.duplicates).toBe(inboxBefore.duplicates + 1);
      expect(inboxAfter.applied).toBe(inboxBefore.applied);
      await expectInboxChargedOnce();
    });

    async function enqueue(
      payloadSql: string,
      keySql: string,
    ): Promise<string> {
      const r = await pool.query<{ id: string }>(
        `SELECT outbox.enqueue('${ORDER_CREATED_TOPIC}', ${payloadSql}, key => ${keySql}) AS id`,
      );
      return String(r.rows[0].id);
    }
  },
);
