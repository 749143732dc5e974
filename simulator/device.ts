/**
 * One simulated device at run time: its clock, battery, radio, alarm state and sequence counter, producing its
 * events one at a time in its own order. Per-device received_at never goes backwards (a device talks to the gateway
 * over one connection), so per-device order in the merged stream is sequence order.
 */
import * as crypto from 'node:crypto';
import { envelopeSchema } from '../adapters/file/envelope-schema.ts';
import type { Alarm, ConfigChange, DeviceStatus, Envelope, EventType, Payload, VitalSigns } from '../schemas/types.ts';
import type { Device } from './fleet.ts';
import { newPatientState, type PatientState, type TrueVitals, trueVitals } from './physiology.ts';
import { Prng } from './prng.ts';
import { ulid } from './ulid.ts';

/** Longest offline spell: events observed meanwhile arrive at reconnection, at most this late (plus ms). */
export const MAX_OFFLINE_MS = 90 * 60_000;
/** Mean time between offline spells per device. */
const MEAN_TIME_BETWEEN_OFFLINE_MS = 3 * 24 * 3_600_000;
const STATUS_INTERVAL_MS = 30 * 60_000;

// crypto.hash (one-shot, faster) exists from Node 20.12; fall back to createHash before that.
const oneShot = (crypto as { hash?: (algorithm: string, data: Buffer, encoding: 'hex') => string }).hash;
const sha256Hex: (data: Buffer) => string =
  typeof oneShot === 'function'
    ? (data) => oneShot('sha256', data, 'hex')
    : (data) => crypto.createHash('sha256').update(data).digest('hex');

interface AlarmRule {
  readonly code: string;
  readonly bit: number;
}

const ALARM = {
  spo2Low: { code: 'PHY-SPO2-LOW', bit: 1 },
  hrHigh: { code: 'PHY-HR-HIGH', bit: 2 },
  hrLow: { code: 'PHY-HR-LOW', bit: 4 },
  rrHigh: { code: 'PHY-RR-HIGH', bit: 8 },
  rrLow: { code: 'PHY-RR-LOW', bit: 16 },
  tempHigh: { code: 'PHY-TEMP-HIGH', bit: 32 },
  nibpLow: { code: 'PHY-NIBP-LOW', bit: 64 },
  battLow: { code: 'TEC-BATT-LOW', bit: 128 },
} as const satisfies Record<string, AlarmRule>;

const CONFIG_ACTORS: readonly (readonly [ConfigChange['changed_by'], number])[] = [
  ['clinician', 0.6],
  ['remote_service', 0.2],
  ['technician', 0.12],
  ['device', 0.08],
];

const round1 = (x: number): number => Math.round(x * 10) / 10;
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

export class DeviceSim {
  readonly device: Device;
  readonly #prng: Prng;
  readonly #patient: PatientState = newPatientState();
  readonly #vitals: TrueVitals = { rr: 0, spo2: 0, hr: 0, sbp: 0, temp: 0, onOxygen: false, consciousness: 'A' };
  #seq: number;
  /** True time of the last event. */
  #t: number;
  #lastReceived = 0;
  #nextVitalsAt: number;
  #nextStatusAt: number;
  #battery: number;
  #charging = false;
  #signal: number;
  readonly #signalMean: number;
  #offlineUntil = 0;
  #reportOffline = false;
  #activeAlarms = 0;
  readonly #alarmQueue: Alarm[] = [];
  #spo2Limit: number;
  #hrHighLimit = 130;
  #reportIntervalS: number;
  readonly #lastCalibratedAt: number;
  /** Sequence of the last event this device handed out. */
  lastSequence: number;

