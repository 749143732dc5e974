/**
 * The naive peer: what a team typically writes first. KafkaJS `eachMessage`, and per message, awaited one after the
 * other: decode through the registry client (`@kafkajs/confluent-schema-registry`'s `decode`), validate (Vigil's
 * validate logic), a Redis `SET NX` on the event id (ioredis), the ONNX session on ONE row (Vigil's score logic with a
 * batch of one), and one INSERT of the normalised row into an embedded ClickHouse (chdb). The same operators' logic,
 * no batching.
 *
 * It does strictly less than Vigil: no raw plane, no inference or drift rows stored, rejected records only counted
 * (no dead-letter record), no per-device sequence window, and offsets auto-committed by KafkaJS (at-least-once, not
 * exactly-once). Every simplification favours the peer.
 *
 *   VIGIL_TOPIC_PREFIX=... node --import tsx bench/runs/naive.ts --group G --max-records N --data-dir DIR
 *
 * Prints one JSON line: {consumed, stored, rejected, duplicates, cpu_user_us, cpu_system_us, peak_rss_mb,
 * first_consumed_at, first_commit_at, last_commit_at, end_to_end_ms}; latency is the producer timestamp -> the
 * INSERT's return.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { score } from '../../operators/score/index.ts';
import { validate } from '../../operators/validate/index.ts';
import type { ValidateOperator } from '../../operators/validate/operator.ts';
import { normalisedEventRow, toNormalisedEvent } from '../../pipelines/outputs.ts';
import { systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { Origin } from '../../runtime/record.ts';
import { RunStats } from '../../runtime/runners/run-stats.ts';
import { sha256Hex } from '../../runtime/source.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import type { Envelope } from '../../schemas/types.ts';

const { values } = parseArgs({
  options: {
    group: { type: 'string' },
    'max-records': { type: 'string' },
    'data-dir': { type: 'string' },
    'stop-when-idle': { type: 'string', default: '30000' },
  },
});
const maxRecords = Number(values['max-records']);
const dataDir = values['data-dir'] as string;
const endpoints = resolveEndpoints();
const stats = new RunStats();

rmSync(dataDir, { recursive: true, force: true });
const store = openChdbStore({ path: dataDir });
await store.migrate();
const registry = new SchemaRegistry({ host: endpoints.schemaRegistryUrl });
const redis = new Redis(endpoints.redisUrl);
const keyPrefix = `bench-naive:${TOPICS.raw}:`;
const validator = validate() as ValidateOperator;
const scorer = score({ models: [{ model: 'news2', version: '1.0.0' }] });
await scorer.open({
  pipeline: 'naive',
  clock: systemClock,
  state: new MemoryStateBackend({ clock: systemClock }),
  log: silentLogger,
  models: new OnnxModelStore(),
});

const kafka = new Kafka({
  clientId: 'bench-naive',
  brokers: endpoints.kafkaBrokers.split(','),
  logLevel: logLevel.ERROR,
});
const consumer = kafka.consumer({ groupId: values.group as string });
await consumer.connect();
await consumer.subscribe({ topic: TOPICS.raw, fromBeginning: true });

let consumed = 0;
let stored = 0;
let rejected = 0;
let duplicates = 0;
let lastMessageAt = Date.now();
let finish: () => void = () => undefined;
const finished = new Promise<void>((resolve) => {
  finish = resolve;
});

await consumer.run({
  eachMessage: async ({ topic, partition, message }) => {
    if (consumed >= maxRecords) return;
    const now = Date.now();
    stats.consumed(now);
    lastMessageAt = now;
    consumed++;
    const value = message.value ?? Buffer.alloc(0);
    const producedAt = Number(message.timestamp);
    const done = () => {
      const at = Date.now();
      stats.committed(at);
      if (producedAt > 0) stats.latency.observe(at - producedAt);
      if (consumed >= maxRecords) finish();
    };
    let envelope: Envelope;
    try {
      envelope = (await registry.decode(value)) as Envelope;
    } catch {
      rejected++;
      return done();
    }
    if (typeof validator.check(envelope) !== 'number') {
      rejected++;
      return done();
    }
    const offset = Number(message.offset);
    const owner = `${partition}:${offset}`;
    const claimed = await redis.set(keyPrefix + envelope.event_id, owner, 'PX', 86_400_000, 'NX');
    if (claimed === null && (await redis.get(keyPrefix + envelope.event_id)) !== owner) {
      duplicates++;
      return done();
    }
    const origin: Origin = {
      topic,
      partition,
      offset,
      consumedAt: now,
      rawSha256: sha256Hex(value),
      raw: value,
      headers: [],
      key: message.key?.toString() ?? null,
    };
    const scored = await scorer.process([{ value: { envelope, flags: [] }, origin }]);
    const record = scored.out[0];
    if (!record) {
      rejected++;
      return done();
    }
    const row = normalisedEventRow(toNormalisedEvent(record, Date.now(), 'naive/validate/dedupe'));
    await store.insert('normalised_events', [row], { dedupToken: `naive:${partition}:${offset}` });
    stored++;
    done();
  },
});

const idle = setInterval(() => {
  if (Date.now() - lastMessageAt > Number(values['stop-when-idle'])) finish();
}, 500);
await finished;
clearInterval(idle);
const line = { consumed, stored, rejected, duplicates, ...stats.json() };
await consumer.disconnect();
await redis.quit();
await scorer.close?.();
await store.close();
process.stdout.write(`${JSON.stringify(line)}\n`);
process.exit(0);
