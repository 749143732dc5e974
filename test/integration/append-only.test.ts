/**
 * Append-only evidence (issue 11) end to end, through the real CLI: the vitals pipeline runs embedded over a simulated
 * file into a fresh store, then its next version (test/append-only/vitals-v2.ts: the same definition under VERSION
 * '2') runs over the same file into the same store (`--append`), then that second run is repeated as a retry.
 * Both derivations of every event stay side by side in normalised_events, normalised_events_current returns one per
 * event (the new one), and the retried run lands nothing new. Inferences: the v2 chain feeds the model the same input
 * under the same options, so its outputs are the same inferences (same key, same content) and stay the first copies.
 *
 * Embedded runs use no broker, registry or Redis, so no topic namespace is needed; the CLI runs as separate processes
 * because chdb binds one data directory per process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { NORMALISED_TRANSFORMATION } from '../append-only/vitals-v2.ts';
import { lastJsonLine, spawnVigil } from './helpers.ts';

interface RunLine {
  readonly consumed: number;
  readonly emitted: number;
  readonly dead_lettered: number;
  readonly duplicates: number;
  readonly stored: Record<string, number>;
}

const V1 = 'vitals@1/validate/dedupe';
const V2 = NORMALISED_TRANSFORMATION;

let dir: string;
let input: string;
let dataDir: string;
/** Between the v1 run's end and the v2 run's start. */
let v2StartedAt = 0;
const runs: RunLine[] = [];

async function vigil(args: readonly string[]): Promise<string> {
  const child = spawnVigil(args, {});
  const exited = await child.done;
  if (exited.code !== 0) throw new Error(`vigil ${args.join(' ')} exited ${exited.code}: ${exited.stderr}`);
  return exited.stdout;
}

/** Reads the store the runs filled (after they exited: one process per data directory). */
async function withStore<T>(read: (store: ClickHouseStore) => Promise<T>): Promise<T> {
  const store = openChdbStore({ path: dataDir });
  try {
    return await read(store);
  } finally {
    await store.close();
  }
}

async function run(pipeline: string, append: boolean): Promise<RunLine> {
  // The simulated file did not come through a gateway: the run says so (vitals requires gateway provenance).
  const args = ['run', pipeline, '--embedded', '--input', input, '--data-dir', dataDir, '--json', '--accept-ungated'];
  return lastJsonLine<RunLine>(await vigil(append ? [...args, '--append'] : args));
}

async function counts(store: ClickHouseStore) {
  const one = async (sql: string) => Number((await store.query<{ n: number | string }>(sql))[0]?.n);
  return {
    normalisedRows: await one('SELECT count() AS n FROM normalised_events'),
    normalisedFinal: await one('SELECT count() AS n FROM normalised_events FINAL'),
    normalisedEvents: await one('SELECT uniqExact(event_id) AS n FROM normalised_events'),
    normalisedCurrent: await one('SELECT count() AS n FROM normalised_events_current'),
    inferencesRows: await one('SELECT count() AS n FROM inferences'),
    inferencesFinal: await one('SELECT count() AS n FROM inferences FINAL'),
    inferencesCurrent: await one('SELECT count() AS n FROM inferences_current'),
  };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vigil-append-only-it-'));
  input = path.join(dir, 'fleet.ndjson');
  dataDir = path.join(dir, 'clickhouse');
  await vigil(['simulate', '--devices', '40', '--events', '4000', '--seed', '11', '--out', input]);
  runs.push(await run('pipelines/vitals.ts', false));
  v2StartedAt = Date.now();
  runs.push(await run('test/append-only/vitals-v2.ts', true));
}, 600_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a pipeline version bump re-derives into the same store', () => {
  it('both runs accounted for every record the same way', () => {
    const [first, second] = runs;
    expect(first?.consumed).toBe(4000);
    expect(first?.emitted).toBeGreaterThan(3000);
    expect(second).toMatchObject({
      consumed: first?.consumed,
      emitted: first?.emitted,
      dead_lettered: first?.dead_lettered,
      duplicates: first?.duplicates,
    });
  });

  it('keeps both derivations of every event side by side, and the current view returns the new one per event', async () => {
    const emitted = runs[0]?.emitted ?? 0;
    await withStore(async (store) => {
      const c = await counts(store);
      expect(c.normalisedEvents).toBe(emitted);
      expect(c.normalisedFinal).toBe(2 * emitted);
      expect(c.normalisedCurrent).toBe(emitted);
      expect(
        await store.query(
          'SELECT transformation_version AS v, count() AS n, uniqExact(event_id) AS events FROM normalised_events FINAL GROUP BY v ORDER BY v',
        ),
      ).toEqual([
        { v: V1, n: emitted, events: emitted },
        { v: V2, n: emitted, events: emitted },
      ]);
      // Side by side: every event has exactly its two derivations, from the same raw record.
      expect(
        await store.query(`SELECT count() AS events FROM (
           SELECT event_id FROM normalised_events FINAL GROUP BY event_id
           HAVING count() = 2 AND uniqExact(transformation_version) = 2 AND uniqExact(raw_sha256) = 1)`),
      ).toEqual([{ events: emitted }]);
      expect(
        await store.query('SELECT transformation_version AS v, count() AS n FROM normalised_events_current GROUP BY v'),
      ).toEqual([{ v: V2, n: emitted }]);
    });
  });

  it('keeps each inference once: the v2 chain scored the same input with the same model and options', async () => {
    await withStore(async (store) => {
      const c = await counts(store);
      expect(c.inferencesFinal).toBeGreaterThan(2000);
      expect(c.inferencesCurrent).toBe(c.inferencesFinal);
      // One row per inference id, each the first copy: the one the v1 run wrote, scored before the v2 run started.
      const [row] = await store.query<{ ids: number; last_scored: number }>(
        'SELECT uniqExact(inference_id) AS ids, max(toUnixTimestamp64Milli(scored_at)) AS last_scored FROM inferences FINAL',
      );
      expect(Number(row?.ids)).toBe(c.inferencesFinal);
      expect(Number(row?.last_scored)).toBeLessThan(v2StartedAt);
    });
  });

  it('lands a retried run once: the same batches carry the same dedup tokens', async () => {
    const before = await withStore(counts);
    const retried = await run('test/append-only/vitals-v2.ts', true);
    expect(retried.emitted).toBe(runs[1]?.emitted);
    const { inferencesRows, ...after } = await withStore(counts);
    // Not even an unmerged normalised copy: the insert dedup token dropped every retried block. (Unmerged inference
    // rows are left out: the v1 and v2 copies of one inference may merge while the retry runs.)
    const { inferencesRows: rowsBefore, ...expected } = before;
    expect(after).toEqual(expected);
    expect(inferencesRows).toBeLessThanOrEqual(rowsBefore);
  });
});
