/**
 * evaluateCriteria: every acceptance criterion passing and failing, on shadow periods built by hand so the expected
 * verdict is known exactly (well-calibrated scores: a share p of the events at score p have an outcome). loadShadowPeriod:
 * against an embedded store (chdb) with every migration applied, rows written as the sink would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import type { AcceptanceCriteria, ModelManifest } from '../runtime/models.ts';
import {
  evaluateCriteria,
  loadShadowPeriod,
  MIN_SUBGROUP_EVENTS,
  type PeriodEvent,
  type ShadowPeriodData,
} from './promotion.ts';
import { sampleManifest } from './testing.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 10, 1);

function manifest(criteria: Partial<AcceptanceCriteria> = {}): ModelManifest {
  const base = sampleManifest('deterioration', '1.1.0');
  return { ...base, acceptance_criteria: { ...base.acceptance_criteria, ...criteria } };
}

const bandOf = (p: number) => (p >= 0.3 ? 'high' : p >= 0.15 ? 'medium' : p >= 0.05 ? 'low_medium' : 'low');

interface Spec {
  /** The candidate's score; the live score defaults to the same. */
  p: number;
  y: 0 | 1;
  live?: number | null;
  subgroup?: string | null;
  /** Hours after T0. */
  at?: number;
}

/** One event per spec, each its own patient; an outcome 1 h after the event when y = 1. */
function period(specs: readonly Spec[], extra: Partial<ShadowPeriodData> = {}): ShadowPeriodData {
  const events: PeriodEvent[] = specs.map((s, i) => {
    const live = s.live === undefined ? s.p : s.live;
    return {
      event_id: `e${i}`,
      patient_ref: `pt-${i}`,
      observed_at: T0 + (s.at ?? 0) * HOUR,
      patient_subgroup: s.subgroup === undefined ? 'age:65-79' : s.subgroup,
      score: s.p,
      risk_band: bandOf(s.p),
      live: live === null ? null : { score: live, risk_band: bandOf(live) },
    };
  });
  const outcomes = specs.flatMap((s, i) =>
    s.y === 1 ? [{ patient_ref: `pt-${i}`, kind: 'icu_transfer', occurred_at: T0 + ((s.at ?? 0) + 1) * HOUR }] : [],
  );
  return {
    model: 'deterioration',
    version: '1.1.0',
    period: { from: T0, to: T0 + DAY },
    live_version: '1.0.0',
    live_output: 'probability',
    events,
    outcomes,
    as_of: T0 + 10 * DAY,
    ...extra,
  };
}

/** `n` events at each score, exactly round(p * n) of them with an outcome: perfectly calibrated. */
function calibrated(scores: readonly number[], n: number, options: Partial<Spec> = {}): Spec[] {
  return scores.flatMap((p) =>
    Array.from({ length: n }, (_, k): Spec => ({ p, y: k < Math.round(p * n) ? 1 : 0, ...options })),
  );
}

const SCORES = [0.02, 0.1, 0.2, 0.4, 0.6];
const byName = (results: ReturnType<typeof evaluateCriteria>) => new Map(results.map((r) => [r.criterion, r]));

