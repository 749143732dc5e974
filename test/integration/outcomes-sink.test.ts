/**
 * Outcomes on the real stack: the simulated fleet's ground-truth outcomes produced to the outcomes topic (registry
 * schema outcome, keyed by patient pseudonym: simulator/kafka.ts produceOutcomes, as `vigil simulate --kafka` does
 * with outcomesTopic) and landed by `vigil sink pipelines/outcomes.ts` (the landing definition) into an embedded
 * ClickHouse: the table holds exactly the produced outcomes, by kind, and a second sink round adds nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { produceOutcomes, simulationOutcomes } from '../../simulator/kafka.ts';
import { isolatedTopics, lastJsonLine, spawnVigil } from './helpers.ts';

const SIMULATION = { devices: 400, events: 40_000, seed: 5 };
const sinkDir = mkdtempSync(join(tmpdir(), 'vigil-it-outcomes-sink-'));
let topics: Awaited<ReturnType<typeof isolatedTopics>>;
let env: Record<string, string>;

async function sinkRound(): Promise<{ stored: Record<string, number> }> {
  const sink = await spawnVigil(
    [
      'sink',
      'pipelines/outcomes.ts',
      '--data-dir',
      sinkDir,
      '--group',
      `${topics.prefix}-sink`,
      '--metrics-port',
      '0',
      '--stop-when-idle',
      '5000',
      '--json',
    ],
    env,
  ).done;
  expect(sink.code, sink.stderr).toBe(0);
  return lastJsonLine<{ stored: Record<string, number> }>(sink.stdout);
}

beforeAll(async () => {
  topics = await isolatedTopics('outcomes');
  env = { VIGIL_TOPIC_PREFIX: topics.prefix };
});

afterAll(() => {
  rmSync(sinkDir, { recursive: true, force: true });
});

describe('outcomes: simulator -> Kafka -> vigil sink pipelines/outcomes.ts -> ClickHouse', () => {
  it('lands every produced outcome once, by kind', async () => {
    const endpoints = resolveEndpoints();
    const produced = await produceOutcomes(SIMULATION, {
      brokers: endpoints.kafkaBrokers,
      schemaRegistryUrl: endpoints.schemaRegistryUrl,
      topic: topics.name(TOPICS.outcomes),
    });
    const truth = simulationOutcomes(SIMULATION);
    expect(produced.records).toBe(truth.length);
    expect(produced.records).toBeGreaterThan(10);

    const first = await sinkRound();
    expect(first.stored.outcomes).toBe(truth.length);
    const again = await sinkRound(); // the group's offsets are committed: nothing new to land
    expect(again.stored.outcomes).toBe(truth.length);

    const store = openChdbStore({ path: sinkDir });
    try {
      const byKind = await store.query<{ kind: string; n: number }>(
        'SELECT kind, count() AS n FROM outcomes FINAL GROUP BY kind ORDER BY kind',
      );
      expect(Object.fromEntries(byKind.map((r) => [r.kind, Number(r.n)]))).toEqual(produced.byKind);
      const ids = await store.query<{ outcome_id: string; at: number }>(
        'SELECT outcome_id, toUnixTimestamp64Milli(occurred_at) AS at FROM outcomes FINAL ORDER BY at, outcome_id',
      );
      expect(ids.map((r) => [r.outcome_id, Number(r.at)])).toEqual(truth.map((o) => [o.outcome_id, o.occurred_at]));
    } finally {
      await store.close();
    }
  });
});
