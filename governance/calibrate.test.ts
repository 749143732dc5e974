/**
 * The calibration job on the embedded ClickHouse (chdb, every migration applied): inferences of a probability model
 * (a live and a shadow version on the same events, each stored twice as two derivations, plus a retried batch) and
 * outcomes (some re-landed, some of kinds not asked for) are landed; computeCalibration's rows must equal
 * calibrationMetrics over labelInferences on the same data in memory, per version x rollout x cohort, and
 * recordCalibration must store them in model_calibration as they are.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { landOutcomes, type Outcome } from '../pipelines/outcomes.ts';
import { inferenceRow } from '../pipelines/outputs.ts';
import type { Inference } from '../schemas/types.ts';
import { inferenceFor, normalisedEvent, sha256Hex } from '../test/fixtures/clickhouse.ts';
import {
  type CalibrationJob,
  computeCalibration,
  MODEL_CALIBRATION_TABLE,
  type ModelCalibration,
  recordCalibration,
} from './calibrate.ts';
import { calibrationMetrics, labelInferences } from './calibration.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 2, 1, 0, 0, 0);
const HORIZON = 24 * HOUR;
const KINDS = ['icu_transfer', 'confirmed_deterioration'];

/** A seeded generator (mulberry32). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- the seeded ward: 40 patients on two sites, three subgroups (one unknown), 10 days of hourly-ish inferences ---
const next = random(2026);
const SITES = ['site-a', 'site-b'];
const SUBGROUPS = ['age:18-64', 'age:65-79', null];
const patients = Array.from({ length: 40 }, (_, i) => ({
  device: `dev-${String(i).padStart(3, '0')}`,
  patient_ref: `pt:v1:${sha256Hex(`calibrate-${i}`).slice(0, 24)}`,
  site: SITES[i % 2]!,
  subgroup: SUBGROUPS[i % 3]!,
  risk: next() * 0.6, // the patient's underlying risk
}));

const inferences: Inference[] = [];
const outcomes: Outcome[] = [];
let n = 0;
for (const patient of patients) {
  for (let k = 0; k < 12; k++) {
    n += 1;
    const observedAt = T0 + Math.floor(next() * 10 * 24) * HOUR + k * 1_000;
    const event = normalisedEvent({
      n,
      deviceId: patient.device,
      siteId: patient.site,
      patientSubgroup: patient.subgroup,
      observedAt,
    });
    const live = Math.min(0.99, Math.max(0.01, patient.risk + (next() - 0.5) * 0.2));
    const base = { ...event, patient_ref: patient.patient_ref };
    const id = (version: string) => sha256Hex(`${event.event_id}|deterioration|${version}`).slice(0, 32);
    inferences.push({
      ...inferenceFor(base, { score: live, modelVersion: '1.0.0', rollout: 'live' }),
      model_name: 'deterioration',
      inference_id: id('1.0.0'),
    });
    inferences.push({
      ...inferenceFor(base, { score: Math.min(0.99, live * 1.4), modelVersion: '1.1.0', rollout: 'shadow' }),
      model_name: 'deterioration',
      inference_id: id('1.1.0'),
    });
  }
  // Outcomes: the riskier a patient, the likelier one; some of a kind the model does not predict.
  const count = Math.floor(patient.risk * 16 * next());
  for (let j = 0; j < count; j++) {
    outcomes.push({
      outcome_id: `out-${outcomes.length}`,
      patient_ref: patient.patient_ref,
      site_id: patient.site,
      kind: (['icu_transfer', 'confirmed_deterioration', 'escalation'] as const)[j % 3]!,
      occurred_at: T0 + Math.floor(next() * 11 * 24) * HOUR + 30 * 60_000,
      recorded_at: T0 + 12 * 24 * HOUR,
      source: 'test-ward',
    });
  }
}
// A NEWS2 inference in the same window: another model, never in this model's figures.
inferences.push(inferenceFor(normalisedEvent({ n: 9999, observedAt: T0 + HOUR }), { score: 7 }));

const WINDOW = { from: T0, to: T0 + 10 * 24 * HOUR };
// Now: nine days in, so the last two days of inferences (their 24 h windows still open) are left out.
const NOW = T0 + 9 * 24 * HOUR;

/** The expected rows, computed in memory from the same records: labelInferences + calibrationMetrics per group. */
function expected(job: CalibrationJob): Omit<ModelCalibration, 'bins'>[] {
  const rows: Omit<ModelCalibration, 'bins'>[] = [];
  const mine = inferences.filter(
    (i) =>
      i.model_name === job.model &&
      (job.version === undefined || i.model_version === job.version) &&
      i.observed_at >= job.window.from &&
      i.observed_at < job.window.to,
  );
  const groups = [...new Set(mine.map((i) => `${i.model_version}|${i.rollout}`))].sort();
  for (const group of groups) {
    const [version, rollout] = group.split('|') as [string, string];
    const members = mine.filter((i) => i.model_version === version && i.rollout === rollout);
    const cohorts: [string, (i: Inference) => boolean][] = [
      ['all', () => true],
      ...SITES.map((s): [string, (i: Inference) => boolean] => [`site:${s}`, (i) => i.site_id === s]),
      ...SUBGROUPS.filter((s) => s !== null)
        .sort()
        .map((s): [string, (i: Inference) => boolean] => [`subgroup:${s}`, (i) => i.patient_subgroup === s]),
    ];
    for (const [cohort, keep] of cohorts) {
      const labelled = labelInferences(members.filter(keep), outcomes, job.horizonMs, job.kinds, job.now);
      if (labelled.length === 0) continue;
      const { bins: _bins, ...metrics } = calibrationMetrics(labelled);
      rows.push({
        model: job.model,
        version,
        rollout,
        cohort,
        window_start: job.window.from,
        window_end: job.window.to,
        horizon_ms: job.horizonMs,
        outcome_kinds: job.kinds,
        computed_at: job.now,
        ...metrics,
      });
    }
  }
  return rows;
}

