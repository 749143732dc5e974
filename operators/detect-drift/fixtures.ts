/**
 * Test fixtures for detect-drift: a small seeded vital-signs generator and record builders. Test-only.
 *
 * The generator is clustered like real telemetry: each patient has a baseline and every reading wobbles around it,
 * so a sample of P patients x R readings holds far less information than P·R independent draws. Drift tests built
 * on it therefore face the same noise the pipeline meets (a cohort is a set of patients, not a set of readings).
 * It is deliberately simpler than simulator/: it only has to be a stationary population with a known SpO2 bias knob.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import type { InFlight, Origin } from '../../runtime/record.ts';
import { type Acvpu, type Envelope, type Inference, type VitalSigns, wrapPayload } from '../../schemas/types.ts';
import { Prng } from '../../simulator/prng.ts';
import { news2Features } from '../score/features.ts';
import { news2Reference, RISK_BANDS } from '../score/news2-reference.ts';
import type { ScoredEvent } from '../types.ts';
import type { ReferenceSample } from './reference.ts';

export const T0 = Date.UTC(2026, 0, 5);
export const HOUR = 3_600_000;

export interface Reading {
  readonly deviceId: string;
  readonly observedAt: number;
  readonly vitals: VitalSigns;
  /** NEWS2 of the vitals (plain-TS chart, the model's twin), null when a parameter is missing. */
  readonly score: number | null;
}

export interface SyntheticOptions {
  readonly seed: number | string;
  readonly patients: number;
  readonly readingsPerPatient: number;
  /** Points subtracted from each SpO2 reading: a number, or a range drawn per reading ([3, 4]: 3 or 4). */
  readonly spo2Bias?: number | readonly [number, number];
  /** Share of readings with no temperature (an incomplete NEWS2 set). */
  readonly missingTemperature?: number;
  readonly start?: number;
  /** Time between one patient's readings. */
  readonly intervalMs?: number;
}

function clampRound(x: number, lo: number, hi: number, decimals = 0): number {
  const f = 10 ** decimals;
  const r = Math.round(x * f) / f;
  return Math.min(Math.max(r, lo), hi);
}

/** Patients drawn from one stationary population; readings interleaved in time order across patients. */
export function syntheticReadings(options: SyntheticOptions): Reading[] {
  const prng = Prng.derive(options.seed, 'detect-drift/fixtures');
  const start = options.start ?? T0;
  const interval = options.intervalMs ?? 60_000;
  const bias = options.spo2Bias ?? 0;
  const patients = Array.from({ length: options.patients }, (_, i) => {
    const chronic = prng.chance(0.1);
    return {
      deviceId: `dev-${String(options.seed)}-${i}`,
      offset: prng.int(0, interval - 1),
      oxygen: chronic ? prng.chance(0.35) : prng.chance(0.01),
      rr: chronic ? prng.gauss(19, 1.5, 15, 23) : prng.gauss(15.5, 1.8, 12, 20),
      spo2: chronic ? prng.gauss(92.5, 1.3, 89, 95) : prng.gauss(97, 1.1, 94.5, 99.6),
      hr: prng.gauss(74, 9, 54, 98),
      sbp: prng.gauss(128, 14, 102, 178),
      temp: prng.gauss(36.75, 0.25, 36.2, 37.4),
    };
  });
  const readings: Reading[] = [];
  for (let r = 0; r < options.readingsPerPatient; r++) {
    for (const p of patients) {
      const shift = typeof bias === 'number' ? bias : prng.int(bias[0], bias[1]);
      const consciousness: Acvpu = prng.chance(0.004) ? 'C' : 'A';
      const vitals: VitalSigns = {
        respiratory_rate: clampRound(p.rr + prng.normal() * 1.2, 6, 45),
        spo2: clampRound(p.spo2 + prng.normal() * 0.8 - shift, 70, 100),
        on_oxygen: p.oxygen,
        systolic_bp: clampRound(p.sbp + prng.normal() * 7, 70, 240),
        pulse: clampRound(p.hr + prng.normal() * 5, 30, 180),
        consciousness,
        temperature_c: prng.chance(options.missingTemperature ?? 0)
          ? null
          : clampRound(p.temp + prng.normal() * 0.15, 34, 42, 1),
      };
      const features = news2Features(vitals);
      readings.push({
        deviceId: p.deviceId,
        observedAt: start + r * interval + p.offset,
        vitals,
        score: features === null ? null : news2Reference(features).score,
      });
    }
  }
  return readings;
}

export function referenceSamples(readings: readonly Reading[]): ReferenceSample[] {
  return readings.map((r) => ({ vitals: r.vitals, score: r.score }));
}

