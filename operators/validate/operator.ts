/**
 * The `validate` logic: stateless checks, in a fixed order, first failure wins.
 *
 * 0. when `requireGateway`: gateway provenance (./gateway.ts): signed_event and gateway_id present -> NOT_FROM_GATEWAY;
 *    integrity_hash binds signed_event and the signed payload agrees on device_id, event_id, sequence, nonce and
 *    observed_at -> INTEGRITY_MISMATCH. First, because nothing else a record says is worth judging when it did not
 *    come through a gateway or was altered after it.
 * 1. provenance: device_id, patient_ref, site_id, firmware_version, schema_version, integrity_hash, consent_context,
 *    processing_policy each non-blank (then `sequence` present, when `requireSequence`) -> MISSING_PROVENANCE
 * 2. event_id is a canonical ULID (26 upper-case Crockford base32 characters, first <= '7') -> INVALID_EVENT_ID
 * 3. the payload record is the one event_type names -> PAYLOAD_TYPE_MISMATCH
 * 4. values: vital signs or device-status readings (in schema order) within their bounds and finite; sequence a
 *    non-negative safe integer; observed_at and received_at finite, received_at within [receivedAtMin,
 *    receivedAtMax] (so observed_at is bounded too, by the two rules below) -> VALUE_OUT_OF_RANGE
 * 5. observed_at after received_at by more than maxFutureSkewMs -> CLOCK_SKEW (beyond toleratedSkewMs: flag clock_skew)
 * 6. observed_at older than maxAgeMs at receipt -> STALE_EVENT (older than lateAfterMs: flag late_arrival)
 * 7. no sequence -> flag no_sequence
 *
 * Device time is judged against received_at (the gateway's stamp, part of the record), never against the worker's
 * clock, so a verdict is a pure function of the record: reruns and replays agree.
 *
 * Not here: the monotonic sequence per device needs keyed state, so it lives in `dedupe`'s replay window.
 *
 * Hot path: every record passes here. Details, bounds and flag lists are precomputed at construction; the per-record
 * work is fixed-name property reads, comparisons and a table-driven ULID check (a precompiled regex runs only for a
 * field that starts with a non-printable or non-ASCII character); the allocations per record are its output and the
 * small tagged value `payloadOf` returns. bench/micro/validate.bench.ts measures it.
 */

import type { ReasonCode } from '../../runtime/errors.ts';
import type { Operator } from '../../runtime/operator.ts';
import { ResultsBuilder } from '../../runtime/operator.ts';
import type { InFlight } from '../../runtime/record.ts';
import { type Envelope, payloadOf } from '../../schemas/types.ts';
import type { CheckedEvent, ProvenanceFlag } from '../types.ts';
import type { ValidateConfig } from './config.ts';
import { checkGatewayProvenance } from './gateway.ts';

/** The provenance fields that must be non-blank, in check order. */
export const REQUIRED_PROVENANCE = [
  'device_id',
  'patient_ref',
  'site_id',
  'firmware_version',
  'schema_version',
  'integrity_hash',
  'consent_context',
  'processing_policy',
] as const satisfies readonly (keyof Envelope)[];

/** Canonical ULID: Crockford base32 (no I, L, O, U), upper case, 26 characters, 48-bit time first (so <= '7'). */
export const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
const NON_BLANK = /\S/;

/** Crockford base32 digits by char code (the same set as ULID_PATTERN; a table beats the regex on the hot path). */
const CROCKFORD = new Uint8Array(128);
for (const c of '0123456789ABCDEFGHJKMNPQRSTVWXYZ') CROCKFORD[c.charCodeAt(0)] = 1;

/** Exactly `ULID_PATTERN.test(value)`, without the regex engine. */
export function isUlid(value: unknown): boolean {
  if (typeof value !== 'string' || value.length !== 26) return false;
  const first = value.charCodeAt(0);
  if (first < 48 || first > 55) return false; // '0'..'7'
  for (let i = 1; i < 26; i++) {
    const c = value.charCodeAt(i);
    if (c >= 128 || CROCKFORD[c] === 0) return false;
  }
  return true;
}

/** Missing, not a string, or only whitespace. Printable ASCII first: the common case skips the regex. */
function blank(value: unknown): boolean {
  if (typeof value !== 'string' || value.length === 0) return true;
  const first = value.charCodeAt(0);
  if (first > 32 && first < 127) return false;
  return !NON_BLANK.test(value);
}

/** A present reading outside [min, max]: NaN fails every comparison, a non-number fails the type check. */
function outside(value: unknown, min: number, max: number): boolean {
  return value != null && !(typeof value === 'number' && value >= min && value <= max);
}

const CLOCK_SKEW = 1;
const LATE_ARRIVAL = 2;
const NO_SEQUENCE = 4;

