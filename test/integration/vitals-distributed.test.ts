/**
 * The vitals pipeline end to end on the real stack (issue 3's "done means"):
 * 100k simulated events with 5% duplicates and 1% malformed are produced to the raw topic; two workers in one
 * consumer group process them; one is killed with SIGKILL mid-stream and restarted, the other stopped with SIGTERM
 * (it must commit its batch and leave cleanly) and restarted. Then the ClickHouse sink (also
 * killed once mid-stream and restarted) lands every topic in an embedded ClickHouse, and we check:
 * - ClickHouse holds every unique valid event exactly once (count with FINAL, count without, distinct event_id);
 * - the dead-letter topic holds every malformed record, with its reason;
 * - consumed = emitted + dead-lettered + duplicates, from the durable outputs themselves;
 * - the same records through the embedded mode give the same counts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramedDecoder } from '../../adapters/avro/decoder.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import vitals from '../../pipelines/vitals.ts';
import { systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { silentLogger } from '../../runtime/log.ts';
import { runEmbeddedSession, withEmbeddedStore } from '../../runtime/runners/embedded-session.ts';
import { simulatorSource } from '../../runtime/runners/embedded-sources.ts';
import { acceptUngated } from '../../runtime/runners/ungated.ts';
import type { DeadLetter, Envelope } from '../../schemas/types.ts';
import { produceSimulation } from '../../simulator/kafka.ts';
import type { SimulateOptions, TruthSummary } from '../../simulator/simulate.ts';
import { waitFor } from '../support/process.ts';
import { highWatermarks, isolatedTopics, lastJsonLine, readTopic, type Spawned, spawnVigil } from './helpers.ts';

const SIMULATION: SimulateOptions = {
  devices: 1000,
  events: 100_000,
  seed: 'it-distributed',
  duplicateRate: 0.05,
  replayRate: 0,
  malformedRate: 0.01,
};

let topics: Awaited<ReturnType<typeof isolatedTopics>>;
let truth: TruthSummary;
let env: Record<string, string>;
const sinkDir = mkdtempSync(join(tmpdir(), 'vigil-it-sink-'));
const embeddedDir = mkdtempSync(join(tmpdir(), 'vigil-it-embedded-'));
const workerArgs = (group: string, metricsPort = 0) => [
  'run',
  'pipelines/vitals.ts',
  '--group',
  group,
  '--metrics-port',
  String(metricsPort),
  '--batch-size',
  '1000',
  '--stop-when-idle',
  '12000',
  '--json',
  // The simulator writes straight to Kafka, not through a gateway.
  '--accept-ungated',
];

beforeAll(async () => {
  topics = await isolatedTopics('vitals');
  env = { VIGIL_TOPIC_PREFIX: topics.prefix };
  const endpoints = resolveEndpoints();
  truth = await produceSimulation(SIMULATION, {
    brokers: endpoints.kafkaBrokers,
    schemaRegistryUrl: endpoints.schemaRegistryUrl,
    topic: topics.name(TOPICS.raw),
  });
  expect(truth.records).toBe(100_000);
  expect(truth.malformed).toBeGreaterThan(800);
  expect(truth.duplicates).toBeGreaterThan(4000);
}, 240_000);

afterAll(() => {
  rmSync(sinkDir, { recursive: true, force: true });
  rmSync(embeddedDir, { recursive: true, force: true });
});

describe('vitals pipeline, distributed, with a worker and the sink killed mid-stream', () => {
  let normalisedEvents = 0;

  it('two workers in one group process everything: one survives a SIGKILL, the other a SIGTERM, both restarted', async () => {
    const group = `${topics.prefix}-workers`;
    const a: Spawned = spawnVigil(workerArgs(group), env);
    const b: Spawned = spawnVigil(workerArgs(group, 19_471), env);
    const normalised = topics.name(TOPICS.normalised);
    // Mid-stream: some outputs are committed, most are not yet.
    await waitFor(
      'the workers to commit ~15k outputs',
      async () => (await highWatermarks(normalised, 6)) > 15_000,
      120_000,
      250,
    );

    // On-call's view of a live worker: the metrics are there, labelled only from fixed sets.
    const metrics = await (await fetch('http://127.0.0.1:19471/metrics')).text();
    expect(metrics).toMatch(/vigil_records_consumed_total\{pipeline="vitals"\} \d+/);
    expect(metrics).toMatch(/vigil_operator_records_in_total\{pipeline="vitals",operator="dedupe"\} \d+/);
    expect(metrics).toContain('vigil_kafka_transactions_total{pipeline="vitals",outcome="committed"}');
    expect(metrics).not.toMatch(/hah-(mon|wbl)-|psn-v1-/);

    a.child.kill('SIGKILL');
    const killed = await a.done;
    expect(killed.signal).toBe('SIGKILL');
    const a2 = spawnVigil(workerArgs(group), env);

    // SIGTERM: the worker finishes and commits its batch, leaves the group and reports a balanced account.
    b.child.kill('SIGTERM');
    const stopped = await b.done;
    expect(stopped.code, stopped.stderr).toBe(0);
    const b2 = spawnVigil(workerArgs(group), env);

    const [r1, r2] = await Promise.all([a2.done, b2.done]);
    for (const r of [stopped, r1, r2]) {
      expect(r.code, r.stderr).toBe(0);
      const line = lastJsonLine<{ consumed: number; emitted: number; dead_lettered: number; duplicates: number }>(
        r.stdout,
      );
      expect(line.consumed).toBe(line.emitted + line.dead_lettered + line.duplicates);
    }
    expect(lastJsonLine<{ consumed: number }>(stopped.stdout).consumed).toBeGreaterThan(0);
  }, 300_000);

  it('the topics balance: consumed = emitted + dead-lettered + duplicates, with every malformed record dead-lettered by reason', async () => {
    const [normalised, deadLetters, duplicates] = await Promise.all([
      readTopic(topics.name(TOPICS.normalised)),
      readTopic(topics.name(TOPICS.deadLetter)),
      readTopic(topics.name(TOPICS.duplicates)),
    ]);
    normalisedEvents = normalised.length;
    expect(normalised.length).toBe(truth.valid);
    expect(duplicates.length).toBe(truth.duplicates + truth.replays);
    expect(deadLetters.length).toBe(truth.malformed);
    expect(normalised.length + deadLetters.length + duplicates.length).toBe(truth.records);

    // Exactly once in Kafka: no event twice on the normalised topic despite the SIGKILL.
    const registry = createSchemaRegistry(resolveEndpoints().schemaRegistryUrl);
    const normalisedDecoder = new FramedDecoder<Envelope>(registry, loadSchemaRepo().get('normalised').newest.type);
    const ids = (await normalisedDecoder.decodeBatch(normalised.map((m) => m.value as Buffer))).map((d) =>
      d.ok ? d.value.event_id : 'undecodable',
    );
    expect(new Set(ids).size).toBe(truth.valid);

    const dlqDecoder = new FramedDecoder<DeadLetter>(registry, loadSchemaRepo().get('dead-letter').newest.type);
    const byReason: Record<string, number> = {};
    for (const d of await dlqDecoder.decodeBatch(deadLetters.map((m) => m.value as Buffer))) {
      expect(d.ok).toBe(true);
      if (!d.ok) continue;
      byReason[d.value.reason_code] = (byReason[d.value.reason_code] ?? 0) + 1;
      expect(d.value.raw_bytes.length).toBeGreaterThan(0);
      expect(d.value.raw_sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(byReason).toEqual(truth.deadLetters);
  }, 180_000);

  it('the ClickHouse sink, killed once and restarted, lands every unique valid event exactly once', async () => {
    const args = [
      'sink',
      'pipelines/vitals.ts',
      '--data-dir',
      sinkDir,
      '--group',
      `${topics.prefix}-sink`,
      '--metrics-port',
      '0',
    ];
    const first = spawnVigil([...args, '--stop-when-idle', '60000'], env);
    await new Promise((r) => setTimeout(r, 8_000));
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    const second = spawnVigil([...args, '--stop-when-idle', '8000', '--json'], env);
    const done = await second.done;
    expect(done.code, done.stderr).toBe(0);

    const store = openChdbStore({ path: sinkDir });
    try {
      const [row] = await store.query<{ final: number; all: number; distinct: number }>(
        `SELECT (SELECT count() FROM normalised_events FINAL) AS final, (SELECT count() FROM normalised_events) AS all,
                (SELECT uniqExact(event_id) FROM normalised_events) AS distinct`,
      );
      expect(Number(row?.final)).toBe(truth.valid);
      expect(Number(row?.distinct)).toBe(truth.valid);
      expect(Number(row?.all)).toBe(truth.valid);
      const [raw] = await store.query<{ n: number }>('SELECT count() AS n FROM raw_events FINAL');
      expect(Number(raw?.n)).toBe(truth.records);
      const reasons = await store.query<{ reason_code: string; n: number }>(
        'SELECT reason_code, count() AS n FROM dead_letters FINAL GROUP BY reason_code ORDER BY reason_code',
      );
      expect(Object.fromEntries(reasons.map((r) => [r.reason_code, Number(r.n)]))).toEqual(truth.deadLetters);
      const [dups] = await store.query<{ n: number }>('SELECT count() AS n FROM duplicates FINAL');
      expect(Number(dups?.n)).toBe(truth.duplicates + truth.replays);
    } finally {
      await store.close();
    }
    expect(normalisedEvents).toBe(truth.valid);
  }, 300_000);

  it('the same records through the embedded mode give the same counts', async () => {
    const result = await withEmbeddedStore({ dataDir: embeddedDir, log: silentLogger }, (store) =>
      runEmbeddedSession(
        acceptUngated(vitals),
        simulatorSource({ simulation: SIMULATION, clock: systemClock }),
        store,
        silentLogger,
      ),
    );
    expect(result.accounting.consumed).toBe(truth.records);
    expect(result.accounting.emitted).toBe(truth.valid);
    expect(result.accounting.duplicates).toBe(truth.duplicates + truth.replays);
    expect(result.accounting.deadLettered).toBe(truth.malformed);
    expect(result.deadLetters).toEqual(truth.deadLetters);
    expect(result.stored.normalised_events).toBe(truth.valid);
  }, 300_000);
});
