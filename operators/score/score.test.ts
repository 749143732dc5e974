/**
 * The `score` operator over the real checked-in NEWS2 model and onnxruntime: the only test double is a thin spy
 * around the LoadedModel that counts `run()` calls (and forwards every one to the real session).
 */
/**
 * The `score` operator over real ONNX models and onnxruntime: the checked-in NEWS2 model and tiny logistic "risk"
 * models written in a temp store (test-models.ts). The only test doubles: a store wrapper that counts loads, closes
 * and model calls (forwarding every one to the real session, and able to poison a version's outputs), and a
 * routing table the tests change between batches, as the registry's would.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODELS_ROOT } from '../../adapters/onnx/index.ts';
import { riskBandOf } from '../../governance/manifest.ts';
import { cohortBucket } from '../../governance/routing.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { Cohort, ModelRollouts, ModelRoute, ModelStore, RoutingTable } from '../../runtime/models.ts';
import type { OperatorContext, Results } from '../../runtime/operator.ts';
import type { InFlight, Origin } from '../../runtime/record.ts';
import type { StateBackend } from '../../runtime/state.ts';
import { type Envelope, type Inference, type VitalSigns, wrapPayload } from '../../schemas/types.ts';
import { envelope } from '../../test/fixtures/envelope.ts';
import type { CheckedEvent, ProvenanceFlag, ScoredEvent } from '../types.ts';
import { NEWS2_FEATURES, type ScoreOperator, score } from './index.ts';
import { news2Reference } from './news2-reference.ts';
import { canonicalJson, deterministicUlid } from './operator.ts';
import { CountingStore, RISK_THRESHOLDS, type RiskModelSpec, riskOf, TestModelRoot } from './test-models.ts';

const inferenceType = avro.Type.forSchema(
  JSON.parse(readFileSync(new URL('../../schemas/avro/inference/v2.avsc', import.meta.url), 'utf8')),
);

const RISK_1_0: RiskModelSpec = { version: '1.0.0', weights: [0.15, -0.2, 1.1], bias: 12 };
const RISK_1_1: RiskModelSpec = { version: '1.1.0', weights: [0.2, -0.25, 0.8], bias: 16 };

let models: TestModelRoot;
beforeAll(() => {
  models = new TestModelRoot();
  models.addRisk(RISK_1_0);
  models.addRisk(RISK_1_1);
  models.addRisk({ version: '1.2.0', weights: [0.1, -0.1, 0.5], bias: 5 });
  models.corrupt('risk', '1.2.0');
  models.addRisk({
    version: '2.0.0',
    weights: [0.1, 0.5],
    bias: -3,
    contributions: false,
    inputs: [
      { name: 'respiratory_rate', field: 'vital_signs.respiratory_rate', unit: '/min', min: 4, max: 60 },
      { name: 'sequence', field: 'envelope.sequence', unit: '1', min: 0, max: 1_000_000 },
    ],
  });
});
afterAll(() => models.cleanup());

/** `score` keeps no state: any use of it is a bug. */
const noState: StateBackend = new Proxy({} as StateBackend, {
  get(_target, prop) {
    if (prop === 'kind') return 'memory';
    return () => {
      throw new Error(`score must not use state (called ${String(prop)})`);
    };
  },
});

/** A routing table the test replaces between batches, as the registry's directory does when a change arrives. */
class TestRollouts implements ModelRollouts {
  table: RoutingTable = { revision: 0, route: () => undefined };
  current(): RoutingTable {
    return this.table;
  }
  set(revision: number, routes: Record<string, ModelRoute>): void {
    this.table = { revision, route: (model) => routes[model] };
  }
}

function route(
  model: string,
  spec: {
    live?: string;
    canary?: { version: string; percent: number; cohort?: Cohort };
    shadows?: string[];
  },
): ModelRoute {
  return {
    model,
    live: spec.live ? { version: spec.live, rollout_id: `ro-live-${spec.live}`, approved: true } : null,
    canary: spec.canary
      ? {
          version: spec.canary.version,
          rollout_id: `ro-canary-${spec.canary.version}`,
          approved: true,
          percent: spec.canary.percent,
          cohort: spec.canary.cohort ?? {},
          cohort_expr: '',
        }
      : null,
    shadows: (spec.shadows ?? []).map((v) => ({ version: v, rollout_id: `ro-shadow-${v}`, approved: false })),
  };
}

function context(store: ModelStore, clock = new ManualClock(), rollouts?: ModelRollouts): OperatorContext {
  return { pipeline: 'vitals@1', clock, state: noState, log: silentLogger, models: store, rollouts };
}

function newStore(): CountingStore {
  return new CountingStore(models.root);
}

const NEWS2 = { model: 'news2', version: '1.0.0' } as const;
const RISK = { model: 'risk', version: '1.0.0' } as const;

const NORMAL: VitalSigns = {
  respiratory_rate: 16,
  spo2: 97,
  on_oxygen: false,
  systolic_bp: 120,
  pulse: 70,
  consciousness: 'A',
  temperature_c: 37,
};

let seq = 0;
function eventId(n: number): string {
  return `01J${String(n).padStart(23, '0')}`;
}