export interface RecordOptions {
  readonly firmware?: string;
  readonly site?: string;
  readonly topic?: string;
  readonly partition?: number;
  /** Offset of the first record; the rest follow one by one. */
  readonly firstOffset?: number;
  readonly model?: string;
  readonly version?: string;
}

export function envelopeFor(reading: Reading, index: number, options: RecordOptions = {}): Envelope {
  return {
    event_id: `01J${String(index).padStart(23, '0')}`,
    device_id: reading.deviceId,
    patient_ref: `pt-${reading.deviceId}`,
    site_id: options.site ?? 'site-a',
    event_type: 'vital_signs',
    observed_at: reading.observedAt,
    received_at: reading.observedAt + 1_000,
    firmware_version: options.firmware ?? '5.12.1',
    model_version: null,
    schema_version: 'telemetry-envelope-v2',
    integrity_hash: `sha256:${'0'.repeat(64)}`,
    consent_context: 'hah-care-v3',
    processing_policy: 'care-only-v1',
    payload: wrapPayload('vital_signs', reading.vitals),
    sequence: index,
    nonce: null,
    device_cert_fingerprint: null,
    key_id: null,
    device_batch: null,
    patient_subgroup: null,
    transformation_version: null,
    parent_event_ids: [],
  } as Envelope;
}

export function inferenceFor(envelope: Envelope, score: number, options: RecordOptions = {}): Inference {
  return {
    inference_id: `inf-${envelope.event_id}`,
    event_id: envelope.event_id,
    parent_event_ids: [envelope.event_id],
    device_id: envelope.device_id,
    patient_ref: envelope.patient_ref,
    site_id: envelope.site_id,
    firmware_version: envelope.firmware_version,
    device_batch: null,
    patient_subgroup: null,
    observed_at: envelope.observed_at,
    scored_at: envelope.received_at,
    model_name: options.model ?? 'news2',
    model_version: options.version ?? '1.0.0',
    model_artifact_sha256: '0'.repeat(64),
    runtime: 'onnxruntime-node',
    runtime_version: 'test',
    config_hash: '0'.repeat(64),
    rollout: 'live',
    feature_names: [],
    features: [],
    feature_vector_hash: '0'.repeat(64),
    score,
    subscores: [],
    risk_band: RISK_BANDS[score >= 7 ? 3 : score >= 5 ? 2 : 0],
    transformation_version: 'test',
  };
}

export function originFor(offset: number, options: RecordOptions = {}): Origin {
  const raw = Buffer.from(`record-${offset}`);
  return {
    topic: options.topic ?? 'vigil.telemetry.raw',
    partition: options.partition ?? 0,
    offset,
    consumedAt: T0,
    rawSha256: createHash('sha256').update(raw).digest('hex'),
    raw,
    headers: [],
    key: null,
  };
}

/** Scored records for readings: an inference whenever the reading has a score. */
export function scoredRecords(readings: readonly Reading[], options: RecordOptions = {}): InFlight<ScoredEvent>[] {
  const first = options.firstOffset ?? 0;
  return readings.map((reading, i) => {
    const envelope = envelopeFor(reading, first + i, options);
    const value: ScoredEvent = {
      envelope,
      flags: reading.score === null ? ['news2_incomplete'] : [],
      inference: reading.score === null ? null : inferenceFor(envelope, reading.score, options),
    };
    return { value, origin: originFor(first + i, options) };
  });
}

/** Splits records into consecutive batches of at most `size`. */
export function batches<T>(records: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < records.length; i += size) out.push(records.slice(i, i + size));
  return out;
}

/** A real model store (adapters/onnx) in a temp folder whose news2@1.0.0 manifest names `reference` (or none). */
export async function modelStoreWith(
  reference: string | null,
  options: { model?: string; version?: string } = {},
): Promise<{ store: OnnxModelStore; root: string; cleanup: () => Promise<void> }> {
  const model = options.model ?? 'news2';
  const version = options.version ?? '1.0.0';
  const root = await mkdtemp(join(tmpdir(), 'vigil-drift-models-'));
  const dir = join(root, model, version);
  await mkdir(dir, { recursive: true });
  const artifact = Buffer.from('not a real model: detect-drift only reads the reference');
  await writeFile(join(dir, 'model.onnx'), artifact);
  const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
  if (reference !== null) await writeFile(join(dir, 'reference.json'), reference);
  const manifest = {
    name: model,
    version,
    description: 'test model',
    artifact: { file: 'model.onnx', sha256: sha(artifact) },
    features: ['respiratory_rate'],
    reference: reference === null ? null : { file: 'reference.json', sha256: sha(reference) },
    build: {},
  };
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { store: new OnnxModelStore({ root }), root, cleanup: () => rm(root, { recursive: true, force: true }) };
}
