/**
 * The drift statistics exist twice: metrics.ts / report.ts (TypeScript) and 0003_drift.sql (ClickHouse functions and
 * the drift_reports view). This test feeds both the same partial histograms, on embedded ClickHouse (chdb) with only
 * 0003 applied (the drift tables depend on nothing else), and requires the same numbers and verdicts.
 */
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { MIGRATIONS_DIR } from '../../adapters/clickhouse/migrations.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { silentLogger } from '../../runtime/log.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import {
  batches,
  HOUR,
  modelStoreWith,
  referenceSamples,
  scoredRecords,
  syntheticReadings,
  T0,
} from '../../test/fixtures/detect-drift.ts';
import { detectDrift } from './index.ts';
import type { DriftHistogramRow } from './operator.ts';
import { driftFindingsQuery, driftReportsQuery } from './queries.ts';
import { buildReference, type DriftReferenceRow, serialiseReference } from './reference.ts';
import { type DriftFindingRow, type DriftReportRow, driftFindings, driftReports } from './report.ts';

/** The generated DriftHistogram is an interface, which TypeScript does not treat as a string-keyed record. */
function asRows(rows: readonly DriftHistogramRow[]): readonly Record<string, unknown>[] {
  return rows as unknown as readonly Record<string, unknown>[];
}

let dir: string;
let store: ClickHouseStore;
const histograms: DriftHistogramRow[] = [];
const references: DriftReferenceRow[] = [];