describe('evaluateCriteria', () => {
  it('passes every criterion on a well-calibrated candidate that agrees with live', () => {
    const results = evaluateCriteria(manifest(), period(calibrated(SCORES, 100)));
    expect(results.map((r) => r.criterion)).toEqual([
      'min_inferences',
      'min_agreement_with_live',
      'calibration.min_outcome_events',
      'calibration.citl_abs_max',
      'calibration.slope',
      'calibration.ece_max',
      'subgroup_brier_margin:age:65-79',
    ]);
    expect(results.filter((r) => !r.passed)).toEqual([]);
    const r = byName(results);
    expect(r.get('min_inferences')?.observed).toBe('500');
    expect(r.get('min_agreement_with_live')?.observed).toBe('1.0000 (500 of 500 events)');
    expect(r.get('calibration.min_outcome_events')?.observed).toBe('132 (of 500 labelled)');
    expect(Math.abs(Number(r.get('calibration.citl_abs_max')?.observed))).toBeLessThan(1e-3);
    expect(Number(r.get('calibration.slope')?.observed)).toBeCloseTo(1, 2);
  });

  it('min_inferences fails below the minimum', () => {
    const r = byName(evaluateCriteria(manifest({ min_inferences: 501 }), period(calibrated(SCORES, 100))));
    expect(r.get('min_inferences')).toEqual({
      criterion: 'min_inferences',
      required: '>= 501',
      observed: '500',
      passed: false,
    });
  });

  it('min_agreement_with_live: the share of shared events with the same band; fails below, and with no live inference', () => {
    // 80 of 100 shared events agree; 20 events live put in another band; 50 events have no live inference at all.
    const specs: Spec[] = [
      ...Array.from({ length: 80 }, (): Spec => ({ p: 0.1, y: 0 })),
      ...Array.from({ length: 20 }, (): Spec => ({ p: 0.1, y: 0, live: 0.5 })),
      ...Array.from({ length: 50 }, (): Spec => ({ p: 0.1, y: 0, live: null })),
    ];
    const at = (min: number) => byName(evaluateCriteria(manifest({ min_agreement_with_live: min }), period(specs)));
    expect(at(0.8).get('min_agreement_with_live')).toMatchObject({
      observed: '0.8000 (80 of 100 events)',
      passed: true,
    });
    expect(at(0.81).get('min_agreement_with_live')?.passed).toBe(false);
    const alone = period(
      specs.map((s) => ({ ...s, live: null })),
      { live_version: null, live_output: null },
    );
    expect(byName(evaluateCriteria(manifest(), alone)).get('min_agreement_with_live')).toMatchObject({
      observed: 'n/a (no event scored by live (none))',
      passed: false,
    });
  });

  it('calibration.min_outcome_events counts positive outcomes among closed windows only', () => {
    const data = period(calibrated(SCORES, 100));
    expect(byName(evaluateCriteria(manifest(), data)).get('calibration.min_outcome_events')?.passed).toBe(true);
    const strict = manifest({
      calibration: { min_outcome_events: 133, citl_abs_max: 0.05, slope_min: 0.8, slope_max: 1.2, ece_max: 0.05 },
    });
    expect(byName(evaluateCriteria(strict, data)).get('calibration.min_outcome_events')?.passed).toBe(false);
    // Outcomes known only up to 12 h after T0: with a 24 h horizon no window has closed, nothing is labelled.
    const open = byName(evaluateCriteria(manifest(), { ...data, as_of: T0 + 12 * HOUR }));
    expect(open.get('calibration.min_outcome_events')).toMatchObject({ observed: '0 (of 0 labelled)', passed: false });
    expect(open.get('calibration.citl_abs_max')).toMatchObject({ passed: false });
    expect(open.get('calibration.citl_abs_max')?.observed).toMatch(/^n\/a/);
  });

  it('calibration.citl_abs_max and ece_max fail when the candidate over-predicts', () => {
    // Scores 0.1 higher than the observed rates: calibration-in-the-large about -0.1.
    const specs = calibrated(SCORES, 100).map((s) => ({ ...s, p: Math.min(1, s.p + 0.1), live: s.p }));
    const r = byName(evaluateCriteria(manifest(), period(specs)));
    expect(r.get('calibration.citl_abs_max')?.passed).toBe(false);
    expect(r.get('calibration.ece_max')?.passed).toBe(false);
    expect(Math.abs(Number(r.get('calibration.citl_abs_max')?.observed))).toBeGreaterThan(0.05);
  });

  it('calibration.slope fails when the scores are too spread out (slope < slope_min)', () => {
    // Observed rates 0.3..0.5 predicted as 0.1..0.7: the right mean, far too extreme, slope about 0.3.
    const specs = [
      ...calibrated([0.3], 200).map((s) => ({ ...s, p: 0.1 })),
      ...calibrated([0.4], 200).map((s) => ({ ...s, p: 0.4 })),
      ...calibrated([0.5], 200).map((s) => ({ ...s, p: 0.7 })),
    ];
    const r = byName(evaluateCriteria(manifest({ min_agreement_with_live: 0 }), period(specs)));
    expect(r.get('calibration.slope')?.passed).toBe(false);
    expect(Number(r.get('calibration.slope')?.observed)).toBeLessThan(0.8);
  });

  it('subgroup_brier_margin: fails where a subgroup is worse than live by more than the margin; small subgroups skipped', () => {
    const good = calibrated(SCORES, 40, { subgroup: 'age:18-64' }); // 200 events: calibrated on both sides
    // age:80+: live is calibrated, the candidate says 0.6 for everyone.
    const bad = calibrated(SCORES, 40, { subgroup: 'age:80+' }).map((s) => ({ ...s, live: s.p, p: 0.6 }));
    const few = calibrated([0.2], MIN_SUBGROUP_EVENTS - 1, { subgroup: 'age:65-79' });
    const r = byName(evaluateCriteria(manifest({ min_agreement_with_live: 0 }), period([...good, ...bad, ...few])));
    expect(r.get('subgroup_brier_margin:age:18-64')?.passed).toBe(true);
    expect(r.get('subgroup_brier_margin:age:80+')?.passed).toBe(false);
    expect(r.get('subgroup_brier_margin:age:65-79')).toMatchObject({
      observed: `skipped (${MIN_SUBGROUP_EVENTS - 1} labelled events)`,
      passed: true,
    });
  });

  it('subgroup_brier_margin fails when live outputs no probability, or no subgroup has enough events', () => {
    const data = period(calibrated(SCORES, 100));
    expect(
      byName(evaluateCriteria(manifest(), { ...data, live_output: 'news2' })).get('subgroup_brier_margin'),
    ).toMatchObject({ observed: 'n/a (live 1.0.0 outputs no probability)', passed: false });
    const tiny = period(calibrated([0.2], 10));
    const results = evaluateCriteria(manifest({ min_inferences: 1 }), tiny);
    expect(results.filter((x) => x.criterion.startsWith('subgroup_brier_margin')).map((x) => x.passed)).toEqual([
      true,
      false,
    ]);
  });

  it('a criterion the manifest leaves null is listed as skipped', () => {
    const news2 = sampleManifest('news2', '1.1.0', {
      output: { kind: 'news2', score_tensor: 'score', subscores_tensor: 'subscores', band_tensor: 'band' },
      acceptance_criteria: {
        min_inferences: 10,
        min_agreement_with_live: 0.9,
        calibration: null,
        subgroup_brier_margin: null,
      },
    });
    const specs = Array.from({ length: 20 }, (): Spec => ({ p: 3, y: 0 }));
    const results = evaluateCriteria(news2, period(specs, { live_output: 'news2' }));
    expect(results).toEqual([
      { criterion: 'min_inferences', required: '>= 10', observed: '20', passed: true },
      { criterion: 'min_agreement_with_live', required: '>= 0.9', observed: '1.0000 (20 of 20 events)', passed: true },
      { criterion: 'calibration', required: 'null (not specified)', observed: 'skipped', passed: true },
      { criterion: 'subgroup_brier_margin', required: 'null (not specified)', observed: 'skipped', passed: true },
    ]);
  });
});

