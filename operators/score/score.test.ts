/**
 * The `score` operator over the real checked-in NEWS2 model and onnxruntime: the only test double is a thin spy
 * around the LoadedModel that counts `run()` calls (and forwards every one to the real session).
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MODELS_ROOT, OnnxModelStore } from '../../adapters/onnx/index.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { LoadedModel, ModelStore } from '../../runtime/models.ts';
import type { OperatorContext, Results } from '../../runtime/operator.ts';
import type { InFlight, Origin } from '../../runtime/record.ts';
import type { StateBackend } from '../../runtime/state.ts';
import { type Envelope, type VitalSigns, wrapPayload } from '../../schemas/types.ts';
import { envelope } from '../../test/fixtures/envelope.ts';
import type { CheckedEvent, ProvenanceFlag, ScoredEvent } from '../types.ts';
import { NEWS2_FEATURES, type ScoreOperator, score } from './index.ts';
import { news2Reference } from './news2-reference.ts';
import { canonicalJson, deterministicUlid } from './operator.ts';

const inferenceType = avro.Type.forSchema(
  JSON.parse(readFileSync(new URL('../../schemas/avro/inference/v1.avsc', import.meta.url), 'utf8')),
);

/** Counts model calls and the rows of each; every call goes to the real session. */
class SpyStore implements ModelStore {
  readonly runs: number[] = [];
  readonly inner: ModelStore;
  constructor(inner: ModelStore = new OnnxModelStore()) {
    this.inner = inner;
  }
  async load(name: string, version: string): Promise<LoadedModel> {
    const model = await this.inner.load(name, version);
    const runs = this.runs;
    return {
      manifest: model.manifest,
      artifactSha256: model.artifactSha256,
      runtime: model.runtime,
      run: (inputs) => {
        runs.push(inputs['features']!.dims[0]!);
        return model.run(inputs);
      },
      close: () => model.close(),
    };
  }
  readVerified(name: string, version: string, entry: 'reference'): Promise<Buffer> {
    return this.inner.readVerified(name, version, entry);
  }
  manifest(name: string, version: string) {
    return this.inner.manifest(name, version);
  }
}

/** `score` keeps no state: any use of it is a bug. */
const noState: StateBackend = new Proxy({} as StateBackend, {
  get(_target, prop) {
    if (prop === 'kind') return 'memory';
    return () => {
      throw new Error(`score must not use state (called ${String(prop)})`);
    };
  },
});

function context(models: ModelStore, clock = new ManualClock()): OperatorContext {
  return { pipeline: 'vitals@1', clock, state: noState, log: silentLogger, models };
}

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

function vitals(v: Partial<VitalSigns> = {}, flags: ProvenanceFlag[] = []): InFlight<CheckedEvent> {
  return record({ envelope: nextEnvelope(wrapPayload('vital_signs', { ...NORMAL, ...v })), flags });
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
  models: ModelStore = new SpyStore(),
  clock = new ManualClock(),
): Promise<ScoreOperator> {
  const op = score(config);
  await op.open(context(models, clock));
  opened.push(op);
  return op;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((op) => op.close()));
});

function accounted(input: number, results: Results<ScoredEvent>): void {
  expect(results.out.length + results.rejected.length + results.duplicates.length).toBe(input);
}

