/**
 * `simulateAlertScenario(options)`: a small, scripted ward for the clinical alerts path, beside the fleet (it changes
 * nothing in `simulateFleet`, its seeds or its truth). Each cohort follows a script whose alerts are known by
 * construction, so the truth does not depend on the code under test:
 *
 * | cohort          | script (minutes from the start)                                                        | expected alerts                                   |
 * |-----------------|----------------------------------------------------------------------------------------|---------------------------------------------------|
 * | `deteriorating` | NEWS2 0 until 60, 5 (medium) until 120, 8 (high) until 180, 5 until 240, then 2 (low)   | news2.response: opens medium, peaks high, resolves |
 * | `red-parameter` | respiratory rate 26 (a single 3, total 3) from 60 to 120                                | news2.response: opens low_medium, resolves         |
 * | `shadow-only`   | the deteriorating script, scored only by a shadow model                                | none (only live rollouts alert)                   |
 * | `alarms`        | SpO2-low (high) 60-90, pulse-high (medium) 100-130, battery-low technical (low) 150-200 | device.alarm: one per code, each resolved          |
 * | `device`        | calibration stale until 270; fault (sensor off) 60-90; battery 4% at 180, charged at 240 | technical: sensor_off, battery_critical, calibration_stale, each resolved |
 * | `stable`        | NEWS2 0 throughout                                                                     | none                                              |
 *
 * Every patient has one device reporting vital signs every 5 minutes and device status every 30. The deteriorating
 * cohort is also scored by a shadow candidate model: those inferences must raise nothing. Records come in observed_at
 * order (received 800 ms later); ids are deterministic (ULIDs whose random part is a counter).
 */
import { createHash } from 'node:crypto';
import { VigilError } from '../runtime/errors.ts';
import type { Alarm, DeviceStatus, Envelope, EventType, VitalSigns } from '../schemas/types.ts';
import { wrapPayload } from '../schemas/types.ts';
import { ulidTime } from './ulid.ts';

export type AlertCohort = 'deteriorating' | 'red-parameter' | 'shadow-only' | 'alarms' | 'device' | 'stable';
export type ScenarioRollout = 'live' | 'shadow';
export type ScenarioBand = 'low' | 'low_medium' | 'medium' | 'high';

export interface AlertScenarioOptions {
  /** Patients per cohort (default 2). */
  readonly perCohort?: number;
  /** Length of the run in minutes (default 360: every script ends resolved). */
  readonly minutes?: number;
  /** True time the run starts, epoch ms (default 2026-01-05T06:00:00Z, as the fleet). */
  readonly startTime?: number;
}

/** Every patient of the scripted ward is at this site (the fleet's sites are never it). */
export const ALERT_SCENARIO_SITE = 'site-alerts-01';

export const ALERT_SCENARIO_DEFAULTS = { perCohort: 2, minutes: 360, startTime: Date.UTC(2026, 0, 5, 6, 0, 0) };

export interface AlertScenarioRecord {
  readonly envelope: Envelope;
  readonly cohort: AlertCohort;
  /** Kafka key: the device id. */
  readonly key: string;
  /** For vital signs: the rollouts that score this record (an inference each); empty for other events. */
  readonly scoredBy: readonly ScenarioRollout[];
}

/** One alert the scripts must raise, known by construction. */
export interface ExpectedAlert {
  readonly rule: string;
  readonly patientRef: string;
  readonly cohort: AlertCohort;
  /** The alarm code, for device.alarm. */
  readonly scope: string;
  readonly openBand: ScenarioBand;
  readonly peakBand: ScenarioBand;
  /** Event time it opens and resolves (ms). */
  readonly openAt: number;
  readonly resolveAt: number;
}

/** The truth summary: alerts expected per rule and band (opening band and highest band reached). */
export interface AlertTruthSummary {
  readonly records: number;
  readonly vitals: number;
  readonly inferences: { readonly live: number; readonly shadow: number };
  readonly alarms: number;
  readonly statuses: number;
  readonly rules: Record<
    string,
    { alerts: number; opened: Record<string, number>; peak: Record<string, number>; resolved: number }
  >;
  /** Alerts shadow inferences must raise: always 0. */
  readonly fromShadow: 0;
}

const MIN = 60_000;
const COHORTS: readonly AlertCohort[] = ['deteriorating', 'red-parameter', 'shadow-only', 'alarms', 'device', 'stable'];

const BASE: VitalSigns = {
  respiratory_rate: 16,
  spo2: 97,
  on_oxygen: false,
  systolic_bp: 122,
  pulse: 72,
  consciousness: 'A',
  temperature_c: 36.8,
};
/** Scripted vital signs by their NEWS2 total (RCP 2017 chart, SpO2 scale 1). */
export const SCRIPTED_VITALS = {
  zero: BASE,
  two: { ...BASE, pulse: 115 },
  red: { ...BASE, respiratory_rate: 26 },
  five: { ...BASE, respiratory_rate: 22, spo2: 94, pulse: 105, temperature_c: 38.5 },
  eight: { ...BASE, respiratory_rate: 26, spo2: 91, pulse: 115 },
} as const satisfies Record<string, VitalSigns>;