/** One frozen flag list per combination: records share them instead of allocating their own. */
const FLAG_SETS: readonly (readonly ProvenanceFlag[])[] = Array.from({ length: 8 }, (_, mask) => {
  const flags: ProvenanceFlag[] = [];
  if (mask & CLOCK_SKEW) flags.push('clock_skew');
  if (mask & LATE_ARRIVAL) flags.push('late_arrival');
  if (mask & NO_SEQUENCE) flags.push('no_sequence');
  return Object.freeze(flags);
});

export interface ValidationFailure {
  readonly code: ReasonCode;
  readonly detail: string;
}

function outOfRange(unit: string, field: string, bounds: { min: number; max: number }): ValidationFailure {
  return {
    code: 'VALUE_OUT_OF_RANGE',
    detail: `${unit}.${field} must be a finite number in [${bounds.min}, ${bounds.max}]`,
  };
}

/**
 * Bounds and their failures as plain numeric fields, read with fixed property names: the hot path does no keyed
 * lookups (a loop over field names makes V8's property access megamorphic, measured ~2x slower).
 */
class Bounds {
  readonly rrMin: number;
  readonly rrMax: number;
  readonly spo2Min: number;
  readonly spo2Max: number;
  readonly sbpMin: number;
  readonly sbpMax: number;
  readonly hrMin: number;
  readonly hrMax: number;
  readonly tempMin: number;
  readonly tempMax: number;
  readonly batteryMin: number;
  readonly batteryMax: number;
  readonly signalMin: number;
  readonly signalMax: number;
  readonly rr: ValidationFailure;
  readonly spo2: ValidationFailure;
  readonly sbp: ValidationFailure;
  readonly hr: ValidationFailure;
  readonly temp: ValidationFailure;
  readonly battery: ValidationFailure;
  readonly signal: ValidationFailure;

  constructor({ vitals: v, deviceStatus: d }: ValidateConfig) {
    this.rrMin = v.respiratory_rate.min;
    this.rrMax = v.respiratory_rate.max;
    this.spo2Min = v.spo2.min;
    this.spo2Max = v.spo2.max;
    this.sbpMin = v.systolic_bp.min;
    this.sbpMax = v.systolic_bp.max;
    this.hrMin = v.pulse.min;
    this.hrMax = v.pulse.max;
    this.tempMin = v.temperature_c.min;
    this.tempMax = v.temperature_c.max;
    this.batteryMin = d.battery_pct.min;
    this.batteryMax = d.battery_pct.max;
    this.signalMin = d.signal_dbm.min;
    this.signalMax = d.signal_dbm.max;
    this.rr = outOfRange('vital_signs', 'respiratory_rate', v.respiratory_rate);
    this.spo2 = outOfRange('vital_signs', 'spo2', v.spo2);
    this.sbp = outOfRange('vital_signs', 'systolic_bp', v.systolic_bp);
    this.hr = outOfRange('vital_signs', 'pulse', v.pulse);
    this.temp = outOfRange('vital_signs', 'temperature_c', v.temperature_c);
    this.battery = outOfRange('device_status', 'battery_pct', d.battery_pct);
    this.signal = outOfRange('device_status', 'signal_dbm', d.signal_dbm);
  }
}