/** The shared envelope, varied per call (ids, device, patient, time), from a batch of one lot and subgroup. */
function nextEnvelope(payload: Envelope['payload'], overrides: Partial<Envelope> = {}): Envelope {
  seq += 1;
  return envelope({
    event_id: eventId(seq),
    device_id: `dev-${seq % 7}`,
    patient_ref: `pt-${seq % 5}`,
    observed_at: Date.UTC(2026, 0, 1, 8) + seq * 1000,
    received_at: Date.UTC(2026, 0, 1, 8) + seq * 1000 + 50,
    sequence: seq,
    device_batch: 'lot-7',
    patient_subgroup: 'age_65_plus',
    payload,
    ...overrides,
  });
}

function vitals(
  v: Partial<VitalSigns> = {},
  flags: ProvenanceFlag[] = [],
  overrides: Partial<Envelope> = {},
): InFlight<CheckedEvent> {
  return record({ envelope: nextEnvelope(wrapPayload('vital_signs', { ...NORMAL, ...v }), overrides), flags });
}

function deviceStatus(): InFlight<CheckedEvent> {
  const payload = wrapPayload('device_status', {
    state: 'ok',
    battery_pct: 80,
    signal_dbm: -60,
    calibration_state: 'current',
    last_calibrated_at: null,
  });
  return record({ envelope: nextEnvelope(payload, { event_type: 'device_status' }), flags: [] });
}

let offset = 0;
function record(value: CheckedEvent): InFlight<CheckedEvent> {
  offset += 1;
  const raw = Buffer.from(`raw-${offset}`);
  const origin: Origin = {
    topic: 'vigil.telemetry.raw',
    partition: 0,
    offset,
    consumedAt: 0,
    rawSha256: createHash('sha256').update(raw).digest('hex'),
    raw,
    headers: [],
    key: value.envelope.device_id,
  };
  return { value, origin };
}

function featuresOf(v: VitalSigns): number[] {
  return [
    v.respiratory_rate!,
    v.spo2!,
    v.on_oxygen ? 1 : 0,
    v.systolic_bp!,
    v.pulse!,
    v.consciousness === 'A' ? 0 : 1,
    v.temperature_c!,
  ];
}

function vitalsOf(r: InFlight<CheckedEvent>): VitalSigns {
  return (r.value.envelope.payload as { 'vigil.telemetry.payload.VitalSigns': VitalSigns })[
    'vigil.telemetry.payload.VitalSigns'
  ];
}

const opened: ScoreOperator[] = [];
async function openScore(
  config: Parameters<typeof score>[0],
  store: ModelStore = newStore(),
  clock = new ManualClock(),
  rollouts?: ModelRollouts,
): Promise<ScoreOperator> {
  const op = score(config);
  await op.open(context(store, clock, rollouts));
  opened.push(op);
  return op;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((op) => op.close()));
});

function accounted(input: number, results: Results<ScoredEvent>): void {
  expect(results.out.length + results.rejected.length + results.duplicates.length).toBe(input);
}

/** `<model>@<version>/<rollout>` of each inference of each output record. */
function routed(results: Results<ScoredEvent>): string[][] {
  return results.out.map((r) => r.value.inferences.map((i) => `${i.model_name}@${i.model_version}/${i.rollout}`));
}

