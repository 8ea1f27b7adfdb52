import { BillingKafkaServer } from './kafka-server';

describe('BillingKafkaServer', () => {
  it('leaves key, value and headers as the bytes kafkajs received', () => {
    const server = new BillingKafkaServer({
      client: { brokers: ['127.0.0.1:9'] },
    });
    const message = {
      key: Buffer.from('[42, "eu"]'),
      value: Buffer.from('{"type": "x"}'),
      headers: {
        'x-tags': Buffer.from('[1, 2]'),
        'x-obj': Buffer.from('{"a": 1}'),
      },
    };
    const parsed = server['parser']!.parse<typeof message>(message);
    expect(parsed.key).toBe(message.key);
    expect(parsed.value).toBe(message.value);
    expect(parsed.headers['x-tags']).toBe(message.headers['x-tags']);
    expect(parsed.headers['x-obj']).toBe(message.headers['x-obj']);
  });
});
