/**
 * Fixed report figures for the chart, page and browser tests: two versions of a probability model, one live and one
 * canary then promoted, with a reliability bin at (0.3, 0.25), score histograms, drift and a full rollout history.
 * No vitest import: test scaffolding beside the tests that use it.
 */
import type { ModelChange } from '../types.ts';
import type { CalibrationFigures, ReliabilityBin, ReportData } from './types.ts';

export const T0 = Date.UTC(2026, 10, 1, 8, 0, 0);
const HOUR = 3_600_000;

/** 15 bins of [0, 1] with the given (mean_predicted, observed_rate, n) in the bins they fall in; others empty. */
export function bins15(points: readonly [number, number, number][]): ReliabilityBin[] {
  const out: ReliabilityBin[] = [];
  for (let i = 0; i < 15; i++) {
    const lo = i / 15;
    const hi = (i + 1) / 15;
    const p = points.find(([m]) => m >= lo && m < hi);
    out.push({ lo, hi, n: p?.[2] ?? 0, mean_predicted: p?.[0] ?? null, observed_rate: p?.[1] ?? null });
  }
  return out;
}

function metrics(
  points: readonly [number, number, number][],
  overrides: Partial<CalibrationFigures> = {},
): CalibrationFigures {
  const bins = bins15(points);
  const n = bins.reduce((a, b) => a + b.n, 0);
  const events = Math.round(bins.reduce((a, b) => a + b.n * (b.observed_rate ?? 0), 0));
  return { n, events, citl: 0.01, slope: 0.97, ece15: 0.021, brier: 0.081, auroc: 0.812, bins, ...overrides };
}

const criteria = {
  min_inferences: 500,
  min_agreement_with_live: 0.9,
  calibration: { min_outcome_events: 20, citl_abs_max: 0.05, slope_min: 0.8, slope_max: 1.2, ece_max: 0.05 },
  subgroup_brier_margin: 0.02,
};

export const HISTORY: ModelChange[] = [
  {
    kind: 'rollout',
    change_id: '01A',
    model: 'deterioration',
    at: T0,
    actor: 'ml-lead',
    reason: 'first live version',
    version: '1.0.0',
    mode: 'live',
    percent: 100,
    cohort: {},
    cohort_expr: '',
    approval_id: '00A',
  },
  {
    kind: 'approved',
    change_id: '01B',
    model: 'deterioration',
    at: T0 + 2 * HOUR,
    actor: 'dr-safety',
    reason: 'validation report VR-7 <reviewed>',
    version: '2.0.0',
    artifact_sha256: 'b'.repeat(64),
    role: 'clinical-safety-officer',
  },
  {
    kind: 'rollout',
    change_id: '01C',
    model: 'deterioration',
    at: T0 + 3 * HOUR,
    actor: 'ml-lead',
    reason: 'canary on one site',
    version: '2.0.0',
    mode: 'canary',
    percent: 10,
    cohort: { sites: ['site-A'] },
    cohort_expr: 'site=site-A',
    approval_id: '01B',
  },
  {
    kind: 'promoted',
    change_id: '01D',
    model: 'deterioration',
    at: T0 + 8 * HOUR,
    actor: 'ml-lead',
    reason: 'criteria held',
    version: '2.0.0',
    previous: '1.0.0',
    approval_id: '01B',
    criteria: [{ criterion: 'calibration.ece_max', required: '<= 0.05', observed: '0.021', passed: true }],
    period: { from: T0 + 3 * HOUR, to: T0 + 8 * HOUR },
  },
];

export function fixtureReport(): ReportData {
  return {
    model: 'deterioration',
    generated_at: T0 + 10 * HOUR,
    sources: { store: 'embedded: /tmp/store', control_log: 'file: /tmp/control/model-rollouts.jsonl' },
    versions: [
      {
        version: '1.0.0',
        artifact_sha256: 'a'.repeat(64),
        manifest_sha256: 'c'.repeat(64),
        intended_use: 'Adult ward patients: probability of deterioration within 12 hours.',
        acceptance_criteria: criteria,
        output_kind: 'probability',
        added: { at: T0 - HOUR, actor: 'ml-lead' },
        approvals: [{ at: T0 - HOUR / 2, actor: 'dr-safety', role: 'clinical-safety-officer', reason: 'VR-6' }],
        routing: null,
        inferences: 4200,
      },
      {
        version: '2.0.0',
        artifact_sha256: 'b'.repeat(64),
        manifest_sha256: 'd'.repeat(64),
        intended_use: 'Adult ward patients: probability of deterioration within 12 hours.',
        acceptance_criteria: criteria,
        output_kind: 'probability',
        added: { at: T0 + HOUR, actor: 'ml-lead' },
        approvals: [{ at: T0 + 2 * HOUR, actor: 'dr-safety', role: 'clinical-safety-officer', reason: 'VR-7' }],
        routing: 'live',
        inferences: 900,
      },
    ],
    calibration: [
      {
        version: '1.0.0',
        rollout: 'live',
        metrics: metrics([
          [0.05, 0.04, 900],
          [0.3, 0.25, 120],
          [0.7, 0.74, 30],
        ]),
      },
      {
        version: '2.0.0',
        rollout: 'canary',
        metrics: metrics(
          [
            [0.04, 0.05, 300],
            [0.32, 0.3, 60],
            [0.8, 0.7, 12],
          ],
          { ece15: 0.09, slope: 0.6 },
        ),
      },
    ],
    scores: [
      { version: '1.0.0', by: 'rollout', cohort: 'live', lo: 0, width: 0.5, counts: [1, 3] },
      { version: '1.0.0', by: 'site', cohort: 'site-A', lo: 0, width: 0.5, counts: [2, 2] },
      { version: '1.0.0', by: 'site', cohort: 'site-B', lo: 0, width: 0.5, counts: [3, 1] },
      { version: '2.0.0', by: 'rollout', cohort: 'canary', lo: 0, width: 0.5, counts: [5, 5] },
    ],
    drift: [
      {
        version: '1.0.0',
        js_threshold: 0.3,
        points: [
          { version: '1.0.0', feature: 'heart_rate', window_start: T0, js_distance: 0.1, drifted: false },
          { version: '1.0.0', feature: 'heart_rate', window_start: T0 + HOUR, js_distance: 0.5, drifted: true },
          { version: '1.0.0', feature: 'spo2', window_start: T0, js_distance: 0.05, drifted: false },
          { version: '1.0.0', feature: 'spo2', window_start: T0 + HOUR, js_distance: 0.08, drifted: false },
        ],
        dataset_drifted_windows: [T0 + HOUR],
      },
    ],
    history: HISTORY,
    notes: [],
  };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Whether the bytes start like a PNG (signature, then the IHDR chunk), and the width and height IHDR gives. */
export function pngHeader(bytes: Buffer): { png: boolean; width: number; height: number } {
  const png =
    bytes.length >= 24 && bytes.subarray(0, 8).equals(PNG_SIGNATURE) && bytes.toString('latin1', 12, 16) === 'IHDR';
  return { png, width: png ? bytes.readUInt32BE(16) : 0, height: png ? bytes.readUInt32BE(20) : 0 };
}
