/**
 * The deterioration models: the builder reproduces the checked-in artifacts and manifests byte for byte, the ONNX
 * network (run by onnxruntime-node) computes exactly the logistic function the fit describes, labels follow the
 * simulated outcomes, and the versions discriminate and calibrate on the held-out cohort as their manifests claim.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxModelStore } from '../adapters/onnx/index.ts';
import { parseManifest } from '../governance/manifest.ts';
import { buildFleet, DEFAULT_BIASED_FIRMWARE } from '../simulator/fleet.ts';
import { outcomesFor } from '../simulator/outcomes.ts';
import { Prng } from '../simulator/prng.ts';
import {
  type BuiltVersion,
  buildDeteriorationModels,
  buildVersion,
  contributions,
  DEFAULT_MODELS_ROOT,
  evaluate,
  HOLDOUT,
  inputRow,
  newtonLogistic,
  OUTCOME_HORIZON_MS,
  predict,
  simulateObservations,
  VERSIONS,
} from './build-deterioration-model.ts';

let built: BuiltVersion[];

beforeAll(() => {
  built = buildDeteriorationModels();
}, 120_000);

const checkedIn = (version: string, file: string) =>
  readFileSync(join(DEFAULT_MODELS_ROOT, 'deterioration', version, file));

describe('scripts/build-deterioration-model.ts', () => {
  it('rebuilds both checked-in versions byte for byte, with valid v2 manifests', () => {
    expect(built.map((b) => b.spec.version)).toEqual(['1.0.0', '1.1.0']);
    for (const b of built) {
      expect(Buffer.from(b.bytes).equals(checkedIn(b.spec.version, 'model.onnx'))).toBe(true);
      const committed = JSON.parse(checkedIn(b.spec.version, 'manifest.json').toString('utf8'));
      expect({ ...b.manifest, reference: committed.reference }).toEqual(committed);
      const manifest = parseManifest(committed, `deterioration@${b.spec.version}`);
      expect(manifest.output.kind).toBe('probability');
      expect(manifest.features).toEqual(manifest.inputs.map((i) => i.name));
    }
    const [v1, v11] = built.map((b) => b.manifest);
    expect(v1!.inputs).toHaveLength(7);
    expect(v11!.inputs.at(-1)).toMatchObject({ field: 'envelope.patient_subgroup', encode: { 'age:80+': 3 } });
    expect(v1!.drift.auto_rollback).toBe(false);
    expect(v11!.drift.auto_rollback).toBe(true);
    expect(v1!.training_data.sites).toHaveLength(10);
    expect(v11!.training_data.sites).toHaveLength(20);
    expect(v11!.training_data.rows).toBeGreaterThan(v1!.training_data.rows);
    for (const m of [v1!, v11!]) {
      if (m.output.kind !== 'probability') throw new Error('probability model expected');
      const t = m.output.thresholds;
      expect(0 < t.low_medium && t.low_medium < t.medium && t.medium < t.high && t.high < 1).toBe(true);
      expect(m.output.outcome.horizon_ms).toBe(OUTCOME_HORIZON_MS);
    }
  });

  it('the ONNX network computes the fitted logistic function and its contributions', async () => {
    const holdout = simulateObservations({ ...HOLDOUT, devices: 60 });
    for (const b of built) {
      const rows = holdout.map((o) => inputRow(o.envelope, b.spec.inputs)).filter((r) => r !== null);
      // Extremes too: every input at its range's ends.
      rows.push(
        b.spec.inputs.map((i) => i.min),
        b.spec.inputs.map((i) => i.max),
      );
      const k = b.spec.inputs.length;
      const session = await ort.InferenceSession.create(b.bytes);
      try {
        const out = await session.run({
          features: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, k]),
        });
        const probability = out['probability']!.data as Float32Array;
        const contrib = out['contributions']!.data as Float32Array;
        expect(rows.length).toBeGreaterThan(500);
        rows.forEach((row, r) => {
          const f32 = Array.from(Float32Array.from(row));
          expect(Math.abs(probability[r]! - predict(b.fit, f32))).toBeLessThan(2e-6);
          const expected = contributions(b.fit, f32);
          for (let j = 0; j < k; j++) expect(Math.abs(contrib[r * k + j]! - expected[j]!)).toBeLessThan(2e-5);
          // Contributions add up to the logit.
          const logit = Math.log(predict(b.fit, f32) / (1 - predict(b.fit, f32)));
          expect(Math.abs(expected.reduce((s, c) => s + c, b.fit.intercept) - logit)).toBeLessThan(1e-4);
        });
      } finally {
        await session.release();
      }
    }
  });

  it('loads through the model store, verified against the manifest', async () => {
    const store = new OnnxModelStore();
    for (const version of ['1.0.0', '1.1.0']) {
      const model = await store.load('deterioration', version);
      try {
        const k = model.manifest.inputs.length;
        const out = await model.run({ features: { data: new Float32Array(k).fill(Number.NaN), dims: [1, k] } });
        expect(Number.isNaN((out['probability']!.data as Float32Array)[0])).toBe(true);
      } finally {
        await model.close();
      }
    }
  });

  it('discriminates better than NEWS2 on the held-out cohort and is calibrated within its own criteria', () => {
    for (const b of built) {
      const c = b.manifest.acceptance_criteria.calibration!;
      expect(b.holdout.events).toBeGreaterThan(c.min_outcome_events);
      expect(b.holdout.auroc).toBeGreaterThan(b.holdoutNews2Auroc);
      expect(Math.abs(b.holdout.citl)).toBeLessThanOrEqual(c.citl_abs_max);
      expect(b.holdout.slope).toBeGreaterThanOrEqual(c.slope_min);
      expect(b.holdout.slope).toBeLessThanOrEqual(c.slope_max);
      expect(b.holdout.ece).toBeLessThanOrEqual(c.ece_max);
      expect(b.manifest.build['holdout_auroc']).toBe(b.holdout.auroc.toFixed(4));
    }
    expect(built[1]!.holdout.auroc).toBeGreaterThan(built[0]!.holdout.auroc);
  });

  it('labels a reading 1 exactly when its patient has an outcome within the horizon after it', () => {
    const spec = { ...HOLDOUT, devices: 120 };
    const observations = simulateObservations(spec);
    const fleet = buildFleet({
      devices: spec.devices,
      sites: spec.sites,
      seed: spec.seed,
      startTime: spec.startTime,
      horizonMs: spec.episodeScaleMs,
      candidateFirmware: DEFAULT_BIASED_FIRMWARE,
      biasOn: false,
      candidateFraction: 0,
    });
    const outcomes = new Map(
      outcomesFor(fleet, { seed: spec.seed, startTime: spec.startTime, endTime: spec.startTime + spec.horizonMs }).map(
        (o) => [o.patient_ref, o] as const,
      ),
    );
    expect(observations.some((o) => o.y === 1)).toBe(true);
    for (const o of observations) {
      const t = o.envelope.observed_at;
      const outcome = outcomes.get(o.envelope.patient_ref);
      expect(t + OUTCOME_HORIZON_MS).toBeLessThan(spec.startTime + spec.horizonMs);
      if (outcome) expect(t).toBeLessThan(outcome.occurred_at);
      expect(o.y).toBe(outcome && outcome.occurred_at - t <= OUTCOME_HORIZON_MS ? 1 : 0);
    }
    // The same cohort again: the same readings, the same labels (the build is a pure function of its specs).
    expect(simulateObservations(spec)).toEqual(observations);
    const again = buildVersion(VERSIONS[0]!, observations, observations);
    expect(
      Buffer.from(again.bytes).equals(Buffer.from(buildVersion(VERSIONS[0]!, observations, observations).bytes)),
    ).toBe(true);
  });

  it('newtonLogistic recovers known coefficients, and evaluate measures a perfect ranking as AUROC 1', () => {
    const prng = Prng.derive('logistic-test', 'x');
    const n = 20_000;
    const x = new Float64Array(n * 2);
    const y: (0 | 1)[] = [];
    for (let i = 0; i < n; i++) {
      x[i * 2] = prng.normal();
      x[i * 2 + 1] = prng.normal();
      const z = -1 + 0.8 * x[i * 2]! - 0.5 * x[i * 2 + 1]!;
      y.push(prng.float() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
    }
    const [b0, b1, b2] = newtonLogistic(x, y, 2, 0);
    expect(b0).toBeCloseTo(-1, 1);
    expect(b1).toBeCloseTo(0.8, 1);
    expect(b2).toBeCloseTo(-0.5, 1);
    expect(evaluate([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]).auroc).toBe(1);
    expect(evaluate([0.5, 0.5], [0, 1]).auroc).toBe(0.5);
  });
});