/**
 * Equal figures: counts, keys and parameters exactly, fractional figures to 1e-9 (the store returns rows in its own
 * order, so sums are added in another order than in memory).
 */
function expectSameFigures(actual: Record<string, unknown>, want: Record<string, unknown> | undefined): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(want ?? {}).sort());
  for (const [key, value] of Object.entries(actual)) {
    const expectedValue = want?.[key];
    if (typeof value === 'number' && !Number.isInteger(value))
      expect(value, key).toBeCloseTo(expectedValue as number, 9);
    else expect(value, key).toEqual(expectedValue);
  }
}

let dir: string;
let store: ClickHouseStore;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vigil-calibrate-'));
  store = openChdbStore({ path: dir });
  await store.migrate();
  await store.insert('inferences', inferences.map(inferenceRow), { dedupToken: 'inferences' });
  // A batch retried past the dedup window, and every inference derived again by a newer pipeline version: the job
  // reads inferences_current, one row per inference.
  await store.insert('inferences', inferences.slice(0, 50).map(inferenceRow), { dedupToken: 'inferences-retry' });
  const rescored = inferences.map((i) => ({
    ...i,
    transformation_version: 'vitals@2/score/deterioration',
    scored_at: i.scored_at + HOUR,
  }));
  await store.insert('inferences', rescored.map(inferenceRow), { dedupToken: 'inferences-v2' });
  await landOutcomes(store, outcomes);
  await landOutcomes(store, outcomes.slice(0, 5).reverse()); // re-sent by the feed in another order: same outcomes
});