function deterioratingVitals(minute: number): VitalSigns {
  if (minute < 60) return SCRIPTED_VITALS.zero;
  if (minute < 120) return SCRIPTED_VITALS.five;
  if (minute < 180) return SCRIPTED_VITALS.eight;
  if (minute < 240) return SCRIPTED_VITALS.five;
  return SCRIPTED_VITALS.two;
}

function vitalsOf(cohort: AlertCohort, minute: number): VitalSigns {
  if (cohort === 'deteriorating' || cohort === 'shadow-only') return deterioratingVitals(minute);
  if (cohort === 'red-parameter') return minute >= 60 && minute < 120 ? SCRIPTED_VITALS.red : SCRIPTED_VITALS.zero;
  return SCRIPTED_VITALS.zero;
}

const STATUS_OK: DeviceStatus = {
  state: 'ok',
  battery_pct: 80,
  signal_dbm: -62,
  calibration_state: 'current',
  last_calibrated_at: null,
};

function statusOf(cohort: AlertCohort, minute: number, start: number): DeviceStatus {
  if (cohort !== 'device') return { ...STATUS_OK, last_calibrated_at: start - 5 * 86_400_000 };
  const stale = minute < 270;
  return {
    state: minute >= 60 && minute < 90 ? 'fault' : 'ok',
    // Drains from 64% by 20 points an hour (14% at 150, 4% at 180), charged to 50% at 240.
    battery_pct: minute < 240 ? Math.max(0, 64 - Math.floor(minute / 3)) : 50,
    signal_dbm: -70,
    calibration_state: stale ? 'stale' : 'current',
    last_calibrated_at: stale ? start - 400 * 86_400_000 : start + 270 * MIN,
  };
}

