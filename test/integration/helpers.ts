/**
 * Shared pieces of the integration tests: spawning the real CLI, reading topics back, namespaced topics per run.
 * Everything runs against the local stack (`vigil stack up`): no mocks.
 */
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import { ensureTopicNamespace } from '../../infra/local/create-topics.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { type Child, spawnNode, VIGIL } from '../support/process.ts';

/** A topic prefix unique to this test run (VIGIL_TOPIC_PREFIX), and its topics created on the local broker. */
export async function isolatedTopics(label: string): Promise<{ prefix: string; name: (base: string) => string }> {
  const prefix = `it-${label}-${ulid().toLowerCase()}`;
  return { prefix, name: await ensureTopicNamespace(resolveEndpoints().kafkaBrokers, prefix) };
}

export type Spawned = Child;

/** The real CLI (`bin/vigil.js`) with extra environment. */
export function spawnVigil(args: readonly string[], env: Record<string, string>): Spawned {
  return spawnNode(VIGIL, args, env);
}

/** The last line of a command's stdout, parsed as JSON. */
export function lastJsonLine<T>(stdout: string): T {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as T;
}

/** Sum of high watermarks over a topic's partitions (a progress gauge; counts transaction markers too). */
export async function highWatermarks(topic: string, partitions: number): Promise<number> {
  const consumer = new Kafka.KafkaConsumer(
    { 'metadata.broker.list': resolveEndpoints().kafkaBrokers, 'group.id': `wm-${ulid()}` },
    {},
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 10_000 }, (e) => (e ? reject(e) : resolve())),
  );
  try {
    let sum = 0;
    for (let p = 0; p < partitions; p++) {
      sum += await new Promise<number>((resolve, reject) =>
        consumer.queryWatermarkOffsets(topic, p, 5_000, (e, w) => (e ? reject(e) : resolve(w.highOffset))),
      );
    }
    return sum;
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

/** Every committed record of a topic (read_committed), read until the topic is idle for `idleMs`. */
export async function readTopic(topic: string, idleMs = 3_000): Promise<Kafka.Message[]> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': resolveEndpoints().kafkaBrokers,
      'group.id': `read-${ulid()}`,
      'enable.auto.commit': false,
      'isolation.level': 'read_committed',
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 10_000 }, (e) => (e ? reject(e) : resolve())),
  );
  consumer.subscribe([topic]);
  consumer.setDefaultConsumeTimeout(500);
  const messages: Kafka.Message[] = [];
  let idleSince = Date.now();
  try {
    while (Date.now() - idleSince < idleMs) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(10_000, (e, m) => (e ? reject(e) : resolve(m))),
      );
      if (batch.length > 0) {
        messages.push(...batch);
        idleSince = Date.now();
      }
    }
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
  return messages;
}

/** Deletes scratch topics a test created (best effort: a topic already gone is no failure). */
export async function deleteTopics(topics: readonly string[]): Promise<void> {
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': resolveEndpoints().kafkaBrokers, log_level: 0 });
  try {
    for (const topic of topics) await new Promise<void>((resolve) => admin.deleteTopic(topic, 10_000, () => resolve()));
  } finally {
    admin.disconnect();
  }
}
