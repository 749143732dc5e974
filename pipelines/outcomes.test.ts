/**
 * The landing definition of clinical outcomes: its sink reads the outcomes topic only and lands it in `outcomes` (not
 * the raw plane); the rows its mapping makes fit the migrated table (chdb, every migration applied); a re-delivered
 * outcome collapses; the embedded path (`readOutcomesFile` + `landOutcomes`) lands the same rows and is idempotent.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { TOPICS } from '../runtime/endpoints.ts';
import { pipelineTables, sinkRoutes } from '../runtime/runners/clickhouse-sink.ts';
import outcomesPipeline, {
  landOutcomes,
  OUTCOMES_TABLE,
  type Outcome,
  outcomeRow,
  parseOutcome,
  readOutcomesFile,
  writeOutcomesFile,
} from './outcomes.ts';

const T0 = Date.UTC(2026, 5, 1, 9, 0, 0);

function outcome(n: number, overrides: Partial<Outcome> = {}): Outcome {
  return {
    outcome_id: `01JY${String(n).padStart(22, '0')}`,
    patient_ref: `psn:k1:clinical:${String(n).padStart(32, '0')}`,
    site_id: 'site-01',
    kind: 'escalation',
    occurred_at: T0 + n * 60_000,
    recorded_at: T0 + n * 60_000 + 5_000,
    source: 'rapid-response-log',
    ...overrides,
  };
}

describe('pipelines/outcomes.ts', () => {
  let dir: string;
  let store: ClickHouseStore;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vigil-outcomes-'));
    store = openChdbStore({ path: path.join(dir, 'store') });
    await store.migrate();
  });

  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lands the outcomes topic in its own table: no raw plane, no dead letters or duplicates to read', () => {
    expect(outcomesPipeline.operators).toEqual([]);
    expect(sinkRoutes(outcomesPipeline)).toEqual([
      { topic: TOPICS.outcomes, table: OUTCOMES_TABLE, schema: 'outcome', raw: false, row: outcomeRow },
    ]);
    expect(pipelineTables(outcomesPipeline)).toEqual([OUTCOMES_TABLE, 'quarantine']);
  });

  it('maps every record to a row the migrated table holds, once per outcome id', async () => {
    const records = [outcome(1), outcome(2, { kind: 'icu_transfer' }), outcome(3, { kind: 'confirmed_deterioration' })];
    const rows = records.map((o) => outcomeRow(o as unknown as Record<string, unknown>));
    await store.insert(OUTCOMES_TABLE, rows, { dedupToken: 'outcomes-test-1' });
    // The same record delivered again in another batch (a re-read topic): it collapses to one row by its identity.
    await store.insert(OUTCOMES_TABLE, [rows[0]!], { dedupToken: 'outcomes-test-2' });

    const byKind = await store.query<{ kind: string; n: number; at: number }>(
      `SELECT kind, count() AS n, toUnixTimestamp64Milli(min(occurred_at)) AS at
         FROM ${OUTCOMES_TABLE} FINAL GROUP BY kind ORDER BY kind`,
    );
    expect(byKind.map((r) => [r.kind, Number(r.n), Number(r.at)])).toEqual([
      ['confirmed_deterioration', 1, T0 + 3 * 60_000],
      ['escalation', 1, T0 + 60_000],
      ['icu_transfer', 1, T0 + 2 * 60_000],
    ]);
  });

  it('keeps a record that reuses an id with other content beside the first (append-only, never a rewrite)', async () => {
    const first = outcome(10);
    const corrected = { ...first, occurred_at: first.occurred_at - 30 * 60_000 };
    await landOutcomes(store, [first]);
    await landOutcomes(store, [corrected]);
    const rows = await store.query<{ at: number }>(
      `SELECT toUnixTimestamp64Milli(occurred_at) AS at FROM ${OUTCOMES_TABLE} FINAL
        WHERE outcome_id = {id:String} ORDER BY at`,
      { id: first.outcome_id },
    );
    expect(rows.map((r) => Number(r.at))).toEqual([corrected.occurred_at, first.occurred_at]);
  });

  it('reads an outcomes NDJSON file (epoch ms or ISO times) and lands it idempotently', async () => {
    const file = path.join(dir, 'outcomes.ndjson');
    const a = outcome(20, { site_id: 'site-02' });
    const b = outcome(21, { kind: 'icu_transfer', site_id: 'site-02' });
    const lines = [
      JSON.stringify(a),
      '',
      JSON.stringify({
        ...b,
        occurred_at: new Date(b.occurred_at).toISOString(),
        recorded_at: new Date(b.recorded_at).toISOString(),
      }),
    ];
    await writeFile(file, `${lines.join('\n')}\n`);
    const read = await readOutcomesFile(file);
    expect(read).toEqual([a, b]);
    expect(await landOutcomes(store, read)).toBe(2);
    await landOutcomes(store, read); // a re-run on a kept store: the same chunk token, dropped
    const [count] = await store.query<{ n: number }>(
      `SELECT count() AS n FROM ${OUTCOMES_TABLE} WHERE site_id = 'site-02'`,
    );
    expect(Number(count?.n)).toBe(2);
  });

  it('writes a file readOutcomesFile reads back as it was', async () => {
    const file = path.join(dir, 'written.ndjson');
    const records = [outcome(30), outcome(31, { kind: 'confirmed_deterioration' })];
    await writeOutcomesFile(file, records);
    expect(await readOutcomesFile(file)).toEqual(records);
    await writeOutcomesFile(file, []);
    expect(await readOutcomesFile(file)).toEqual([]);
  });

  it('refuses a bad outcome naming the field, never the value', async () => {
    expect(() => parseOutcome({ ...outcome(1), kind: 'discharge' }, 'f:3')).toThrow(/f:3: kind must be one of/);
    expect(() => parseOutcome({ ...outcome(1), occurred_at: '2026-06-01' })).toThrow(/occurred_at must be epoch ms/);
    expect(() => parseOutcome({ ...outcome(1), patient_ref: '' })).toThrow(/patient_ref must be a non-empty string/);
    expect(() => parseOutcome({ ...outcome(1), note: 'x' })).toThrow(/unknown field\(s\) note/);
    const file = path.join(dir, 'bad.ndjson');
    await writeFile(file, `${JSON.stringify(outcome(1))}\n{not json\n`);
    await expect(readOutcomesFile(file)).rejects.toThrow(/bad\.ndjson:2: not JSON/);
    try {
      parseOutcome({ ...outcome(1), occurred_at: 'psn:secret' });
    } catch (error) {
      expect(String(error)).not.toContain('psn:secret');
    }
  });
});
