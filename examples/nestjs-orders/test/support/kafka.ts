/*
 * Test helpers around kafkajs: where a topic ends, where a consumer group
 * stands, moving a group's offsets (to replay a partition), reading topics.
 * They use only what a Kafka broker and librdkafka's mock cluster both
 * support (no DescribeGroups / admin.setOffsets: a member of the group
 * commits the offsets instead).
 */
import { Kafka, KafkaMessage, logLevel } from 'kafkajs';

export type Offsets = Map<number, bigint>;

export interface ReadMessage {
  topic: string;
  partition: number;
  offset: bigint;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

export function newKafka(brokers: string[]): Kafka {
  return new Kafka({
    clientId: 'e2e-test',
    brokers,
    logLevel: logLevel.ERROR,
    retry: { retries: 10, initialRetryTime: 100 },
  });
}

/** The next offset each partition of `topic` will get (its high watermark). */
export async function topicEnd(kafka: Kafka, topic: string): Promise<Offsets> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

/** The offsets `groupId` committed for `topic` (-1 where none). */
export async function groupOffsets(
  kafka: Kafka,
  groupId: string,
  topic: string,
): Promise<Offsets> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map(t.partitions.map((p) => [p.partition, BigInt(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Wait until the broker can serve consumer group `groupId`.  On a broker
 * that has just started, the first group request creates the internal
 * __consumer_offsets topic and is answered "coordinator is loading" for a
 * while; a consumer that joins then may crash and restart.
 */
export async function waitForGroupCoordinator(
  kafka: Kafka,
  groupId: string,
  topic: string,
  timeoutMs = 60_000,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await admin.fetchOffsets({ groupId, topics: [topic] });
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await admin.disconnect();
  }
}

/** Commit `offsets` for `groupId` by joining it briefly (the group's consumers must be stopped). */
export async function setGroupOffsets(
  kafka: Kafka,
  groupId: string,
  topic: string,
  offsets: Offsets,
): Promise<void> {
  const consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: 100,
    sessionTimeout: 6000,
    heartbeatInterval: 1000,
  });
  await consumer.connect();
  try {
    const joined = new Promise<void>((resolve) =>
      consumer.on(consumer.events.GROUP_JOIN, () => resolve()),
    );
    await consumer.subscribe({ topics: [topic] });
    await consumer.run({
      autoCommit: false,
      eachMessage: async () => {
        // never reached in practice; holding the partition is enough
        await new Promise((r) => setTimeout(r, 100));
      },
    });
    await joined;
    consumer.pause([{ topic }]);
    await consumer.commitOffsets(
      [...offsets].map(([partition, offset]) => ({
        topic,
        partition,
        offset: offset.toString(),
      })),
    );
  } finally {
    await consumer.disconnect();
  }
}

function text(v: Buffer | string | (Buffer | string)[] | undefined): string {
  if (Array.isArray(v)) return text(v[0]);
  return v === undefined ? '' : v.toString();
}

/**
 * Every message of `topics` from `from` (per topic, per partition; missing
 * partitions from 0) up to the topic ends at the time of the call.
 */
export async function readTopics(
  kafka: Kafka,
  from: Map<string, Offsets>,
  timeoutMs = 60_000,
): Promise<ReadMessage[]> {
  const topics = [...from.keys()];
  const ends = new Map<string, Offsets>();
  for (const t of topics) ends.set(t, await topicEnd(kafka, t));
  const remaining = new Set<string>();
  for (const [t, end] of ends) {
    for (const [p, high] of end)
      if (high > (from.get(t)?.get(p) ?? 0n)) remaining.add(`${t}/${p}`);
  }
  const out: ReadMessage[] = [];
  if (remaining.size === 0) return out;

  const consumer = kafka.consumer({
    groupId: `e2e-reader-${process.pid}-${Date.now()}`,
    maxWaitTimeInMs: 100,
    sessionTimeout: 6000,
    heartbeatInterval: 1000,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `timed out reading ${topics.join(', ')}; still waiting for ${[...remaining].join(', ')}`,
            ),
          ),
        timeoutMs,
      );
      void consumer.run({
        autoCommit: false,
        eachMessage: ({
          topic,
          partition,
          message,
        }: {
          topic: string;
          partition: number;
          message: KafkaMessage;
        }) => {
          const offset = BigInt(message.offset);
          if (
            offset >= (from.get(topic)?.get(partition) ?? 0n) &&
            offset < (ends.get(topic)?.get(partition) ?? 0n)
          ) {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(message.headers ?? {}))
              headers[k] = text(v);
            out.push({
              topic,
              partition,
              offset,
              key: message.key?.toString() ?? null,
              value: message.value,
              headers,
            });
          }
          if (offset + 1n >= (ends.get(topic)?.get(partition) ?? 0n))
            remaining.delete(`${topic}/${partition}`);
          if (remaining.size === 0) {
            clearTimeout(timer);
            resolve();
          }
          return Promise.resolve();
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return out.sort((a, b) =>
    a.topic === b.topic
      ? a.partition === b.partition
        ? Number(a.offset - b.offset)
        : a.partition - b.partition
      : a.topic < b.topic
        ? -1
        : 1,
  );
}

/** Call `check` every 100 ms until it returns true; fail after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