describe('score', () => {
  it('scores every complete vital-signs record of a batch with ONE model call and a full inference', async () => {
    const store = new SpyStore();
    const clock = new ManualClock(Date.UTC(2026, 2, 3, 4, 5, 6));
    const op = await openScore({ model: 'news2', version: '1.0.0' }, store, clock);
    expect(store.runs).toEqual([1]); // the start-up smoke test
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
    expect(store.runs).toEqual([1, 5]);
    accounted(batch.length, results);
    expect(results.rejected).toEqual([]);
    // Output order is input order.
    expect(results.out.map((r) => r.origin)).toEqual(batch.map((r) => r.origin));

    const artifactSha = createHash('sha256')
      .update(readFileSync(join(DEFAULT_MODELS_ROOT, 'news2', '1.0.0', 'model.onnx')))
      .digest('hex');
    for (const [i, out] of results.out.entries()) {
      const input = batch[i]!;
      const inference = out.value.inference;
      expect(out.value.envelope).toBe(input.value.envelope);
      if (input.value.envelope.event_type !== 'vital_signs' || vitalsOf(input).pulse === null) {
        expect(inference).toBeNull();
        continue;
      }
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
      });
      expect(inference!.feature_vector_hash).toBe(
        createHash('sha256')
          .update(new Uint8Array(Float32Array.from(features).buffer))
          .digest('hex'),
      );
      expect(inference!.config_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(inferenceType.isValid(inference)).toBe(true);
    }
    // The chart, by hand, for two of them: RR 25 alone is a single 3; 35.05 C + V + SBP 88 is 3 + 3 + 3.
    expect(results.out[2]!.value.inference).toMatchObject({ score: 3, risk_band: 'low_medium' });
    expect(results.out[5]!.value.inference).toMatchObject({ score: 9, risk_band: 'high' });
  });

  it('passes other event types through untouched and flags incomplete vital signs, without a model call', async () => {
    const store = new SpyStore();
    const op = await openScore({ model: 'news2', version: '1.0.0' }, store);
    const batch = [
      deviceStatus(),
      vitals({ temperature_c: null }),
      vitals({ consciousness: null }, ['clock_skew']),
      vitals({ spo2: null }, ['news2_incomplete']),
    ];
    const results = await op.process(batch);
    expect(store.runs).toEqual([1]);
    accounted(batch.length, results);
    expect(results.out.map((r) => [r.value.inference, r.value.flags])).toEqual([
      [null, []],
      [null, ['news2_incomplete']],
      [null, ['clock_skew', 'news2_incomplete']],
      [null, ['news2_incomplete']],
    ]);
    expect(await op.process([])).toMatchObject({ out: [], rejected: [] });
    expect(store.runs).toEqual([1]);
  });

  it('dead-letters a record the model cannot score (SCORING_FAILED) and scores the rest of its batch', async () => {
    const op = await openScore({ model: 'news2', version: '1.0.0' });
    const bad = vitals({ temperature_c: Number.NaN });
    const batch = [vitals(), bad, vitals({ respiratory_rate: Number.POSITIVE_INFINITY }), vitals({ spo2: 91 })];
    const results = await op.process(batch);
    accounted(batch.length, results);
    expect(results.rejected.map((r) => [r.record.origin, r.code])).toEqual([
      [bad.origin, 'SCORING_FAILED'],
      [batch[2]!.origin, 'SCORING_FAILED'],
    ]);
    expect(results.rejected[0]!.detail).not.toContain('NaN');
    expect(results.out.map((r) => r.value.inference?.score)).toEqual([0, 3]);
  });

  it('gives a retried batch the same inference ids, whatever the clock says', async () => {
    const clock = new ManualClock();
    const op = await openScore({ model: 'news2', version: '1.0.0' }, new SpyStore(), clock);
    const batch = [vitals(), vitals({ pulse: 45 }), vitals()];
    const first = await op.process(batch);
    clock.advance(60_000);
    const again = await op.process(batch);
    const ids = (r: Results<ScoredEvent>) => r.out.map((o) => o.value.inference!.inference_id);
    expect(ids(again)).toEqual(ids(first));
    expect(new Set(ids(first)).size).toBe(3);
    expect(again.out[0]!.value.inference!.scored_at).toBe(first.out[0]!.value.inference!.scored_at + 60_000);
    for (const id of ids(first)) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);

    // A second operator on the same model version agrees: the id depends on (event, model, version) only.
    const other = await openScore({ model: 'news2', version: '1.0.0', rollout: 'shadow' });
    expect(ids(await other.process(batch))).toEqual(ids(first));
  });

  it('hashes the scoring configuration once: same config, same hash; another rollout or pipeline, another hash', async () => {
    const batch = [vitals()];
    const hashOf = async (op: ScoreOperator) => (await op.process(batch)).out[0]!.value.inference!;
    const live = await hashOf(await openScore({ model: 'news2', version: '1.0.0' }));
    const liveAgain = await hashOf(await openScore({ model: 'news2', version: '1.0.0', rollout: 'live' }));
    const shadow = await hashOf(await openScore({ model: 'news2', version: '1.0.0', rollout: 'shadow' }));
    const v2 = await hashOf(await openScore({ model: 'news2', version: '1.0.0', pipeline: 'vitals@2' }));
    expect(liveAgain.config_hash).toBe(live.config_hash);
    expect(shadow.config_hash).not.toBe(live.config_hash);
    expect(shadow.rollout).toBe('shadow');
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
    expect(codeOf({ model: 'news2', version: '1.0.0' })).toBe('ok');
    expect(codeOf({ model: 'news2', version: '1.0.0', batch: 10 })).toMatch(/^CONFIG_INVALID: .*batch/s);
    expect(codeOf({ model: 'news2' })).toMatch(/^CONFIG_INVALID: .*version/s);
    expect(codeOf({ model: 'news2', version: '1.0.0', rollout: 'half' })).toMatch(/^CONFIG_INVALID: .*rollout/s);
    expect(codeOf({ model: '../etc', version: '1.0.0' })).toMatch(/^CONFIG_INVALID: .*model/s);
  });

  it('fails at open, saying what to fix, when the model is missing, altered or not a NEWS2 model', async () => {
    const missing = score({ model: 'news2', version: '9.9.9' });
    await expect(missing.open(context(new OnnxModelStore()))).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
      message: expect.stringContaining('models:build'),
    });

    const root = mkdtempSync(join(tmpdir(), 'vigil-score-'));
    try {
      const dir = join(root, 'news2', '1.0.0');
      cpSync(join(DEFAULT_MODELS_ROOT, 'news2', '1.0.0'), dir, {
        recursive: true,
        filter: (src) => !src.endsWith('.test.ts'),
      });
      const manifestPath = join(dir, 'manifest.json');
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
      writeFileSync(manifestPath, JSON.stringify({ ...manifest, features: [...manifest.features].reverse() }));
      const store = new SpyStore(new OnnxModelStore({ root }));
      await expect(score({ model: 'news2', version: '1.0.0' }).open(context(store))).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('NEWS2 features'),
      });

      writeFileSync(manifestPath, JSON.stringify(manifest));
      const bytes = readFileSync(join(dir, 'model.onnx'));
      bytes[100] = bytes[100]! ^ 0xff;
      writeFileSync(join(dir, 'model.onnx'), bytes);
      await expect(score({ model: 'news2', version: '1.0.0' }).open(context(store))).rejects.toMatchObject({
        code: 'MODEL_INTEGRITY_FAILED',
      });
      expect(store.runs).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses to process before open', async () => {
    await expect(score({ model: 'news2', version: '1.0.0' }).process([vitals()])).rejects.toThrow(/before open/);
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
