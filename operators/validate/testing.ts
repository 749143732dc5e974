/**
 * Test fixtures for the validate and dedupe operators: a realistic envelope with every field overridable, and the
 * in-flight wrapper a source would produce. For tests and benchmarks only.
 */
import type { InFlight, Origin } from '../../runtime/record.ts';
import { type DeviceStatus, type Envelope, type EventType, type VitalSigns, wrapPayload } from '../../schemas/types.ts';

export const T0 = Date.UTC(2026, 0, 1, 8, 0, 0);
const EMPTY = Buffer.alloc(0);

export const VITALS: VitalSigns = {
  respiratory_rate: 16,
  spo2: 97,
  on_oxygen: false,
  systolic_bp: 122,
  pulse: 72,
  consciousness: 'A',
  temperature_c: 36.8,
};

export const STATUS: DeviceStatus = {
  state: 'ok',
  battery_pct: 80,
  signal_dbm: -61,
  calibration_state: 'current',
  last_calibrated_at: T0 - 86_400_000,
};

/** A valid vital-signs envelope; `overrides` replace top-level fields, `vitals` replace vital signs. */
export function envelope(
  overrides: Partial<Envelope> & { vitals?: Partial<VitalSigns>; status?: Partial<DeviceStatus> } = {},
): Envelope {
  const { vitals, status, ...fields } = overrides;
  const type: EventType = fields.event_type ?? (status ? 'device_status' : 'vital_signs');
  const data = type === 'device_status' ? { ...STATUS, ...status } : { ...VITALS, ...vitals };
  return {
    event_id: '01JGZ5Q8V3K9M2N4P6R8S0T2W4',
    device_id: 'dev-0001',
    patient_ref: 'pt-v1-9f2c',
    site_id: 'site-north',
    event_type: type,
    observed_at: T0,
    received_at: T0 + 400,
    firmware_version: '4.2.1',
    model_version: null,
    schema_version: 'telemetry-envelope-v2',
    integrity_hash: `sha256:${'ab'.repeat(32)}`,
    consent_context: 'care-delivery',
    processing_policy: 'clinical-v1',
    payload: wrapPayload(type, data),
    sequence: 1,
    nonce: null,
    device_cert_fingerprint: null,
    key_id: null,
    device_batch: null,
    patient_subgroup: null,
    transformation_version: null,
    parent_event_ids: [],
    ...fields,
  };
}

export function origin(offset: number, partition = 0): Origin {
  return {
    topic: 'vigil.telemetry.raw',
    partition,
    offset,
    consumedAt: T0 + 1000,
    rawSha256: '0'.repeat(64),
    raw: EMPTY,
    headers: [],
    key: null,
  };
}

export function inFlight<T>(value: T, offset: number, partition = 0): InFlight<T> {
  return { value, origin: origin(offset, partition) };
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A deterministic canonical ULID for index `n` (time part fixed, random part encodes n). */
export function ulidFor(n: number): string {
  let tail = '';
  let rest = n;
  for (let i = 0; i < 16; i++) {
    tail = CROCKFORD[rest % 32]! + tail;
    rest = Math.floor(rest / 32);
  }
  return `01JGZ5Q8V3${tail}`;
}
