import { eventIdentity } from './event-identity';

const uuid = '01937c6e-8f3a-7b2c-9d4e-5f6a7b8c9d0e';
const b = (s: string) => Buffer.from(s);

describe('eventIdentity', () => {
  it('uses outbox-event-id when the message has it', () => {
    expect(
      eventIdentity(
        { 'outbox-event-id': b(uuid), 'outbox-id': b('1') },
        'orders',
      ),
    ).toEqual({
      source: 'orders',
      eventId: uuid,
      outboxId: '1',
      fallback: false,
    });
  });

  it('falls back to outbox-id, in a namespace of its own, and says so', () => {
    expect(eventIdentity({ 'outbox-id': b('4711') }, 'orders')).toEqual({
      source: 'orders',
      eventId: 'outbox-id:4711',
      outboxId: '4711',
      fallback: true,
    });
  });

  it('tells apart the same outbox-id before and after the sequence restarted', () => {
    // DROP/CREATE EXTENSION: id 1 again, but a new outbox-event-id
    const before = eventIdentity(
      { 'outbox-event-id': b(uuid), 'outbox-id': b('1') },
      'orders',
    );
    const after = eventIdentity(
      {
        'outbox-event-id': b('01937c6f-0000-7000-8000-000000000001'),
        'outbox-id': b('1'),
      },
      'orders',
    );
    expect(before!.eventId).not.toBe(after!.eventId);
  });

  it.each([
    [{}],
    [{ 'outbox-id': b('12a') }],
    [{ 'outbox-event-id': b('not-a-uuid') }],
  ])('has none for %p', (headers) => {
    expect(eventIdentity(headers, 'orders')).toBeUndefined();
  });
});