afterAll(async () => {
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('computeCalibration on chdb', () => {
  const job: CalibrationJob = { model: 'deterioration', window: WINDOW, horizonMs: HORIZON, kinds: KINDS, now: NOW };

  it('equals calibrationMetrics over labelInferences of the same data, per version x rollout x cohort', async () => {
    const rows = await computeCalibration(store, job);
    const want = expected(job);
    // 2 versions x (all + 2 sites + 2 known subgroups)
    expect(rows).toHaveLength(10);
    expect(rows.map((r) => [r.version, r.rollout, r.cohort])).toEqual(
      want.map((r) => [r.version, r.rollout, r.cohort]),
    );
    for (const [i, row] of rows.entries()) {
      const { bins, ...figures } = row;
      expectSameFigures(figures, want[i]);
      expect(bins).toHaveLength(15);
    }
    const all = rows.find((r) => r.version === '1.0.0' && r.cohort === 'all')!;
    // The data exercise what matters: both classes, open windows left out, figures defined.
    expect(all.events).toBeGreaterThan(20);
    expect(all.n).toBeLessThan(inferences.filter((i) => i.model_version === '1.0.0').length);
    expect(all.slope).not.toBeNull();
    expect(all.auroc).toBeGreaterThan(0.5);
    expect(rows.find((r) => r.cohort === 'subgroup:null')).toBeUndefined();
  });

  it('narrows to one version, and is empty for a window with no closed inference', async () => {
    const shadow = await computeCalibration(store, { ...job, version: '1.1.0' });
    expect(new Set(shadow.map((r) => `${r.version}/${r.rollout}`))).toEqual(new Set(['1.1.0/shadow']));
    const { bins: _b, ...first } = shadow[0]!;
    expectSameFigures(first, expected({ ...job, version: '1.1.0' })[0]);
    expect(await computeCalibration(store, { ...job, now: T0 + HORIZON - 1 })).toEqual([]);
  });

  it('refuses a model whose scores are not probabilities', async () => {
    await expect(computeCalibration(store, { ...job, model: 'news2' })).rejects.toThrow(
      /news2@1\.0\.0: .*outside \[0, 1\].*probability model/,
    );
    await expect(computeCalibration(store, { ...job, kinds: [] })).rejects.toThrow(/outcome kind/);
  });

  it('records the rows in model_calibration as computed, once per computation', async () => {
    const rows = await computeCalibration(store, job);
    expect(rows.length).toBeGreaterThan(0);
    expect(await recordCalibration(store, rows)).toBe(rows.length);
    await recordCalibration(store, rows); // a retried insert: the same token
    const stored = await store.query<Record<string, unknown>>(
      `SELECT version, rollout, cohort, n, events, citl, slope, intercept, ece15, brier, auroc, bin_n, bin_events,
              bin_mean_predicted, outcome_kinds, horizon_ms, toUnixTimestamp64Milli(computed_at) AS computed_at,
              toUnixTimestamp64Milli(window_start) AS window_start
         FROM ${MODEL_CALIBRATION_TABLE} FINAL ORDER BY version, rollout, cohort`,
    );
    expect(stored).toHaveLength(rows.length);
    const byKey = new Map(rows.map((r) => [`${r.version}|${r.cohort}`, r]));
    for (const s of stored) {
      const r = byKey.get(`${s.version}|${s.cohort}`)!;
      expect(s).toMatchObject({ rollout: r.rollout, n: r.n, events: r.events, outcome_kinds: KINDS });
      for (const figure of ['citl', 'slope', 'intercept', 'ece15', 'brier', 'auroc'] as const) {
        expect(s[figure] as number).toBeCloseTo(r[figure]!, 12);
      }
      expect(s.bin_n).toEqual(r.bins.map((b) => b.n));
      expect(s.bin_events).toEqual(r.bins.map((b) => b.events));
      expect((s.bin_mean_predicted as (number | null)[]).map((v) => (v === null ? null : Math.round(v * 1e9)))).toEqual(
        r.bins.map((b) => (b.mean_predicted === null ? null : Math.round(b.mean_predicted * 1e9))),
      );
      expect(Number(s.horizon_ms)).toBe(HORIZON);
      expect(Number(s.computed_at)).toBe(NOW);
      expect(Number(s.window_start)).toBe(WINDOW.from);
    }
  });
});
