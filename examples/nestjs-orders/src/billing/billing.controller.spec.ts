import { KafkaContext } from '@nestjs/microservices';
import { BillingController } from './billing.controller';
import { RetryLater } from './billing.errors';
import { BillingService } from './billing.service';

function context(offset: string) {
  const consumer = {
    pause: jest.fn(),
    seek: jest.fn(),
    resume: jest.fn(),
    commitOffsets: jest.fn().mockResolvedValue(undefined),
  };
  const message = {
    offset,
    key: Buffer.from('[42, "eu"]'),
    value: Buffer.from('{}'),
    headers: { 'x-tags': Buffer.from('[1, 2]') },
  };
  const ctx = new KafkaContext([
    message as never,
    2,
    'order.created',
    consumer as never,
    jest.fn() as never,
    {} as never,
  ]);
  return { ctx, consumer };
}

describe('BillingController', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('hands key and headers over as the bytes that arrived, and commits the next offset', async () => {
    const handle = jest.fn().mockResolvedValue('charged');
    const controller = new BillingController({
      handle,
    } as unknown as BillingService);
    const { ctx, consumer } = context('41');
    await controller.onOrderCreated(ctx);
    const [msg] = handle.mock.calls[0] as [
      { key: Buffer; headers: Record<string, Buffer> },
    ];
    expect(msg.key.equals(Buffer.from('[42, "eu"]'))).toBe(true);
    expect(msg.headers['x-tags'].equals(Buffer.from('[1, 2]'))).toBe(true);
    expect(consumer.commitOffsets).toHaveBeenCalledWith([
      { topic: 'order.created', partition: 2, offset: '42' },
    ]);
  });

  it('pauses only this partition, rewinds it, resumes after the delay, commits nothing', async () => {
    const handle = jest
      .fn()
      .mockRejectedValue(new RetryLater(500, 'suspended'));
    const controller = new BillingController({
      handle,
    } as unknown as BillingService);
    const { ctx, consumer } = context('41');
    await controller.onOrderCreated(ctx);
    const tp = [{ topic: 'order.created', partitions: [2] }];
    expect(consumer.pause).toHaveBeenCalledWith(tp);
    expect(consumer.seek).toHaveBeenCalledWith({
      topic: 'order.created',
      partition: 2,
      offset: '41',
    });
    expect(consumer.commitOffsets).not.toHaveBeenCalled();
    jest.advanceTimersByTime(499);
    expect(consumer.resume).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(consumer.resume).toHaveBeenCalledWith(tp);
  });

  it('lets other errors through, uncommitted, for kafkajs to deliver again', async () => {
    const handle = jest.fn().mockRejectedValue(new Error('connection refused'));
    const controller = new BillingController({
      handle,
    } as unknown as BillingService);
    const { ctx, consumer } = context('41');
    await expect(controller.onOrderCreated(ctx)).rejects.toThrow(
      'connection refused',
    );
    expect(consumer.commitOffsets).not.toHaveBeenCalled();
  });
});