function only(r: { value: ScoredEvent }, model: string): Inference {
  const found = r.value.inferences.filter((i) => i.model_name === model);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('score', () => {
  it('scores every complete vital-signs record of a batch with ONE model call and a full inference', async () => {
    const store = newStore();
    const clock = new ManualClock(Date.UTC(2026, 2, 3, 4, 5, 6));
    const op = await openScore({ models: [NEWS2] }, store, clock);
    expect(store.runs).toEqual(['news2@1.0.0:1']); // the start-up check
    const batch = [
      vitals(),
      deviceStatus(),
      vitals({ respiratory_rate: 25 }),
      vitals({ spo2: 93, on_oxygen: true, respiratory_rate: 22 }),
      vitals({ pulse: null }),
      vitals({ temperature_c: 35.05, consciousness: 'V', systolic_bp: 88 }),
      deviceStatus(),
      vitals({ pulse: 131, respiratory_rate: 20.5 }),
    ];
    clock.advance(1234);
    const results = await op.process(batch);
    expect(store.runs).toEqual(['news2@1.0.0:1', 'news2@1.0.0:5']);
    accounted(batch.length, results);
    expect(results.rejected).toEqual([]);
    // Output order is input order.
    expect(results.out.map((r) => r.origin)).toEqual(batch.map((r) => r.origin));

    const artifactSha = createHash('sha256')
      .update(readFileSync(join(DEFAULT_MODELS_ROOT, 'news2', '1.0.0', 'model.onnx')))
      .digest('hex');
    for (const [i, out] of results.out.entries()) {
      const input = batch[i]!;
      expect(out.value.envelope).toBe(input.value.envelope);
      if (input.value.envelope.event_type !== 'vital_signs' || vitalsOf(input).pulse === null) {
        expect(out.value.inferences).toEqual([]);
        continue;
      }
      const inference = only(out, 'news2');
      const e = input.value.envelope;
      const features = featuresOf(vitalsOf(input));
      const expected = news2Reference(features);
      expect(inference).toMatchObject({
        event_id: e.event_id,
        parent_event_ids: [e.event_id],
        device_id: e.device_id,
        patient_ref: e.patient_ref,
        site_id: e.site_id,
        firmware_version: e.firmware_version,
        device_batch: 'lot-7',
        patient_subgroup: 'age_65_plus',
        observed_at: e.observed_at,
        scored_at: clock.now(),
        model_name: 'news2',
        model_version: '1.0.0',
        model_artifact_sha256: artifactSha,
        runtime: 'onnxruntime-node',
        runtime_version: '1.30.0',
        rollout: 'live',
        feature_names: [...NEWS2_FEATURES],
        features,
        score: expected.score,
        subscores: expected.subscores,
        risk_band: ['low', 'low_medium', 'medium', 'high'][expected.band],
        transformation_version: 'vitals@1/score/news2@1.0.0',
        // No registry: the pipeline's default version, live and clinical.
        rollout_id: null,
        routing: {
          source: 'pipeline',
          cohort_bucket: cohortBucket('news2', e.patient_ref),
          in_canary: false,
          clinical: true,
        },
      });
      expect(inference.inference_id).toBe(
        deterministicUlid(e.observed_at, createHash('sha256').update(`${e.event_id}|news2|1.0.0`).digest()),
      );
      expect(inference.feature_vector_hash).toBe(
        createHash('sha256')
          .update(new Uint8Array(Float32Array.from(features).buffer))
          .digest('hex'),
      );
      expect(inference.config_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(inferenceType.isValid(inference)).toBe(true);
    }
    // The chart, by hand, for two of them: RR 25 alone is a single 3; 35.05 C + V + SBP 88 is 3 + 3 + 3.
    expect(only(results.out[2]!, 'news2')).toMatchObject({ score: 3, risk_band: 'low_medium' });
    expect(only(results.out[5]!, 'news2')).toMatchObject({ score: 9, risk_band: 'high' });
  });

  it('passes other event types through untouched and flags incomplete vital signs, without a model call', async () => {
    const store = newStore();
    const op = await openScore({ models: [NEWS2] }, store);
    const batch = [
      deviceStatus(),
      vitals({ temperature_c: null }),
      vitals({ consciousness: null }, ['clock_skew']),
      vitals({ spo2: null }, ['news2_incomplete']),
    ];
    const results = await op.process(batch);
    expect(store.runs).toEqual(['news2@1.0.0:1']);
    accounted(batch.length, results);
    expect(results.out.map((r) => [r.value.inferences, r.value.flags])).toEqual([
      [[], []],
      [[], ['news2_incomplete']],
      [[], ['clock_skew', 'news2_incomplete']],
      [[], ['news2_incomplete']],
    ]);
    expect(await op.process([])).toMatchObject({ out: [], rejected: [] });
    expect(store.runs).toEqual(['news2@1.0.0:1']);
  });

  it('scores a generic probability model from its manifest: features, probability, band, contributions', async () => {
    const store = newStore();
    const op = await openScore({ models: [NEWS2, RISK] }, store);
    const batch = [
      vitals(), // p = sigmoid(-5): low
      vitals({ respiratory_rate: 28, spo2: 88, on_oxygen: true }), // sigmoid(-0.3): high
      vitals({ respiratory_rate: 26, spo2: 89 }), // sigmoid(-1.9) = 0.130: low_medium
      vitals({ respiratory_rate: 26, spo2: 88 }), // sigmoid(-1.7) = 0.154: medium
      vitals({ spo2: 50 }), // outside risk's SpO2 range (60-100), inside NEWS2's (40-100)
      deviceStatus(),
    ];
    const results = await op.process(batch);
    accounted(batch.length, results);
    // One call per version, each with only the rows it scores.
    expect(store.runs.slice(2)).toEqual(['news2@1.0.0:5', 'risk@1.0.0:4']);
    expect(routed(results)).toEqual([
      ['news2@1.0.0/live', 'risk@1.0.0/live'],
      ['news2@1.0.0/live', 'risk@1.0.0/live'],
      ['news2@1.0.0/live', 'risk@1.0.0/live'],
      ['news2@1.0.0/live', 'risk@1.0.0/live'],
      ['news2@1.0.0/live'],
      [],
    ]);
    expect(results.out[4]!.value.flags).toEqual([]); // out of range for one model is not incompleteness
    const bands = results.out.slice(0, 4).map((r) => only(r, 'risk').risk_band);
    expect(bands).toEqual(['low', 'high', 'low_medium', 'medium']);
    for (const out of results.out.slice(0, 4)) {
      const risk = only(out, 'risk');
      const v = out.value.inferences[0]!.features; // NEWS2's columns: rr, spo2, o2, ...
      const features = [v[0]!, v[1]!, v[2]!];
      expect(risk.feature_names).toEqual(['respiratory_rate', 'spo2', 'on_oxygen']);
      expect(risk.features).toEqual(features);
      expect(risk.score).toBeCloseTo(riskOf(features, RISK_1_0), 5);
      expect(risk.risk_band).toBe(riskBandOf(risk.score, RISK_THRESHOLDS));
      risk.subscores.forEach((c, k) => {
        expect(c).toBeCloseTo(features[k]! * RISK_1_0.weights[k]!, 5);
      });
      expect(risk.transformation_version).toBe('vitals@1/score/risk@1.0.0');
      expect(risk.inference_id).not.toBe(out.value.inferences[0]!.inference_id);
      expect(inferenceType.isValid(risk)).toBe(true);
    }
  });

  it('scores the shipped deterioration model: a probability per event, its band by the manifest, a contribution per input', async () => {
    const store = new CountingStore(DEFAULT_MODELS_ROOT);
    const op = await openScore({ models: [{ model: 'deterioration', version: '1.0.0' }] }, store);
    const manifest = await store.manifest('deterioration', '1.0.0');
    if (manifest.output.kind !== 'probability') throw new Error('deterioration is a probability model');
    const { thresholds } = manifest.output;
    const batch = [vitals(), vitals({ respiratory_rate: 27, spo2: 89, on_oxygen: true, pulse: 125, systolic_bp: 92 })];
    const results = await op.process(batch);
    const [well, sick] = results.out.map((r) => only(r, 'deterioration'));
    for (const risk of [well!, sick!]) {
      expect(risk.score).toBeGreaterThanOrEqual(0);
      expect(risk.score).toBeLessThanOrEqual(1);
      expect(risk.risk_band).toBe(riskBandOf(risk.score, thresholds));
      expect(risk.feature_names).toEqual(manifest.features);
      expect(risk.subscores).toHaveLength(manifest.inputs.length);
      expect(inferenceType.isValid(risk)).toBe(true);
    }
    expect(sick!.score).toBeGreaterThan(well!.score);
  });

  it('reads envelope fields too, and stores no subscores for a model without contributions', async () => {
    const op = await openScore({ models: [{ model: 'risk', version: '2.0.0' }] });
    const batch = [vitals({ respiratory_rate: 20 }), vitals({ respiratory_rate: null })];
    const results = await op.process(batch);
    const e = batch[0]!.value.envelope;
    const risk = only(results.out[0]!, 'risk');
    expect(risk.features).toEqual([20, e.sequence]);
    expect(risk.score).toBeCloseTo(1 / (1 + Math.exp(-(0.1 * 20 + 0.5 * e.sequence! - 3))), 5);
    expect(risk.subscores).toEqual([]);
    expect(results.out[1]!.value).toMatchObject({ inferences: [], flags: [] });
  });

  it('runs live and shadow versions on the same events: both stored, only live clinical, one call per version', async () => {
    const store = newStore();
    const rollouts = new TestRollouts();
    rollouts.set(7, { risk: route('risk', { live: '1.0.0', shadows: ['1.1.0'] }) });
    const op = await openScore({ models: [NEWS2, RISK] }, store, new ManualClock(), rollouts);
    const batch = [vitals(), vitals({ respiratory_rate: 24, spo2: 90 }), deviceStatus(), vitals({ pulse: 120 })];
    const results = await op.process(batch);
    accounted(batch.length, results);
    expect(store.runs.filter((r) => !r.endsWith(':1'))).toEqual(['news2@1.0.0:3', 'risk@1.0.0:3', 'risk@1.1.0:3']);
    const both = ['news2@1.0.0/live', 'risk@1.0.0/live', 'risk@1.1.0/shadow'];
    expect(routed(results)).toEqual([both, both, [], both]);
    for (const out of [results.out[0]!, results.out[1]!, results.out[3]!]) {
      const [news2, live, shadow] = out.value.inferences as [Inference, Inference, Inference];
      const e = out.value.envelope;
      expect(news2).toMatchObject({ rollout_id: null, routing: { source: 'pipeline', clinical: true } });
      expect(live).toMatchObject({
        rollout_id: 'ro-live-1.0.0',
        routing: {
          source: 'registry',
          clinical: true,
          in_canary: false,
          cohort_bucket: cohortBucket('risk', e.patient_ref),
        },
      });
      expect(shadow).toMatchObject({ rollout: 'shadow', rollout_id: 'ro-shadow-1.1.0', routing: { clinical: false } });
      expect(shadow.features).toEqual(live.features);
      expect(shadow.score).toBeCloseTo(riskOf(live.features, RISK_1_1), 5);
      expect(shadow.inference_id).toBe(
        deterministicUlid(e.observed_at, createHash('sha256').update(`${e.event_id}|risk|1.1.0`).digest()),
      );
      expect(new Set(out.value.inferences.map((i) => i.inference_id)).size).toBe(3);
    }
    // The default risk@1.0.0 is what the registry routes live: loaded once, never reloaded.
    expect(store.loads).toEqual(['news2@1.0.0', 'risk@1.0.0', 'risk@1.1.0']);
  });

  it('routes a canary to its cohort and share by a stable hash of the patient', async () => {
    const rollouts = new TestRollouts();
    rollouts.set(3, {
      risk: route('risk', { live: '1.0.0', canary: { version: '1.1.0', percent: 30, cohort: { sites: ['site-x'] } } }),
    });
    const op = await openScore({ models: [RISK] }, newStore(), new ManualClock(), rollouts);
    const patients = Array.from({ length: 800 }, (_, p) => ({
      ref: `pt-canary-${p}`,
      site: p < 600 ? 'site-x' : 'site-y',
    }));
    const first = new Map<string, string>();
    for (const round of [0, 1]) {
      const batch = patients.map((p) => vitals({}, [], { patient_ref: p.ref, site_id: p.site }));
      const results = await op.process(batch);
      accounted(batch.length, results);
      results.out.forEach((out, i) => {
        const patient = patients[i]!;
        const [risk, ...others] = out.value.inferences;
        expect(others).toEqual([]); // one clinical version per event: canary or live
        const bucket = cohortBucket('risk', patient.ref);
        const inCanary = patient.site === 'site-x' && bucket < 3000;
        expect(risk).toMatchObject({
          model_version: inCanary ? '1.1.0' : '1.0.0',
          rollout: inCanary ? 'canary' : 'live',
          rollout_id: inCanary ? 'ro-canary-1.1.0' : 'ro-live-1.0.0',
          routing: { source: 'registry', cohort_bucket: bucket, in_canary: inCanary, clinical: true },
        });
        if (round === 0) first.set(patient.ref, risk!.model_version);
        else expect(risk!.model_version).toBe(first.get(patient.ref)); // a patient stays on one version
      });
    }
    const siteX = patients.filter((p) => p.site === 'site-x');
    const share = siteX.filter((p) => first.get(p.ref) === '1.1.0').length / siteX.length;
    expect(share).toBeGreaterThan(0.24);
    expect(share).toBeLessThan(0.36);
    expect(patients.filter((p) => p.site === 'site-y').every((p) => first.get(p.ref) === '1.0.0')).toBe(true);
  });

  it('follows the routing table live: loads newly routed versions and releases the others, without reopening', async () => {
    const store = newStore();
    const rollouts = new TestRollouts();
    const op = await openScore({ models: [RISK] }, store, new ManualClock(), rollouts);
    expect(op.loadedVersions).toEqual(['risk@1.0.0']);
    expect(routed(await op.process([vitals()]))).toEqual([['risk@1.0.0/live']]);

    rollouts.set(1, { risk: route('risk', { live: '1.1.0' }) });
    const afterLive = await op.process([vitals()]);
    expect(routed(afterLive)).toEqual([['risk@1.1.0/live']]);
    expect(afterLive.out[0]!.value.inferences[0]).toMatchObject({
      rollout_id: 'ro-live-1.1.0',
      routing: { source: 'registry' },
    });
    expect(store.loads).toEqual(['risk@1.0.0', 'risk@1.1.0']);
    expect(store.closes).toEqual(['risk@1.0.0']);
    expect(op.loadedVersions).toEqual(['risk@1.1.0']);

    // The same revision again: nothing reloaded.
    await op.process([vitals()]);
    expect(store.loads).toEqual(['risk@1.0.0', 'risk@1.1.0']);

    rollouts.set(2, { risk: route('risk', { live: '1.1.0', shadows: ['1.0.0'] }) });
    expect(routed(await op.process([vitals()]))).toEqual([['risk@1.1.0/live', 'risk@1.0.0/shadow']]);
    expect(store.loads).toEqual(['risk@1.0.0', 'risk@1.1.0', 'risk@1.0.0']);

    // Live rolled back to nothing: the pipeline's default runs live again beside the shadow, nothing reloaded.
    rollouts.set(3, { risk: route('risk', { shadows: ['1.1.0'] }) });
    const rolledBack = await op.process([vitals()]);
    expect(routed(rolledBack)).toEqual([['risk@1.0.0/live', 'risk@1.1.0/shadow']]);
    expect(rolledBack.out[0]!.value.inferences[0]).toMatchObject({ rollout_id: null, routing: { source: 'pipeline' } });
    expect(store.loads).toEqual(['risk@1.0.0', 'risk@1.1.0', 'risk@1.0.0']);
    expect(store.closes).toEqual(['risk@1.0.0']);
  });

  it('dead-letters the records of a clinical version that cannot be loaded and skips its shadows, never crashing', async () => {
    const store = newStore();
    const rollouts = new TestRollouts();
    rollouts.set(1, { risk: route('risk', { live: '1.2.0', shadows: ['1.1.0'] }) }); // 1.2.0's artifact is altered
    const op = await openScore({ models: [NEWS2, RISK] }, store, new ManualClock(), rollouts);
    const batch = [vitals(), deviceStatus(), vitals({ spo2: 50 }), vitals()];
    const results = await op.process(batch);
    accounted(batch.length, results);
    // Records risk would score fail; the status record and the one outside risk's ranges go on with what applies.
    expect(results.rejected.map((r) => [r.record.origin, r.code])).toEqual([
      [batch[0]!.origin, 'SCORING_FAILED'],
      [batch[3]!.origin, 'SCORING_FAILED'],
    ]);
    expect(results.rejected[0]!.detail).toBe(
      'model risk@1.2.0 is routed live but unavailable (MODEL_INTEGRITY_FAILED)',
    );
    expect(routed(results)).toEqual([[], ['news2@1.0.0/live']]);

    // A shadow that cannot be loaded costs no record: skipped and counted.
    rollouts.set(2, { risk: route('risk', { live: '1.1.0', shadows: ['1.2.0'] }) });
    const next = await op.process([vitals(), vitals()]);
    expect(next.rejected).toEqual([]);
    expect(routed(next)).toEqual([
      ['news2@1.0.0/live', 'risk@1.1.0/live'],
      ['news2@1.0.0/live', 'risk@1.1.0/live'],
    ]);
    expect(op.skippedShadows).toBe(2);

    // A version the store does not hold at all: its inputs are taken to be the model's last loaded version's.
    rollouts.set(3, { risk: route('risk', { live: '9.9.9' }) });
    const missing = [vitals(), deviceStatus(), vitals({ spo2: 50 })];
    const afterMissing = await op.process(missing);
    expect(afterMissing.rejected.map((r) => [r.record.origin, r.detail])).toEqual([
      [missing[0]!.origin, 'model risk@9.9.9 is routed live but unavailable (MODEL_NOT_FOUND)'],
    ]);
    expect(routed(afterMissing)).toEqual([[], ['news2@1.0.0/live']]);
  });

  it('never runs other bytes than the registry routes: a version whose artifact differs from the registered one is unavailable', async () => {
    const store = newStore();
    const rollouts = new TestRollouts();
    const live = route('news2', { live: '1.0.0' }).live!;
    // The registry added and approved other bytes under news2@1.0.0 than the model store now holds.
    rollouts.set(1, { news2: { ...route('news2', {}), live: { ...live, artifact_sha256: 'ab'.repeat(32) } } });
    const op = await openScore({ models: [NEWS2] }, store, new ManualClock(), rollouts);
    const batch = [vitals(), deviceStatus()];
    const results = await op.process(batch);
    accounted(batch.length, results);
    expect(results.rejected.map((r) => [r.record.origin, r.code, r.detail])).toEqual([
      [batch[0]!.origin, 'SCORING_FAILED', 'model news2@1.0.0 is routed live but unavailable (MODEL_INTEGRITY_FAILED)'],
    ]);
    // The registered artifact: scored as ever.
    const sha = (await store.load('news2', '1.0.0')).artifactSha256;
    rollouts.set(2, { news2: { ...route('news2', {}), live: { ...live, artifact_sha256: sha } } });
    const next = await op.process([vitals()]);
    expect(next.rejected).toEqual([]);
    expect(routed(next)).toEqual([['news2@1.0.0/live']]);
  });

  it('dead-letters a record whose clinical output cannot be trusted, and skips an untrusted shadow', async () => {
    const store = newStore();
    const rollouts = new TestRollouts();
    rollouts.set(1, { risk: route('risk', { live: '1.0.0', shadows: ['1.1.0'] }) });
    const op = await openScore({ models: [NEWS2, RISK] }, store, new ManualClock(), rollouts);
    store.poisoned.add('risk@1.1.0');
    const ok = await op.process([vitals(), vitals()]);
    expect(ok.rejected).toEqual([]);
    expect(routed(ok)).toEqual([
      ['news2@1.0.0/live', 'risk@1.0.0/live'],
      ['news2@1.0.0/live', 'risk@1.0.0/live'],
    ]);
    expect(op.skippedShadows).toBe(2);

    store.poisoned.add('news2@1.0.0');
    const batch = [vitals(), deviceStatus()];
    const failed = await op.process(batch);
    accounted(batch.length, failed);
    expect(failed.rejected.map((r) => [r.record.origin, r.code])).toEqual([[batch[0]!.origin, 'SCORING_FAILED']]);
    expect(failed.rejected[0]!.detail).toBe(
      'model news2@1.0.0 returned a non-finite or out-of-range score, band or subscore',
    );
    expect(routed(failed)).toEqual([[]]);
  });

  it('skips a shadow whose model call throws at batch time: the live inferences still pass (a shadow never costs a record)', async () => {
    const store = newStore();
    const rollouts = new TestRollouts();
    rollouts.set(1, { risk: route('risk', { live: '1.0.0', shadows: ['1.1.0'] }) });
    const op = await openScore({ models: [NEWS2, RISK] }, store, new ManualClock(), rollouts);
    store.failing.add('risk@1.1.0');
    const batch = [vitals(), vitals()];
    const results = await op.process(batch);
    accounted(batch.length, results);
    expect(results.rejected).toEqual([]);
    expect(routed(results)).toEqual([
      ['news2@1.0.0/live', 'risk@1.0.0/live'],
      ['news2@1.0.0/live', 'risk@1.0.0/live'],
    ]);
    expect(op.skippedShadows).toBe(2);
    // A clinical version's failure is not hidden: the batch fails (retried by the runtime), as before.
    store.failing.add('risk@1.0.0');
    await expect(op.process([vitals()])).rejects.toThrow(/risk@1.0.0: the runtime failed/);
  });

  it("does not score values outside a model input's range or not finite", async () => {
    const store = newStore();
    const op = await openScore({ models: [NEWS2] }, store);
    const batch = [
      vitals(),
      vitals({ temperature_c: Number.NaN }),
      vitals({ respiratory_rate: Number.POSITIVE_INFINITY }),
      vitals({ pulse: 400 }),
    ];
    const results = await op.process(batch);
    accounted(batch.length, results);
    expect(results.rejected).toEqual([]);
    expect(results.out.map((r) => r.value.inferences.length)).toEqual([1, 0, 0, 0]);
    expect(store.runs.slice(1)).toEqual(['news2@1.0.0:1']);
  });

  it('gives a retried batch the same inference ids, whatever the clock says', async () => {
    const clock = new ManualClock();
    const op = await openScore({ models: [NEWS2] }, newStore(), clock);
    const batch = [vitals(), vitals({ pulse: 45 }), vitals()];
    const first = await op.process(batch);
    clock.advance(60_000);
    const again = await op.process(batch);
    const ids = (r: Results<ScoredEvent>) => r.out.map((o) => o.value.inferences[0]!.inference_id);
    expect(ids(again)).toEqual(ids(first));
    expect(new Set(ids(first)).size).toBe(3);
    expect(again.out[0]!.value.inferences[0]!.scored_at).toBe(first.out[0]!.value.inferences[0]!.scored_at + 60_000);
    for (const id of ids(first)) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);

    // The same version routed by the registry in another operator: the same id (event, model and version only).
    const rollouts = new TestRollouts();
    rollouts.set(1, { news2: route('news2', { live: '1.0.0' }) });
    const other = await openScore({ models: [NEWS2] }, newStore(), new ManualClock(), rollouts);
    const registryRun = await other.process(batch);
    expect(registryRun.out.map((o) => o.value.inferences[0]!.rollout_id)).toEqual(Array(3).fill('ro-live-1.0.0'));
    expect(ids(registryRun)).toEqual(ids(first));
  });

  it('hashes the scoring configuration once: same config, same hash; another pipeline, another hash', async () => {
    const batch = [vitals()];
    const hashOf = async (op: ScoreOperator) => (await op.process(batch)).out[0]!.value.inferences[0]!;
    const live = await hashOf(await openScore({ models: [NEWS2] }));
    const liveAgain = await hashOf(await openScore({ models: [NEWS2, RISK] }));
    const v2 = await hashOf(await openScore({ models: [NEWS2], pipeline: 'vitals@2' }));
    expect(liveAgain.config_hash).toBe(live.config_hash);
    expect(v2.config_hash).not.toBe(live.config_hash);
    expect(v2.transformation_version).toBe('vitals@2/score/news2@1.0.0');
  });

  it('rejects an invalid configuration at construction with CONFIG_INVALID', () => {
    const codeOf = (config: unknown) => {
      try {
        score(config as Parameters<typeof score>[0]);
      } catch (error) {
        return error instanceof VigilError ? `${error.code}: ${error.message}` : String(error);
      }
      return 'ok';
    };
    expect(codeOf({ models: [NEWS2] })).toBe('ok');
    expect(codeOf({ models: [NEWS2, RISK] })).toBe('ok');
    expect(codeOf({ models: [NEWS2], batch: 10 })).toMatch(/^CONFIG_INVALID: .*batch/s);
    expect(codeOf({ model: 'news2', version: '1.0.0' })).toMatch(/^CONFIG_INVALID: .*models/s);
    expect(codeOf({ models: [] })).toMatch(/^CONFIG_INVALID: .*at least one model/s);
    expect(codeOf({ models: [{ model: 'news2' }] })).toMatch(/^CONFIG_INVALID: .*version/s);
    expect(codeOf({ models: [{ ...NEWS2, rollout: 'live' }] })).toMatch(/^CONFIG_INVALID: .*rollout/s);
    expect(codeOf({ models: [NEWS2, { model: 'news2', version: '1.1.0' }] })).toMatch(/^CONFIG_INVALID: .*once/s);
    expect(codeOf({ models: [{ model: '../etc', version: '1.0.0' }] })).toMatch(/^CONFIG_INVALID: .*model/s);
  });

  it('fails at open, saying what to fix, when a default model is missing, altered or not what its manifest says', async () => {
    await expect(openScore({ models: [{ model: 'news2', version: '9.9.9' }] })).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
      message: expect.stringContaining('models:build'),
    });
    await expect(openScore({ models: [NEWS2, { model: 'risk', version: '1.2.0' }] })).rejects.toMatchObject({
      code: 'MODEL_INTEGRITY_FAILED',
    });

    const local = new TestModelRoot();
    try {
      const manifestPath = join(local.root, 'news2', '1.0.0', 'manifest.json');
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
      const store = new CountingStore(local.root);
      writeFileSync(
        manifestPath,
        JSON.stringify({
          ...manifest,
          inputs: [...manifest.inputs].reverse(),
          features: [...manifest.features].reverse(),
        }),
      );
      await expect(score({ models: [NEWS2] }).open(context(store))).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('NEWS2 features'),
      });
      writeFileSync(
        manifestPath,
        JSON.stringify({
          ...manifest,
          inputs: [{ ...manifest.inputs[0], field: 'vitals.rr' }, ...manifest.inputs.slice(1)],
        }),
      );
      await expect(score({ models: [NEWS2] }).open(context(store))).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('vitals.rr'),
      });
      expect(store.closes).toEqual(['news2@1.0.0', 'news2@1.0.0']); // what failed its checks is released
    } finally {
      local.cleanup();
    }
  });

  it('refuses to process before open', async () => {
    await expect(score({ models: [NEWS2] }).process([vitals()])).rejects.toThrow(/before open/);
  });
});

