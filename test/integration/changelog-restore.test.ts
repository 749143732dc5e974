/**
 * Reading a state changelog partition back (adapters/kafka/changelog.ts) on the real broker, with a transaction still
 * open at the end of the partition. That is what a new owner can meet right after a rebalance: the previous owner's
 * last commit has reached the group's offsets (so the stable-offset wait is over) but its commit marker has not yet
 * reached the changelog partition (the coordinator writes the markers partition by partition). Read committed, the
 * partition then seems to end below that transaction; a restore that stopped there would miss the claims of the
 * previous owner's last batch, and the duplicates of its events would pass as new (the sink drill's failure:
 * 19 duplicates emitted as new events, once in eight runs).
 */
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOwnTopic } from '../../adapters/kafka/admin.ts';
import { readChangelogPartition } from '../../adapters/kafka/changelog.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { deleteTopics } from './helpers.ts';

const brokers = resolveEndpoints().kafkaBrokers;
const topics: string[] = [];
let producer: Kafka.Producer;

function call(fn: (cb: (err: Kafka.LibrdKafkaError | null | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

/** A fresh one-partition changelog topic. */
async function changelog(): Promise<string> {
  const topic = `vigil.test.changelog-restore.${ulid().toLowerCase()}`;
  topics.push(topic);
  await ensureOwnTopic(brokers, { name: topic, partitions: 1, config: {} });
  return topic;
}

/** Produces `keys` to partition 0 inside the open transaction and waits until they are written (not committed). */
async function produceInTransaction(topic: string, keys: readonly string[]): Promise<void> {
  for (const key of keys) producer.produce(topic, 0, Buffer.from(`value of ${key}`), Buffer.from(key));
  await call((cb) => producer.flush(10_000, cb));
}

async function committedTransaction(topic: string, keys: readonly string[]): Promise<void> {
  await call((cb) => producer.beginTransaction(cb));
  await produceInTransaction(topic, keys);
  await call((cb) => producer.commitTransaction(10_000, cb));
}

/** Restores partition 0, collecting the keys applied, in order. */
async function restore(topic: string): Promise<{ keys: string[]; ms: number }> {
  const keys: string[] = [];
  const report = await readChangelogPartition({ brokers, topic, partition: 0, timeoutMs: 30_000 }, (key) => {
    keys.push(key);
  });
  return { keys, ms: report.ms };
}

beforeAll(async () => {
  producer = new Kafka.Producer({
    'metadata.broker.list': brokers,
    'transactional.id': `vigil-test-changelog-restore-${ulid()}`,
    'enable.idempotence': true,
    log_level: 0,
  });
  await call((cb) => producer.connect({ timeout: 15_000 }, (err) => cb(err as Kafka.LibrdKafkaError | null)));
  await call((cb) => producer.initTransactions(15_000, cb));
});

afterAll(async () => {
  await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  await deleteTopics(topics);
});

describe('readChangelogPartition', () => {
  it('reads every committed record of a partition whose transactions are all resolved, at once', async () => {
    const topic = await changelog();
    await committedTransaction(topic, ['a', 'b']);
    await committedTransaction(topic, ['c']);
    const { keys, ms } = await restore(topic);
    expect(keys).toEqual(['a', 'b', 'c']);
    expect(ms).toBeLessThan(5_000);
  });

  it('waits for a transaction still open at the end of the partition, and applies it once it commits', async () => {
    const topic = await changelog();
    await committedTransaction(topic, ['a', 'b']);
    await call((cb) => producer.beginTransaction(cb));
    await produceInTransaction(topic, ['c', 'd', 'e']);
    const restored = restore(topic);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await call((cb) => producer.commitTransaction(10_000, cb));
    const { keys, ms } = await restored;
    expect(keys).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(ms).toBeGreaterThanOrEqual(1_000);
  });

  it('waits for an open transaction that is all the partition holds (the previous owner had committed one batch)', async () => {
    const topic = await changelog();
    await call((cb) => producer.beginTransaction(cb));
    await produceInTransaction(topic, ['first']);
    const restored = restore(topic);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await call((cb) => producer.commitTransaction(10_000, cb));
    expect((await restored).keys).toEqual(['first']);
  });

  it('waits for a transaction still open at the end, and ends without it once it aborts', async () => {
    const topic = await changelog();
    await committedTransaction(topic, ['a']);
    await call((cb) => producer.beginTransaction(cb));
    await produceInTransaction(topic, ['x', 'y']);
    const restored = restore(topic);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await call((cb) => producer.abortTransaction(10_000, cb));
    const { keys, ms } = await restored;
    expect(keys).toEqual(['a']);
    expect(ms).toBeGreaterThanOrEqual(1_000);
    expect(ms).toBeLessThan(20_000);
  });
});