function expectSameRows<T extends DriftReportRow | DriftFindingRow>(sql: readonly T[], ts: readonly T[]): void {
  expect(sql.length).toBe(ts.length);
  sql.forEach((row, i) => {
    const expected = ts[i]!;
    for (const [key, value] of Object.entries(expected)) {
      const actual = (row as unknown as Record<string, unknown>)[key];
      if (typeof value === 'number' && !Number.isInteger(value)) {
        expect(actual, `${key} of row ${i}`).toBeCloseTo(value, 10);
      } else if (Array.isArray(value) && value.some((v) => typeof v === 'number' && !Number.isInteger(v))) {
        (value as number[]).forEach((v, j) => {
          expect((actual as number[])[j], `${key}[${j}] of row ${i}`).toBeCloseTo(v, 12);
        });
      } else {
        expect(actual, `${key} of row ${i}`).toEqual(value);
      }
    }
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-drift-sql-'));
  const migrations = join(dir, 'migrations');
  await mkdir(migrations);
  await copyFile(join(MIGRATIONS_DIR, '0003_drift.sql'), join(migrations, '0003_drift.sql'));
  store = openChdbStore({ path: join(dir, 'clickhouse') });
  const report = await store.migrate({ dir: migrations });
  expect(report.applied).toEqual(['0003_drift.sql']);

  // A reference, and an operator with thresholds sized to this small data set.
  const reference = buildReference(
    referenceSamples(syntheticReadings({ seed: 'sql-ref', patients: 600, readingsPerPatient: 10 })),
    { model: { name: 'news2', version: '1.0.0' }, generator: {}, sample: {} },
  );
  const models = await modelStoreWith(serialiseReference(reference));
  const operator = detectDrift({ model: 'news2', version: '1.0.0', thresholds: { minCount: 300 } });
  const clock = new ManualClock(T0);
  await operator.open({
    pipeline: 'vitals@1',
    clock,
    state: new MemoryStateBackend({ clock }),
    log: silentLogger,
    models: models.store,
  });
  await models.cleanup();

  // An older load with another policy: the newest load must win on both sides.
  const stale = operator.referenceRows(T0 - HOUR).map((row) => ({ ...row, js_threshold: 0.9, min_count: 1 }));
  const current = operator.referenceRows(T0);
  for (const rows of [stale, current]) {
    references.push(...rows);
    await store.insert('drift_reference_bins', rows, { dedupToken: `ref-${rows[0]!.loaded_at}` });
  }

  // Two firmware cohorts at two sites over three hours; the candidate firmware reads SpO2 3-4 points low. Each
  // (firmware, site) group holds 300 patients: fewer, and the patient mix alone moves an unbiased group's JS distance
  // towards 0.1 (a cohort is a set of patients, not of readings; see the README).
  const cohorts = [
    { firmware: '5.12.1', site: 'site-a', bias: 0 },
    { firmware: '5.12.1', site: 'site-b', bias: 0 },
    { firmware: '5.13.0-rc2', site: 'site-b', bias: [3, 4] as const },
  ];
  let offset = 0;
  for (const [c, cohort] of cohorts.entries()) {
    const readings = syntheticReadings({
      seed: `sql-${c}`,
      patients: 300,
      readingsPerPatient: 12,
      intervalMs: 15 * 60_000,
      spo2Bias: cohort.bias,
      missingTemperature: 0.02,
    });
    const records = scoredRecords(readings, {
      firmware: cohort.firmware,
      site: cohort.site,
      firstOffset: offset,
      partition: c,
    });
    offset += records.length;
    for (const [b, batch] of batches(records, 1000).entries()) {
      const rows = operator.measure(batch).side.driftHistograms ?? [];
      histograms.push(...rows);
      const token = `vitals@1|p${c}|${rows[0]!.first_offset}-${rows[0]!.last_offset}`;
      await store.insert('drift_histograms', asRows(rows), { dedupToken: token });
      if (b === 1) {
        // A retry after a crash: the same rows again, once with the same token and once as if the token were lost.
        histograms.push(...rows);
        await store.insert('drift_histograms', asRows(rows), { dedupToken: token });
        await store.insert('drift_histograms', asRows(rows), { dedupToken: `${token}|lost` });
      }
    }
  }
});

afterAll(async () => {
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('0003_drift.sql against metrics.ts', () => {
  it('stores the operator rows as they are, epoch-ms times included', async () => {
    const [row] = await store.query<{ window_start: number; rows: number }>(
      'SELECT toUnixTimestamp64Milli(min(window_start)) AS window_start, count() AS rows FROM drift_histograms FINAL',
    );
    expect(Number(row!.window_start)).toBe(T0);
    const distinct = new Set(histograms.map((h) => JSON.stringify(h))).size;
    expect(Number(row!.rows)).toBe(distinct);
  });

  it('computes the same functions as metrics.ts on hand values', async () => {
    const [row] = await store.query<{ js: number; psi: number; disjoint: number; p: number[] }>(
      `SELECT vigil_js_distance([0.5, 0.5], [0.25, 0.75]) AS js, vigil_psi([0.9, 0.1, 0], [0.8, 0, 0.2], 1e-4) AS psi,
              vigil_js_distance([1, 0, 0], [0, 0.5, 0.5]) AS disjoint, vigil_proportions([1, 3, 0]) AS p`,
    );
    expect(row!.js).toBeCloseTo(0.2208957688, 10);
    expect(row!.psi).toBeCloseTo(2.2212834, 6);
    expect(row!.disjoint).toBe(1);
    expect(row!.p).toEqual([0.25, 0.75, 0]);
  });

  it('drift_reports equals driftReports row for row', async () => {
    const query = driftReportsQuery({ model: 'news2', version: '1.0.0', from: T0 - HOUR, to: T0 + 24 * HOUR });
    const sql = (await store.query(query.sql, query.params)).map(query.decode);
    const ts = driftReports(histograms, references);
    expect(ts.length).toBe(2 * 3 * 8 + 3 * 8); // 3 hours × 8 features for each of three cohorts
    expectSameRows(sql, ts);

    // And the data says what it should: the candidate firmware's SpO2 drifts in every window, nothing else does.
    const drifted = ts.filter((r) => r.drifted).map((r) => `${r.firmware_version}/${r.feature}`);
    expect(new Set(drifted)).toEqual(new Set(['5.13.0-rc2/spo2', '5.13.0-rc2/score']));
    expect(ts.some((r) => r.dataset_drifted)).toBe(false);
    // Watermark: the latest window start, T0 + 2 h. Only the first hour has passed its end + 1 h of lateness.
    expect(new Set(ts.map((r) => r.watermark))).toEqual(new Set([T0 + 2 * HOUR]));
    expect(new Set(ts.filter((r) => r.complete).map((r) => r.window_start))).toEqual(new Set([T0]));
  });

  it('top findings agree with driftFindings, by firmware and by firmware and site', async () => {
    for (const by of ['firmware', 'firmware_site'] as const) {
      const options = { model: 'news2', version: '1.0.0', from: T0, to: T0 + 3 * HOUR, by, limit: 50 };
      const query = driftFindingsQuery(options);
      const sql = (await store.query(query.sql, query.params)).map(query.decode);
      const ts = driftFindings(histograms, references, options);
      expectSameRows(sql, ts);
      expect(ts[0]).toMatchObject({ firmware_version: '5.13.0-rc2', feature: 'spo2', drifted: true, windows: 3 });
    }
    const top = driftFindingsQuery({ model: 'news2', version: '1.0.0', from: T0, to: T0 + HOUR, limit: 2 });
    const rows = (await store.query(top.sql, top.params)).map(top.decode);
    expect(rows.map((r) => [r.firmware_version, r.site_id, r.feature, r.windows])).toEqual([
      ['5.13.0-rc2', null, 'spo2', 1],
      ['5.13.0-rc2', null, 'score', 1],
    ]);
  });
});