/** deterministicUlid as it was before its time part was cached and its rest built from char codes (the reference). */
function referenceUlid(timeMs: number, digest: Uint8Array): string {
  const crockford = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let t = Math.min(Math.max(Math.floor(timeMs), 0), 2 ** 48 - 1);
  let time = '';
  for (let i = 0; i < 10; i++) {
    time = crockford[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  let rest = '';
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < 10; i++) {
    acc = (acc << 8) | digest[i]!;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      rest += crockford[(acc >>> bits) & 31]!;
    }
    acc &= (1 << bits) - 1;
  }
  return time + rest;
}

/** The keys of an inference, in the order score writes them (JSON and logs see this order). */
const INFERENCE_KEYS = [
  'inference_id',
  'event_id',
  'parent_event_ids',
  'device_id',
  'patient_ref',
  'site_id',
  'firmware_version',
  'device_batch',
  'patient_subgroup',
  'observed_at',
  'scored_at',
  'model_name',
  'model_version',
  'model_artifact_sha256',
  'runtime',
  'runtime_version',
  'config_hash',
  'feature_names',
  'transformation_version',
  'rollout',
  'features',
  'feature_vector_hash',
  'score',
  'subscores',
  'risk_band',
  'rollout_id',
  'routing',
];

describe('score: inference ids and feature hashes as computed from scratch', () => {
  /** Vital signs from small value sets (so vectors repeat, within a record's models and across records). */
  function varied(n: number): InFlight<CheckedEvent>[] {
    let x = 12345;
    const pick = <T>(values: readonly T[]): T => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return values[x % values.length]!;
    };
    const out: InFlight<CheckedEvent>[] = [];
    for (let i = 0; i < n; i++) {
      const v: Partial<VitalSigns> = {
        respiratory_rate: pick([12, 16, 16, 22.5, 27]),
        spo2: pick([89, 97, 97]),
        on_oxygen: pick([false, false, true]),
        pulse: pick([70, 70, 125]),
        temperature_c: pick([37, 37.1, 35.05]),
        consciousness: pick(['A', 'A', 'V'] as const),
        systolic_bp: pick([120, 92, null]),
      };
      const r = vitals(v);
      out.push(r);
      // Same vital signs again on the next record (another event id: same feature hash, other inference ids).
      if (i % 5 === 0) out.push(vitals(v));
      if (i % 17 === 0) out.push(deviceStatus());
    }
    return out;
  }

  function check(results: Results<ScoredEvent>, models: number): number {
    let inferences = 0;
    for (const r of results.out) {
      for (const inference of r.value.inferences) {
        inferences++;
        expect(Object.keys(inference)).toEqual(INFERENCE_KEYS);
        expect(inference.feature_vector_hash).toBe(
          createHash('sha256')
            .update(new Uint8Array(Float32Array.from(inference.features).buffer))
            .digest('hex'),
        );
        const digest = createHash('sha256')
          .update(`${inference.event_id}|${inference.model_name}|${inference.model_version}`)
          .digest();
        expect(inference.inference_id).toBe(referenceUlid(inference.observed_at, digest));
      }
      expect(r.value.inferences.length).toBeLessThanOrEqual(models);
    }
    return inferences;
  }

  it('news2 + deterioration (the same inputs): every hash and id equals the one computed from scratch', async () => {
    const op = await openScore(
      { models: [NEWS2, { model: 'deterioration', version: '1.0.0' }] },
      new CountingStore(DEFAULT_MODELS_ROOT),
    );
    const batch = varied(300);
    const results = await op.process(batch);
    accounted(batch.length, results);
    expect(check(results, 2)).toBeGreaterThan(300);
  });

  it('models of different widths interleaved (news2, risk live on an envelope field, two risk shadows)', async () => {
    const rollouts = new TestRollouts();
    rollouts.set(3, { risk: route('risk', { live: '2.0.0', shadows: ['1.0.0', '1.1.0'] }) });
    const op = await openScore({ models: [NEWS2, RISK] }, newStore(), new ManualClock(), rollouts);
    const batch = varied(200);
    const results = await op.process(batch);
    accounted(batch.length, results);
    expect(check(results, 4)).toBeGreaterThan(600);
  });

  it('deterministicUlid equals the reference for any time and digest', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
          fc.double({ noNaN: true, min: -1e16, max: 1e16 }),
          fc.constantFrom(0, 2 ** 48 - 1, 2 ** 48, Date.UTC(2026, 0, 1)),
        ),
        fc.uint8Array({ minLength: 10, maxLength: 32 }),
        (time, digest) => {
          expect(deterministicUlid(time, digest)).toBe(referenceUlid(time, digest));
          // Twice in a row (the cached time part) and after another time.
          expect(deterministicUlid(time, digest)).toBe(referenceUlid(time, digest));
          expect(deterministicUlid(time + 1, digest)).toBe(referenceUlid(time + 1, digest));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('score helpers', () => {
  it('deterministicUlid puts the time in the first 10 chars and the digest in the rest', () => {
    const digest = createHash('sha256').update('x').digest();
    const id = deterministicUlid(Date.UTC(2026, 0, 1), digest);
    expect(id).toHaveLength(26);
    const decode = (s: string) => [...s].reduce((n, c) => n * 32 + '0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(c), 0);
    expect(decode(id.slice(0, 10))).toBe(Date.UTC(2026, 0, 1));
    expect(deterministicUlid(Date.UTC(2026, 0, 1), digest)).toBe(id);
    expect(deterministicUlid(Date.UTC(2026, 0, 1), createHash('sha256').update('y').digest())).not.toBe(id);
    // 80 bits from the first 10 bytes, 5 bits a char, most significant first.
    const bits = [...digest.subarray(0, 10)].map((b) => b.toString(2).padStart(8, '0')).join('');
    const expected = bits.match(/.{5}/g)!.map((b) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[Number.parseInt(b, 2)]);
    expect(id.slice(10)).toBe(expected.join(''));
  });

  it('canonicalJson ignores key order and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } })).toBe(
      canonicalJson({ a: { d: [1, { x: 1, y: 2 }] }, b: 1 }),
    );
    expect(canonicalJson({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
  });
});