export class ValidateOperator implements Operator<Envelope, CheckedEvent> {
  readonly name = 'validate';
  readonly stage = 'validate' as const;
  readonly config: ValidateConfig;
  readonly #bounds: Bounds;
  readonly #missing: readonly ValidationFailure[];
  readonly #maxFutureSkewMs: number;
  readonly #toleratedSkewMs: number;
  readonly #maxAgeMs: number;
  readonly #lateAfterMs: number;
  readonly #requireSequence: boolean;
  readonly #requireGateway: boolean;
  readonly #missingSequence: ValidationFailure = {
    code: 'MISSING_PROVENANCE',
    detail: 'sequence is required (requireSequence)',
  };
  readonly #badEventId: ValidationFailure = {
    code: 'INVALID_EVENT_ID',
    detail: 'event_id must be a ULID: 26 upper-case Crockford base32 characters, the first 0-7',
  };
  readonly #payloadMismatch: ValidationFailure = {
    code: 'PAYLOAD_TYPE_MISMATCH',
    detail: 'the payload record is not the one event_type names',
  };
  readonly #badSequence: ValidationFailure = {
    code: 'VALUE_OUT_OF_RANGE',
    detail: 'sequence must be a non-negative safe integer (0 to 2^53-1)',
  };
  readonly #badTimestamp: ValidationFailure = {
    code: 'VALUE_OUT_OF_RANGE',
    detail: 'observed_at and received_at must be finite epoch milliseconds',
  };
  readonly #implausibleReceipt: ValidationFailure;
  readonly #receivedAtMin: number;
  readonly #receivedAtMax: number;
  readonly #skew: ValidationFailure;
  readonly #stale: ValidationFailure;

  constructor(config: ValidateConfig) {
    this.config = config;
    this.#bounds = new Bounds(config);
    this.#maxFutureSkewMs = config.maxFutureSkewMs;
    this.#toleratedSkewMs = config.toleratedSkewMs;
    this.#maxAgeMs = config.maxAgeMs;
    this.#lateAfterMs = config.lateAfterMs;
    this.#requireSequence = config.requireSequence;
    this.#requireGateway = config.requireGateway;
    this.#receivedAtMin = config.receivedAtMin;
    this.#receivedAtMax = config.receivedAtMax;
    this.#implausibleReceipt = {
      code: 'VALUE_OUT_OF_RANGE',
      detail: `received_at must lie in [${new Date(config.receivedAtMin).toISOString()}, ${new Date(config.receivedAtMax).toISOString()}]`,
    };
    this.#missing = REQUIRED_PROVENANCE.map((field) => ({
      code: 'MISSING_PROVENANCE',
      detail: `${field} is missing or blank`,
    }));
    this.#skew = {
      code: 'CLOCK_SKEW',
      detail: `observed_at lies more than ${config.maxFutureSkewMs} ms after received_at`,
    };
    this.#stale = {
      code: 'STALE_EVENT',
      detail: `observed_at lies more than ${config.maxAgeMs} ms before received_at`,
    };
  }

  /** The same checks without gateway provenance (`vigil run --accept-ungated`); itself when it requires none. */
  acceptingUngated(): ValidateOperator {
    return this.#requireGateway ? new ValidateOperator({ ...this.config, requireGateway: false }) : this;
  }

  process(batch: readonly InFlight<Envelope>[]): ResultsBuilder<CheckedEvent> {
    const results = new ResultsBuilder<CheckedEvent>();
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!;
      const verdict = this.check(record.value);
      if (typeof verdict === 'number') {
        results.pass(record.origin, { envelope: record.value, flags: FLAG_SETS[verdict]! });
      } else {
        results.reject(record, verdict.code, verdict.detail);
      }
    }
    return results;
  }

  /** A failure, or the flag mask of a passing record. Exposed for tests and benchmarks. */
  check(e: Envelope): ValidationFailure | number {
    // 0. gateway provenance
    if (this.#requireGateway) {
      const failure = checkGatewayProvenance(e);
      if (failure !== null) return failure;
    }
    // 1. provenance
    const missing = this.#missing;
    if (blank(e.device_id)) return missing[0]!;
    if (blank(e.patient_ref)) return missing[1]!;
    if (blank(e.site_id)) return missing[2]!;
    if (blank(e.firmware_version)) return missing[3]!;
    if (blank(e.schema_version)) return missing[4]!;
    if (blank(e.integrity_hash)) return missing[5]!;
    if (blank(e.consent_context)) return missing[6]!;
    if (blank(e.processing_policy)) return missing[7]!;
    const sequence: unknown = e.sequence;
    const hasSequence = sequence != null;
    if (!hasSequence && this.#requireSequence) return this.#missingSequence;
    // 2. event id
    if (!isUlid(e.event_id)) return this.#badEventId;
    // 3. payload branch
    const payload = e.payload == null ? null : payloadOf(e.payload);
    if (payload === null || payload.type !== e.event_type) return this.#payloadMismatch;
    // 4. values
    const b = this.#bounds;
    if (payload.type === 'vital_signs') {
      const v = payload.data;
      if (outside(v.respiratory_rate, b.rrMin, b.rrMax)) return b.rr;
      if (outside(v.spo2, b.spo2Min, b.spo2Max)) return b.spo2;
      if (outside(v.systolic_bp, b.sbpMin, b.sbpMax)) return b.sbp;
      if (outside(v.pulse, b.hrMin, b.hrMax)) return b.hr;
      if (outside(v.temperature_c, b.tempMin, b.tempMax)) return b.temp;
    } else if (payload.type === 'device_status') {
      const d = payload.data;
      if (outside(d.battery_pct, b.batteryMin, b.batteryMax)) return b.battery;
      if (outside(d.signal_dbm, b.signalMin, b.signalMax)) return b.signal;
    }
    if (hasSequence && !(Number.isSafeInteger(sequence) && (sequence as number) >= 0)) return this.#badSequence;
    const observed = e.observed_at;
    const received = e.received_at;
    if (!Number.isFinite(observed) || !Number.isFinite(received)) return this.#badTimestamp;
    if (received < this.#receivedAtMin || received > this.#receivedAtMax) return this.#implausibleReceipt;
    // 5. device clock ahead of the gateway
    let flags = hasSequence ? 0 : NO_SEQUENCE;
    const ahead = observed - received;
    if (ahead > this.#maxFutureSkewMs) return this.#skew;
    if (ahead > this.#toleratedSkewMs) flags |= CLOCK_SKEW;
    // 6. age at receipt
    const age = received - observed;
    if (age > this.#maxAgeMs) return this.#stale;
    if (age > this.#lateAfterMs) flags |= LATE_ARRIVAL;
    return flags;
  }
}
