import { outboxTopic } from './outbox-event';
import { ENQUEUE_SQL, OutboxService } from './outbox.service';

interface Payload {
  orderId: string;
  lines: number[];
}
const OrderPlaced = outboxTopic<Payload>('order.placed');

describe('OutboxService.enqueue', () => {
  const outbox = new OutboxService();

  it('casts every parameter, so the jsonb variant is chosen', () => {
    expect(ENQUEUE_SQL).toMatch(
      /\$1::text, \$2::jsonb, key => \$3::text, headers => \$4::jsonb/,
    );
  });

  it('sends the payload as JSON text (not as a PostgreSQL array) through pg', async () => {
    const query = jest.fn().mockResolvedValue({ rows: [{ id: '42' }] });
    const id = await outbox.enqueue(
      { query },
      OrderPlaced.event(
        { orderId: 'o-1', lines: [1, 2] },
        {
          key: 'o-1',
          headers: { traceparent: '00-abc-def-01', tracestate: undefined },
        },
      ),
    );
    expect(id).toBe('42');
    expect(query).toHaveBeenCalledWith(ENQUEUE_SQL, [
      'order.placed',
      '{"orderId":"o-1","lines":[1,2]}',
      'o-1',
      '{"traceparent":"00-abc-def-01"}',
    ]);
  });

  it('enqueues a tombstone for a null payload, no headers for none', async () => {
    const query = jest
      .fn<Promise<{ rows: object[] }>, [string, unknown[]]>()
      .mockResolvedValue({ rows: [{ id: '7' }] });
    await outbox.enqueue({ query }, OrderPlaced.event(null, { key: 'o-1' }));
    expect(query.mock.calls[0][1]).toEqual(['order.placed', null, 'o-1', null]);
  });

  it('takes the rows TypeORM returns', async () => {
    const query = jest.fn().mockResolvedValue([{ id: '8' }]);
    await expect(
      outbox.enqueue({ query }, OrderPlaced.event(null)),
    ).resolves.toBe('8');
  });

  it('runs through a Kysely transaction as a raw query', async () => {
    const executeQuery = jest
      .fn<Promise<{ rows: object[] }>, [unknown]>()
      .mockResolvedValue({ rows: [{ id: '9' }] });
    await expect(
      outbox.enqueue(
        { executeQuery },
        OrderPlaced.event({ orderId: 'x', lines: [] }),
      ),
    ).resolves.toBe('9');
    expect(executeQuery.mock.calls[0][0]).toMatchObject({
      sql: ENQUEUE_SQL,
      parameters: ['order.placed', '{"orderId":"x","lines":[]}', null, null],
    });
  });
});
