/**
 * Real records for the ClickHouse tests and the insert benchmark: typed NormalisedEvent / Inference / DeadLetter /
 * Duplicate / Origin values, built the way the pipeline builds them, with deterministic ids.
 */
import { createHash } from 'node:crypto';
import type { Origin } from '../../runtime/record.ts';
import {
  type Alarm,
  type ConfigChange,
  type DeadLetter,
  type DeviceStatus,
  type Duplicate,
  type EventType,
  type Inference,
  type NormalisedEvent,
  type VitalSigns,
  wrapPayload,
} from '../../schemas/types.ts';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A valid ULID whose time part is `ms` and whose random part is `n`: deterministic and sortable. */
export function fixtureUlid(ms: number, n: number): string {
  let time = '';
  for (let t = ms, i = 0; i < 10; i += 1, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  let rand = '';
  for (let r = n, i = 0; i < 16; i += 1, r = Math.floor(r / 32)) rand = CROCKFORD[r % 32] + rand;
  return time + rand;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export const T0 = Date.UTC(2026, 2, 10, 8, 0, 0);

export interface EventSpec {
  readonly n: number;
  readonly type?: EventType;
  readonly deviceId?: string;
  readonly siteId?: string;
  readonly firmware?: string;
  readonly deviceBatch?: string | null;
  readonly patientSubgroup?: string | null;
  readonly observedAt?: number;
  readonly vitals?: Partial<VitalSigns>;
  readonly status?: Partial<DeviceStatus>;
  readonly alarm?: Partial<Alarm>;
  readonly config?: Partial<ConfigChange>;
  readonly flags?: string[];
  readonly offset?: number;
}

const VITALS: VitalSigns = {
  respiratory_rate: 16,
  spo2: 97,
  on_oxygen: false,
  systolic_bp: 122,
  pulse: 72,
  consciousness: 'A',
  temperature_c: 36.8,
};

function payloadFor(spec: EventSpec) {
  switch (spec.type ?? 'vital_signs') {
    case 'vital_signs':
      return wrapPayload('vital_signs', { ...VITALS, ...spec.vitals });
    case 'device_status':
      return wrapPayload('device_status', {
        state: 'ok',
        battery_pct: 81,
        signal_dbm: -67,
        calibration_state: 'current',
        last_calibrated_at: T0 - 86_400_000,
        ...spec.status,
      });
    case 'alarm':
      return wrapPayload('alarm', {
        alarm_code: 'SPO2_LOW',
        category: 'physiological',
        priority: 'high',
        active: true,
        ...spec.alarm,
      });
    case 'config_change':
      return wrapPayload('config_change', {
        parameter: 'spo2_alarm_low',
        old_value: '90',
        new_value: '88',
        changed_by: 'clinician',
        ...spec.config,
      });
  }
}

export function normalisedEvent(spec: EventSpec): NormalisedEvent {
  const observedAt = spec.observedAt ?? T0 + spec.n * 1_000;
  const deviceId = spec.deviceId ?? `dev-${String(spec.n % 10).padStart(4, '0')}`;
  const raw = `raw-${spec.n}`;
  return {
    event_id: fixtureUlid(observedAt, spec.n),
    device_id: deviceId,
    patient_ref: `pt:v1:${sha256Hex(`patient-${deviceId}`).slice(0, 24)}`,
    site_id: spec.siteId ?? 'site-a',
    event_type: spec.type ?? 'vital_signs',
    observed_at: observedAt,
    received_at: observedAt + 350,
    firmware_version: spec.firmware ?? '4.2.0',
    model_version: null,
    schema_version: 'telemetry-envelope-v2',
    integrity_hash: `sha256:${sha256Hex(`device-bytes-${spec.n}`)}`,
    consent_context: 'clinical-care',
    processing_policy: 'standard',
    payload: payloadFor(spec) as NormalisedEvent['payload'],
    sequence: 1000 + spec.n,
    nonce: `nonce-${spec.n}`,
    device_cert_fingerprint: sha256Hex(`cert-${deviceId}`),
    key_id: `key-${deviceId}`,
    device_batch: spec.deviceBatch === undefined ? 'LOT-17' : spec.deviceBatch,
    patient_subgroup: spec.patientSubgroup === undefined ? 'adult_18_64' : spec.patientSubgroup,
    transformation_version: 'vitals@1/validate/dedupe',
    parent_event_ids: [],
    provenance_flags: spec.flags ?? [],
    source_topic: 'vigil.telemetry.raw',
    source_partition: 0,
    source_offset: spec.offset ?? spec.n,
    raw_sha256: sha256Hex(raw),
    processed_at: observedAt + 1_200,
  };
}

export interface InferenceSpec {
  readonly score: number;
  readonly band?: Inference['risk_band'];
  readonly modelVersion?: string;
  readonly rollout?: Inference['rollout'];
}

export function inferenceFor(event: NormalisedEvent, spec: InferenceSpec): Inference {
  const modelVersion = spec.modelVersion ?? '1.0.0';
  const features = [16, 97, 0, 122, 72, 0, 36.8];
  return {
    inference_id: sha256Hex(`${event.event_id}|news2|${modelVersion}`).slice(0, 32),
    event_id: event.event_id,
    parent_event_ids: [event.event_id],
    device_id: event.device_id,
    patient_ref: event.patient_ref,
    site_id: event.site_id,
    firmware_version: event.firmware_version,
    device_batch: event.device_batch,
    patient_subgroup: event.patient_subgroup,
    observed_at: event.observed_at,
    scored_at: event.processed_at + 5,
    model_name: 'news2',
    model_version: modelVersion,
    model_artifact_sha256: sha256Hex(`news2-${modelVersion}.onnx`),
    runtime: 'onnxruntime-node',
    runtime_version: '1.30.0',
    config_hash: sha256Hex('news2-config'),
    rollout: spec.rollout ?? 'live',
    feature_names: ['respiratory_rate', 'spo2', 'on_oxygen', 'systolic_bp', 'pulse', 'consciousness', 'temp'],
    features,
    feature_vector_hash: sha256Hex(Buffer.from(new Float32Array(features).buffer)),
    score: spec.score,
    subscores: [0, 0, 0, 0, 0, 0, spec.score],
    risk_band: spec.band ?? (spec.score >= 7 ? 'high' : spec.score >= 5 ? 'medium' : 'low'),
    transformation_version: 'vitals@1/validate/dedupe/score',
  };
}

export function deadLetter(n: number, spec: Partial<DeadLetter> = {}): DeadLetter {
  const raw = Buffer.from([0x01, 0xff, n & 0xff, 0x00]);
  return {
    dead_letter_id: `vitals:vigil.telemetry.raw:0:${5000 + n}:decode`,
    failed_at: T0 + n * 1_000,
    pipeline: 'vitals',
    stage: 'decode',
    operator: 'decode',
    reason_code: 'BAD_MAGIC_BYTE',
    reason_detail: 'first byte is 0x01, expected 0x00',
    source_topic: 'vigil.telemetry.raw',
    source_partition: 0,
    source_offset: 5000 + n,
    raw_sha256: sha256Hex(raw),
    raw_bytes: raw,
    original_headers: [{ key: 'trace', value: Buffer.from(`t-${n}`) }],
    event_id: null,
    claimed_device_id: 'dev-0001',
    firmware_version: null,
    sequence: null,
    nonce: null,
    key_id: null,
    device_cert_fingerprint: null,
    trace_id: `trace-${n}`,
    ...spec,
  };
}

export function duplicate(event: NormalisedEvent, spec: Partial<Duplicate> = {}): Duplicate {
  return {
    pipeline: 'vitals',
    event_id: event.event_id,
    device_id: event.device_id,
    site_id: event.site_id,
    sequence: event.sequence,
    kind: 'event_id',
    first_seen: `0:${event.source_offset}`,
    source_topic: event.source_topic,
    source_partition: event.source_partition,
    source_offset: event.source_offset + 100_000,
    raw_sha256: event.raw_sha256,
    detected_at: event.processed_at + 60_000,
    ...spec,
  };
}

export function origin(n: number, raw: Buffer, spec: Partial<Origin> = {}): Origin {
  return {
    topic: 'vigil.telemetry.raw',
    partition: 0,
    offset: n,
    consumedAt: T0 + n,
    rawSha256: sha256Hex(raw),
    raw,
    headers: [
      { key: 'traceparent', value: Buffer.from(`00-${n}-01`) },
      { key: 'empty', value: null },
    ],
    key: `dev-${n}`,
    ...spec,
  };
}
