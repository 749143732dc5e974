/**
 * The benchmark's footprint on the local stack: an isolated topic namespace per run (`VIGIL_TOPIC_PREFIX`, as the
 * integration tests do), deleted again at the end together with the Redis keys the runs wrote under it.
 */

import { Redis } from 'ioredis';
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import { ensureTopicNamespace } from '../../infra/local/create-topics.ts';
import { TOPIC_SPECS, type TopicSpec } from '../../infra/local/topics.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';

export interface Namespace {
  /** The `VIGIL_TOPIC_PREFIX` of this namespace. */
  readonly prefix: string;
  /** `<prefix>.<base topic name>`. */
  name(base: string): string;
  /** The pass-through target of the ceiling run (same partitions and configs as the raw topic). */
  readonly ceilingOut: string;
}

/** The names in TOPIC_SPECS are unprefixed in this process (the orchestrator never sets VIGIL_TOPIC_PREFIX). */
export async function createNamespace(label: string): Promise<Namespace> {
  if (process.env.VIGIL_TOPIC_PREFIX) throw new Error('run the benchmark without VIGIL_TOPIC_PREFIX set');
  const prefix = `bench-${label}-${ulid().toLowerCase()}`;
  const ceilingOut = `${prefix}.bench.ceiling-out`;
  const extra: TopicSpec = { ...TOPIC_SPECS.raw, name: ceilingOut, description: 'ceiling pass-through output' };
  const name = await ensureTopicNamespace(resolveEndpoints().kafkaBrokers, prefix, [extra]);
  return { prefix, name, ceilingOut };
}

/** Deletes every topic of the namespace (best effort: a leftover is harmless, topics expire by retention). */
export async function deleteNamespace(ns: Namespace): Promise<void> {
  const admin = Kafka.AdminClient.create({
    'metadata.broker.list': resolveEndpoints().kafkaBrokers,
    'client.id': 'vigil-bench-admin',
    log_level: 0,
  });
  try {
    const topics = [...Object.values(TOPIC_SPECS).map((s) => ns.name(s.name)), ns.ceilingOut];
    for (const topic of topics) {
      await new Promise<void>((resolve) => admin.deleteTopic(topic, 10_000, () => resolve()));
    }
  } finally {
    admin.disconnect();
  }
}

/** Unlinks every Redis key whose name contains the namespace prefix (the worker's and the naive peer's state). */
export async function deleteRedisKeys(ns: Namespace): Promise<number> {
  const redis = new Redis(resolveEndpoints().redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let removed = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `*${ns.prefix}*`, 'COUNT', 10_000);
      cursor = next;
      if (keys.length > 0) removed += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
  return removed;
}