  constructor(device: Device, seed: number | string, startTime: number) {
    this.device = device;
    this.#prng = Prng.derive(seed, `device/${device.index}`);
    const p = this.#prng;
    this.#seq = p.int(1_000, 500_000);
    this.lastSequence = this.#seq;
    // Devices start out of phase with each other.
    this.#t = startTime;
    this.#nextVitalsAt = startTime + Math.floor(p.float() * device.vitalsIntervalMs);
    this.#nextStatusAt = startTime + Math.floor(p.float() * STATUS_INTERVAL_MS);
    this.#battery = p.uniform(35, 100);
    this.#signalMean = p.gauss(-84, 7, -102, -62);
    this.#signal = this.#signalMean;
    this.#spo2Limit = device.patient.condition === 'chronic_respiratory' ? 88 : 90;
    this.#reportIntervalS = device.vitalsIntervalMs / 1000;
    this.#lastCalibratedAt =
      startTime - (device.calibrationStale ? p.int(200, 400) : p.int(1, 60)) * 86_400_000 - p.int(0, 86_399_999);
  }

  /** Generates the device's next event (its received_at is when the gateway gets it). */
  next(): Envelope {
    const p = this.#prng;
    let type: EventType;
    let t: number;
    let data: VitalSigns | DeviceStatus | Alarm | ConfigChange;
    const queued = this.#alarmQueue.shift();
    if (queued) {
      type = 'alarm';
      t = this.#t + p.int(800, 2_500);
      this.#tick(t);
      data = queued;
    } else if (this.#nextStatusAt <= this.#nextVitalsAt) {
      type = 'device_status';
      t = this.#nextStatusAt;
      this.#nextStatusAt = t + Math.round(STATUS_INTERVAL_MS * p.uniform(0.85, 1.15));
      this.#tick(t);
      data = this.#status();
    } else if (p.chance(0.004)) {
      type = 'config_change';
      t = this.#nextVitalsAt;
      this.#nextVitalsAt = t + p.int(2_000, 10_000);
      this.#tick(t);
      data = this.#configChange();
    } else {
      type = 'vital_signs';
      t = this.#nextVitalsAt;
      this.#nextVitalsAt = t + Math.round(this.device.vitalsIntervalMs * p.uniform(0.93, 1.07));
      this.#tick(t);
      data = this.#vitalSigns(t);
      // Going offline: this reading and everything until reconnection is buffered on the device.
      if (this.#offlineUntil <= t && p.chance(this.device.vitalsIntervalMs / MEAN_TIME_BETWEEN_OFFLINE_MS)) {
        this.#offlineUntil = t + p.int(5 * 60_000, MAX_OFFLINE_MS);
        this.#reportOffline = true;
        this.#nextStatusAt = Math.min(this.#nextStatusAt, this.#offlineUntil + p.int(1_000, 5_000));
      }
    }
    this.#t = t;
    let receivedAt: number;
    if (t < this.#offlineUntil) {
      receivedAt = Math.max(this.#offlineUntil, this.#lastReceived) + p.int(5, 40);
    } else {
      // Network delay: log-normal, median ~250 ms, a tail into seconds.
      const delay = Math.min(15_000, Math.round(Math.exp(5.5 + 1.0 * p.normal())));
      receivedAt = Math.max(t + delay, this.#lastReceived + 1);
    }
    this.#lastReceived = receivedAt;
    const observedAt = t + this.device.clockOffsetMs;
    this.#seq += 1;
    this.lastSequence = this.#seq;
    return this.#envelope(type, observedAt, receivedAt, data);
  }

  /** Battery and radio move with time. */
  #tick(t: number): void {
    const p = this.#prng;
    const hours = Math.max(0, t - this.#t) / 3_600_000;
    if (this.#charging) {
      this.#battery = Math.min(100, this.#battery + 30 * hours);
      if (this.#battery >= 95) this.#charging = false;
    } else {
      this.#battery = Math.max(0, this.#battery - (this.device.kind === 'wearable' ? 2.5 : 1.5) * hours);
      if (this.#battery < 12 && p.chance(0.25)) this.#charging = true;
    }
    const low = (this.#activeAlarms & ALARM.battLow.bit) !== 0;
    if (!low && this.#battery < 15) this.#raise(ALARM.battLow, 'technical', 'low');
    else if (low && this.#battery > 30) this.#clear(ALARM.battLow, 'technical', 'low');
    this.#signal = 0.9 * this.#signal + 0.1 * this.#signalMean + 2.5 * p.normal();
  }

  #raise(rule: AlarmRule, category: Alarm['category'], priority: Alarm['priority']): void {
    this.#activeAlarms |= rule.bit;
    this.#alarmQueue.push({ alarm_code: rule.code, category, priority, active: true });
  }

  #clear(rule: AlarmRule, category: Alarm['category'], priority: Alarm['priority']): void {
    this.#activeAlarms &= ~rule.bit;
    this.#alarmQueue.push({ alarm_code: rule.code, category, priority, active: false });
  }

  /** Raises or clears a physiological alarm with hysteresis. */
  #limit(rule: AlarmRule, raise: boolean, clear: boolean, priority: Alarm['priority']): void {
    const active = (this.#activeAlarms & rule.bit) !== 0;
    if (!active && raise) this.#raise(rule, 'physiological', priority);
    else if (active && clear) this.#clear(rule, 'physiological', priority);
  }

  #vitalSigns(t: number): VitalSigns {
    const p = this.#prng;
    const d = this.device;
    const v = trueVitals(d.patient, this.#patient, t, p, this.#vitals);
    const bias = d.biased ? -(3 + p.float()) : 0;
    const spo2 = clamp(Math.round(v.spo2 + 0.7 * p.normal() + bias), 70, 100);
    const hr = clamp(Math.round(v.hr + 2.5 * p.normal()), 35, 190);
    const rr = clamp(Math.round(v.rr + 1.0 * p.normal()), 6, 45);
    const temp = clamp(round1(v.temp + 0.08 * p.normal()), 34.5, 41.5);
    // Monitors take a full set every time; a wearable pairs with the cuff for most readings, not all.
    const cuff = d.kind === 'monitor' || p.chance(0.88);
    const sbp = cuff ? clamp(Math.round(v.sbp + 4 * p.normal()), 70, 230) : null;
    // The device alarms on what it measures (a biased sensor alarms more often).
    this.#limit(ALARM.spo2Low, spo2 < this.#spo2Limit, spo2 >= this.#spo2Limit + 2, spo2 < 85 ? 'high' : 'medium');
    this.#limit(ALARM.hrHigh, hr > this.#hrHighLimit, hr <= this.#hrHighLimit - 10, hr > 150 ? 'high' : 'medium');
    this.#limit(ALARM.hrLow, hr < 40, hr >= 45, 'high');
    this.#limit(ALARM.rrHigh, rr > 28, rr <= 25, 'medium');
    this.#limit(ALARM.rrLow, rr < 8, rr >= 10, 'high');
    this.#limit(ALARM.tempHigh, temp >= 39, temp <= 38.5, 'low');
    if (sbp !== null) this.#limit(ALARM.nibpLow, sbp < 90, sbp >= 95, 'medium');
    return {
      respiratory_rate: rr,
      spo2,
      on_oxygen: v.onOxygen,
      systolic_bp: sbp,
      pulse: hr,
      consciousness: v.consciousness,
      temperature_c: temp,
    };
  }

  #status(): DeviceStatus {
    const p = this.#prng;
    let state: DeviceStatus['state'] = 'ok';
    if (this.#reportOffline) {
      state = 'offline_buffered';
      this.#reportOffline = false;
    } else if (this.#signal < -105) state = 'degraded';
    else if (p.chance(0.004)) state = 'maintenance';
    else if (p.chance(0.001)) state = 'fault';
    return {
      state,
      battery_pct: Math.round(this.#battery),
      signal_dbm: Math.round(this.#signal),
      calibration_state: this.device.calibrationStale ? 'stale' : 'current',
      last_calibrated_at: this.#lastCalibratedAt,
    };
  }

  #configChange(): ConfigChange {
    const p = this.#prng;
    const changedBy = p.weighted(CONFIG_ACTORS);
    const which = p.int(0, 3);
    if (which === 0) {
      const old = this.#spo2Limit;
      this.#spo2Limit = p.pick([88, 90, 92].filter((x) => x !== old));
      return {
        parameter: 'spo2_low_limit',
        old_value: String(old),
        new_value: String(this.#spo2Limit),
        changed_by: changedBy,
      };
    }
    if (which === 1) {
      const old = this.#hrHighLimit;
      this.#hrHighLimit = p.pick([120, 130, 140].filter((x) => x !== old));
      return {
        parameter: 'hr_high_limit',
        old_value: String(old),
        new_value: String(this.#hrHighLimit),
        changed_by: changedBy,
      };
    }
    if (which === 2) {
      const old = this.#reportIntervalS;
      this.#reportIntervalS = p.pick([60, 120, 300].filter((x) => x !== old));
      // The schedule itself stays as simulated: only the record of the change matters here.
      return {
        parameter: 'report_interval_s',
        old_value: String(old),
        new_value: String(this.#reportIntervalS),
        changed_by: changedBy,
      };
    }
    return {
      parameter: 'alarm_volume',
      old_value: null,
      new_value: p.pick(['low', 'medium', 'high']),
      changed_by: changedBy,
    };
  }

  #envelope(
    type: EventType,
    observedAt: number,
    receivedAt: number,
    data: VitalSigns | DeviceStatus | Alarm | ConfigChange,
  ): Envelope {
    const p = this.#prng;
    const d = this.device;
    const payload = wrap(type, data);
    return {
      event_id: ulid(observedAt, p),
      device_id: d.id,
      patient_ref: d.patientRef,
      site_id: d.siteId,
      event_type: type,
      observed_at: observedAt,
      received_at: receivedAt,
      firmware_version: d.firmware,
      model_version: d.modelVersion,
      schema_version: schemaVersion,
      integrity_hash: payloadIntegrityHash(type, data),
      consent_context: d.consent,
      processing_policy: d.policy,
      payload,
      sequence: this.#seq,
      nonce: p.hex(16),
      device_cert_fingerprint: d.certFingerprint,
      key_id: d.keyId,
      device_batch: d.batch,
      patient_subgroup: d.subgroup,
      transformation_version: null,
      parent_event_ids: [],
      signed_event: null,
      gateway_id: null,
    };
  }
}

/** wrapPayload with literal keys: one object shape per branch keeps this hot path monomorphic. */
function wrap(type: EventType, data: VitalSigns | DeviceStatus | Alarm | ConfigChange): Payload {
  switch (type) {
    case 'vital_signs':
      return { 'vigil.telemetry.payload.VitalSigns': data as VitalSigns };
    case 'device_status':
      return { 'vigil.telemetry.payload.DeviceStatus': data as DeviceStatus };
    case 'alarm':
      return { 'vigil.telemetry.payload.Alarm': data as Alarm };
    case 'config_change':
      return { 'vigil.telemetry.payload.ConfigChange': data as ConfigChange };
  }
}

let scratch = Buffer.allocUnsafe(512);
let payloadTypes: ReturnType<typeof envelopeSchema>['payloadTypes'] | null = null;
const schemaVersion = envelopeSchema().schemaVersion;

/**
 * The integrity hash the simulator puts on an envelope: `sha256:` + hex sha256 of the Avro binary of the payload
 * record alone (no union branch index), as the device would sign it.
 */
export function payloadIntegrityHash(type: EventType, data: VitalSigns | DeviceStatus | Alarm | ConfigChange): string {
  payloadTypes ??= envelopeSchema().payloadTypes;
  const recordType = payloadTypes[type];
  let end = recordType.encode(data, scratch, 0);
  if (end < 0) {
    // encode returns minus the missing byte count when the buffer is too small.
    scratch = Buffer.allocUnsafe((scratch.length - end) * 2);
    end = recordType.encode(data, scratch, 0);
  }
  return `sha256:${sha256Hex(scratch.subarray(0, end))}`;
}