describe('loadShadowPeriod (chdb, every migration applied)', () => {
  let dir: string;
  let store: ClickHouseStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vigil-promotion-'));
    store = openChdbStore({ path: join(dir, 'store') });
    await store.migrate();
    const row = (
      event: number,
      version: string,
      rollout: string,
      score: number,
      band: string,
      hours: number,
      scoredLater = 0,
    ) =>
      `('${version}-e${event}', 'e${event}', 'pt-${event}', 'site-01', '2.1.0', 'age:65-79', ` +
      `fromUnixTimestamp64Milli(${T0 + hours * HOUR}), fromUnixTimestamp64Milli(${T0 + hours * HOUR + 1000 + scoredLater}), ` +
      `'deterioration', '${version}', '${'a'.repeat(64)}', 'onnxruntime-node', '1', 'cfg', '${rollout}', 'fv${event}', ` +
      `${score}, '${band}', 'vitals@1/score/deterioration@${version}', 'dev-${event}')`;
    const rows = [
      // The candidate in shadow on e1..e4 (e4 scored twice: a retried batch, one inference), and e9 after the period.
      row(1, '1.1.0', 'shadow', 0.1, 'low_medium', 1),
      row(2, '1.1.0', 'shadow', 0.4, 'high', 2),
      row(3, '1.1.0', 'shadow', 0.2, 'medium', 3),
      row(4, '1.1.0', 'shadow', 0.01, 'low', 4),
      row(4, '1.1.0', 'shadow', 0.01, 'low', 4, 5000),
      row(9, '1.1.0', 'shadow', 0.5, 'high', 30),
      // Live 1.0.0 on e1..e3 only; another version's live row on e4 is not the live version compared with.
      row(1, '1.0.0', 'live', 0.12, 'low_medium', 1),
      row(2, '1.0.0', 'live', 0.2, 'medium', 2),
      row(3, '1.0.0', 'live', 0.18, 'medium', 3),
      row(4, '0.9.0', 'live', 0.3, 'high', 4),
    ];
    await store.command(
      `INSERT INTO inferences (inference_id, event_id, patient_ref, site_id, firmware_version, patient_subgroup,
         observed_at, scored_at, model_name, model_version, model_artifact_sha256, runtime, runtime_version, config_hash,
         rollout, feature_vector_hash, score, risk_band, transformation_version, device_id) VALUES ${rows.join(', ')}`,
    );
    const outcome = (id: number, patient: string, kind: string, hours: number) =>
      `('o${id}', '${patient}', 'site-01', '${kind}', fromUnixTimestamp64Milli(${T0 + hours * HOUR}), ` +
      `fromUnixTimestamp64Milli(${T0 + hours * HOUR}), 'test')`;
    await store.command(
      `INSERT INTO outcomes (outcome_id, patient_ref, site_id, kind, occurred_at, recorded_at, source) VALUES ${[
        outcome(1, 'pt-2', 'icu_transfer', 5),
        outcome(2, 'pt-2', 'icu_transfer', 5), // a re-sent record: the same outcome
        outcome(3, 'pt-7', 'icu_transfer', 5), // not a patient of the candidate
        outcome(4, 'pt-3', 'escalation', -2), // before the period
      ].join(', ')}`,
    );
  }, 120_000);

  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("pairs the candidate with the live version on the same events, one inference per event, and its patients' outcomes", async () => {
    const data = await loadShadowPeriod(store, {
      model: 'deterioration',
      version: '1.1.0',
      since: T0,
      until: T0 + DAY,
      liveVersion: '1.0.0',
      liveOutput: 'probability',
      asOf: T0 + 10 * DAY,
    });
    expect(data).toMatchObject({ live_version: '1.0.0', live_output: 'probability', as_of: T0 + 10 * DAY });
    expect(data.events).toEqual([
      {
        event_id: 'e1',
        patient_ref: 'pt-1',
        observed_at: T0 + HOUR,
        patient_subgroup: 'age:65-79',
        score: 0.1,
        risk_band: 'low_medium',
        live: { score: 0.12, risk_band: 'low_medium' },
      },
      {
        event_id: 'e2',
        patient_ref: 'pt-2',
        observed_at: T0 + 2 * HOUR,
        patient_subgroup: 'age:65-79',
        score: 0.4,
        risk_band: 'high',
        live: { score: 0.2, risk_band: 'medium' },
      },
      {
        event_id: 'e3',
        patient_ref: 'pt-3',
        observed_at: T0 + 3 * HOUR,
        patient_subgroup: 'age:65-79',
        score: 0.2,
        risk_band: 'medium',
        live: { score: 0.18, risk_band: 'medium' },
      },
      {
        event_id: 'e4',
        patient_ref: 'pt-4',
        observed_at: T0 + 4 * HOUR,
        patient_subgroup: 'age:65-79',
        score: 0.01,
        risk_band: 'low',
        live: null,
      },
    ]);
    expect(data.outcomes).toEqual([{ patient_ref: 'pt-2', kind: 'icu_transfer', occurred_at: T0 + 5 * HOUR }]);
    const r = byName(evaluateCriteria(manifest({ min_inferences: 4, min_agreement_with_live: 0.6 }), data));
    expect(r.get('min_agreement_with_live')).toMatchObject({ observed: '0.6667 (2 of 3 events)', passed: true });
    expect(r.get('calibration.min_outcome_events')?.observed).toBe('1 (of 4 labelled)');
  }, 60_000);

  it('refuses an empty period', async () => {
    await expect(
      loadShadowPeriod(store, { model: 'deterioration', version: '1.1.0', since: T0, until: T0, liveVersion: null }),
    ).rejects.toThrow(/period is empty/);
  });
});