const ALARMS: readonly {
  code: string;
  category: Alarm['category'];
  priority: Alarm['priority'];
  from: number;
  to: number;
}[] = [
  { code: 'PHY-SPO2-LOW', category: 'physiological', priority: 'high', from: 60, to: 90 },
  { code: 'PHY-PULSE-HIGH', category: 'physiological', priority: 'medium', from: 100, to: 130 },
  { code: 'TEC-BATT-LOW', category: 'technical', priority: 'low', from: 150, to: 200 },
];

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID's 16-character random part holding a counter instead (deterministic, unique per run). */
function crockford(n: number): string {
  let out = '';
  let rest = n;
  for (let i = 0; i < 16; i++) {
    out = CROCKFORD[rest % 32]! + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

interface Patient {
  readonly cohort: AlertCohort;
  readonly n: number;
  readonly patientRef: string;
  readonly deviceId: string;
  readonly siteId: string;
}

function patients(perCohort: number): Patient[] {
  return COHORTS.flatMap((cohort, c) =>
    Array.from({ length: perCohort }, (_, n) => ({
      cohort,
      n,
      patientRef: `psn-v1-${hex(`alert-scenario|${cohort}|${n}`).slice(0, 16)}`,
      deviceId: `hah-mon-9${String(c).padStart(2, '0')}${String(n).padStart(3, '0')}`,
      siteId: ALERT_SCENARIO_SITE,
    })),
  );
}

function resolve(options: AlertScenarioOptions): typeof ALERT_SCENARIO_DEFAULTS {
  const o = {
    ...ALERT_SCENARIO_DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  };
  if (!Number.isInteger(o.perCohort) || o.perCohort < 1 || o.perCohort > 10_000) {
    throw new VigilError('CONFIG_INVALID', 'alert scenario: perCohort must be an integer in 1..10000');
  }
  if (!Number.isInteger(o.minutes) || o.minutes < 5 || o.minutes > 7 * 24 * 60) {
    throw new VigilError('CONFIG_INVALID', 'alert scenario: minutes must be an integer in 5..10080');
  }
  return o;
}

/** The scenario's records, in observed_at order. Same options, same records. */
export function* simulateAlertScenario(options: AlertScenarioOptions = {}): Generator<AlertScenarioRecord> {
  const { perCohort, minutes, startTime } = resolve(options);
  const ward = patients(perCohort);
  const sequences = new Map<string, number>();
  let counter = 0;
  const make = (p: Patient, minute: number, type: EventType, data: VitalSigns | DeviceStatus | Alarm): Envelope => {
    const observedAt = startTime + minute * MIN;
    const sequence = (sequences.get(p.deviceId) ?? 0) + 1;
    sequences.set(p.deviceId, sequence);
    const id = counter++;
    return {
      event_id: `${ulidTime(observedAt)}${crockford(id)}`,
      device_id: p.deviceId,
      patient_ref: p.patientRef,
      site_id: p.siteId,
      event_type: type,
      observed_at: observedAt,
      received_at: observedAt + 800,
      firmware_version: '5.12.1',
      model_version: null,
      schema_version: 'telemetry-envelope-v2',
      integrity_hash: `sha256:${hex(`alert-scenario|${id}`)}`,
      consent_context: 'hah-care-v3',
      processing_policy: 'clinical-standard',
      payload: wrapPayload(type, data),
      sequence,
      nonce: hex(`nonce|${id}`).slice(0, 32),
      device_cert_fingerprint: `sha256:${hex(`cert|${p.deviceId}`)}`,
      key_id: `kid-${p.deviceId}`,
      device_batch: 'LOT-2025-11-B',
      patient_subgroup: 'age:65-79',
      transformation_version: null,
      parent_event_ids: [],
      signed_event: null,
      gateway_id: null,
    };
  };
  for (let minute = 0; minute <= minutes; minute++) {
    for (const p of ward) {
      const record = (type: EventType, data: VitalSigns | DeviceStatus | Alarm, scoredBy: ScenarioRollout[] = []) => ({
        envelope: make(p, minute, type, data),
        cohort: p.cohort,
        key: p.deviceId,
        scoredBy,
      });
      if (minute % 30 === 0) yield record('device_status', statusOf(p.cohort, minute, startTime));
      if (p.cohort === 'alarms') {
        for (const a of ALARMS) {
          if (minute === a.from || minute === a.to) {
            const active = minute === a.from;
            yield record('alarm', { alarm_code: a.code, category: a.category, priority: a.priority, active });
          }
        }
      }
      if (minute % 5 === 0) {
        const scoredBy: ScenarioRollout[] =
          p.cohort === 'shadow-only' ? ['shadow'] : p.cohort === 'deteriorating' ? ['live', 'shadow'] : ['live'];
        yield record('vital_signs', vitalsOf(p.cohort, minute), scoredBy);
      }
    }
  }
}

/** Every alert the scripts raise within `minutes` (an alert whose resolution falls after the run is still open). */
export function expectedAlerts(options: AlertScenarioOptions = {}): ExpectedAlert[] {
  const { perCohort, minutes, startTime } = resolve(options);
  const at = (minute: number) => startTime + minute * MIN;
  const out: ExpectedAlert[] = [];
  for (const p of patients(perCohort)) {
    const alert = (
      rule: string,
      scope: string,
      openBand: ScenarioBand,
      peakBand: ScenarioBand,
      from: number,
      to: number,
    ) => {
      if (from <= minutes) {
        out.push({
          rule,
          patientRef: p.patientRef,
          cohort: p.cohort,
          scope,
          openBand,
          peakBand,
          openAt: at(from),
          resolveAt: to <= minutes ? at(to) : Number.POSITIVE_INFINITY,
        });
      }
    };
    if (p.cohort === 'deteriorating')
      alert('news2.response', '', 'medium', minutes >= 120 ? 'high' : 'medium', 60, 240);
    if (p.cohort === 'red-parameter') alert('news2.response', '', 'low_medium', 'low_medium', 60, 120);
    if (p.cohort === 'alarms')
      for (const a of ALARMS) alert('device.alarm', a.code, a.priority, a.priority, a.from, a.to);
    if (p.cohort === 'device') {
      alert('technical.calibration_stale', '', 'low', 'low', 0, 270);
      alert('technical.sensor_off', '', 'medium', 'medium', 60, 90);
      alert('technical.battery_critical', '', 'medium', 'medium', 180, 240);
    }
  }
  return out;
}

/** The truth summary of a scenario: its records, and the alerts expected per rule and band. */
export function alertScenarioTruth(options: AlertScenarioOptions = {}): AlertTruthSummary {
  let records = 0;
  let vitals = 0;
  let alarms = 0;
  let statuses = 0;
  const inferences = { live: 0, shadow: 0 };
  for (const r of simulateAlertScenario(options)) {
    records++;
    if (r.envelope.event_type === 'vital_signs') vitals++;
    else if (r.envelope.event_type === 'alarm') alarms++;
    else if (r.envelope.event_type === 'device_status') statuses++;
    for (const rollout of r.scoredBy) inferences[rollout]++;
  }
  const rules: AlertTruthSummary['rules'] = {};
  const bump = (m: Record<string, number>, k: string) => {
    m[k] = (m[k] ?? 0) + 1;
  };
  for (const a of expectedAlerts(options)) {
    const rule = rules[a.rule] ?? { alerts: 0, opened: {}, peak: {}, resolved: 0 };
    rules[a.rule] = rule;
    rule.alerts++;
    bump(rule.opened, a.openBand);
    bump(rule.peak, a.peakBand);
    if (Number.isFinite(a.resolveAt)) rule.resolved++;
  }
  return { records, vitals, inferences, alarms, statuses, rules, fromShadow: 0 };
}
