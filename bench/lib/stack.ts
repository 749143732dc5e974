/**
 * The benchmark's footprint on the local stack: an isolated topic namespace per run (`VIGIL_TOPIC_PREFIX`, as the
 * integration tests do), deleted again at the end together with the Redis keys the runs wrote under it.
 */

import { Redis } from 'ioredis';
import { Kafka as KafkaJs, logLevel } from 'kafkajs';
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
  /** Topics of the namespace beyond TOPIC_SPECS (a run's own; the workers' state changelogs), deleted with it. */
  readonly extra: string[];
}

/** The names in TOPIC_SPECS are unprefixed in this process (the orchestrator never sets VIGIL_TOPIC_PREFIX). */
export async function createNamespace(label: string, extraTopics: readonly TopicSpec[] = []): Promise<Namespace> {
  if (process.env.VIGIL_TOPIC_PREFIX) throw new Error('run the benchmark without VIGIL_TOPIC_PREFIX set');
  const prefix = `bench-${label}-${ulid().toLowerCase()}`;
  const ceilingOut = `${prefix}.bench.ceiling-out`;
  const ceiling: TopicSpec = { ...TOPIC_SPECS.raw, name: ceilingOut, description: 'ceiling pass-through output' };
  const own = extraTopics.map((t) => ({ ...t, name: `${prefix}.${t.name}` }));
  const name = await ensureTopicNamespace(resolveEndpoints().kafkaBrokers, prefix, [ceiling, ...own]);
  return { prefix, name, ceilingOut, extra: own.map((t) => t.name) };
}

/** Deletes every topic of the namespace (best effort: a leftover is harmless, topics expire by retention). */
export async function deleteNamespace(ns: Namespace): Promise<void> {
  const admin = Kafka.AdminClient.create({
    'metadata.broker.list': resolveEndpoints().kafkaBrokers,
    'client.id': 'vigil-bench-admin',
    log_level: 0,
  });
  try {
    const topics = [...Object.values(TOPIC_SPECS).map((s) => ns.name(s.name)), ns.ceilingOut, ...ns.extra];
    for (const topic of topics) {
      await new Promise<void>((resolve) => admin.deleteTopic(topic, 10_000, () => resolve()));
    }
  } finally {
    admin.disconnect();
  }
}

/** Waits until a consumer group is Stable with members (so paced records are not timed while it joins). */
export async function groupJoined(groupId: string, timeoutMs = 60_000): Promise<void> {
  const kafka = new KafkaJs({
    clientId: 'bench-admin',
    brokers: resolveEndpoints().kafkaBrokers.split(','),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const { groups } = await admin.describeGroups([groupId]);
      const g = groups[0];
      if (g && g.state === 'Stable' && g.members.length > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`consumer group ${groupId} did not join within ${timeoutMs} ms`);
  } finally {
    await admin.disconnect();
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
