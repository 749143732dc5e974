/**
 * The clinical alert rules as pure functions: what one input record says about each rule's condition for its patient.
 * No state here (./machine.ts decides what a condition means for an open alert) and no clock.
 *
 * | rule                          | kind                      | reads                                     | active when (band)                              | clears when                    |
 * |-------------------------------|---------------------------|-------------------------------------------|-------------------------------------------------|--------------------------------|
 * | `news2.response`              | physiological             | clinical inferences of the NEWS2 model    | aggregate >= 7 (high), 5-6 (medium), else a 3 in one parameter (low_medium) | band low |
 * | `model.risk` (per model)      | physiological             | clinical inferences of the listed models  | the inference's risk_band above low (its band)  | risk_band low                  |
 * | `device.alarm` (per code)     | device_alarm / technical  | alarm events                              | raised, priority >= minPriority (its priority)  | cleared                        |
 * | `technical.sensor_off`        | technical                 | device_status events                      | state fault (medium)                            | any other state                |
 * | `technical.battery_critical`  | technical                 | device_status events                      | battery_pct <= belowPct (medium)                | battery_pct >= recoveredPct    |
 * | `technical.calibration_stale` | technical                 | device_status events                      | calibration_state stale (low)                   | calibration_state current      |
 *
 * NEWS2 is one rule, not three: the chart gives each observation set one clinical response, the highest band it
 * reaches (Royal College of Physicians, 2017), so a patient at 7 with a red parameter has one emergency alert, not an
 * emergency and a low-medium one.
 *
 * Only CLINICAL inferences are read (`isClinical`): the routing decision the inference carries (inference v2: a live
 * version outside a canary's cohort, or the canary inside it, which is live for its cohort) or, on a v1 record that
 * carries none, `rollout === 'live'`. A shadow inference is never clinical: it never touches state. `model.risk` keys
 * its alert by model name (the state scope), not by version, so a patient moved between a canary and the live version
 * (a rollback) keeps one alert.
 */
import type { AlertAction } from '../../schemas/generated/alert-action.ts';
import type { Inference, NormalisedEvent, Payload } from '../../schemas/types.ts';
import { payloadOf } from '../../schemas/types.ts';
import type { Band, RaiseAlertsConfig } from './config.ts';

export const RULE_IDS = {
  news2: 'news2.response',
  risk: 'model.risk',
  deviceAlarm: 'device.alarm',
  sensorOff: 'technical.sensor_off',
  batteryCritical: 'technical.battery_critical',
  calibrationStale: 'technical.calibration_stale',
} as const;
export type RuleId = (typeof RULE_IDS)[keyof typeof RULE_IDS];
export type AlertKind = 'physiological' | 'technical' | 'device_alarm';

/** What a multi-source alerts pipeline feeds the operator: inferences, normalised device events, alert actions. */
export type AlertInput = Inference | NormalisedEvent | AlertAction;

export type InputSource = 'inference' | 'device_event' | 'action';

/** Which source a record is, by shape (every source schema has its own id field), so any topic naming works. */
export function sourceOf(value: AlertInput): InputSource {
  if ('inference_id' in value) return 'inference';
  if ('action_id' in value) return 'action';
  return 'device_event';
}

/** active: the rule's condition holds, at `band`; clear: it no longer holds; hold: this record does not say. */
export type Condition = { readonly state: 'active'; readonly band: Band } | { readonly state: 'clear' | 'hold' };

export interface Evidence {
  readonly inferenceIds: readonly string[];
  readonly eventIds: readonly string[];
  readonly modelName: string | null;
  readonly modelVersion: string | null;
  readonly rollout: string | null;
  readonly score: number | null;
  readonly parameter: string | null;
  readonly alarmCode: string | null;
}

/** One rule's reading of one record. */
export interface Observation {
  readonly rule: RuleId;
  readonly version: string;
  readonly kind: AlertKind;
  /** Narrows the state key below (patient, rule): the alarm code for device.alarm, else ''. */
  readonly scope: string;
  readonly patientRef: string;
  readonly siteId: string;
  readonly deviceId: string;
  readonly condition: Condition;
  /** Event time: the record's observed_at. */
  readonly observedAt: number;
  /** The record's own id (inference_id or event_id): alert and record ids derive from it. */
  readonly triggerId: string;
  readonly evidence: Evidence;
}

/** Why a record raised nothing without touching any state. */
export type Skip = 'not_clinical' | 'other_model' | 'not_alerting';

/**
 * The routing decision an inference v2 carries (schemas/avro/inference/v2.avsc): absent on v1 records, null when the
 * producer did not route. Read structurally so v1 and v2 records are both accepted.
 */
interface Routed {
  readonly routing?: { readonly clinical: boolean } | null;
}

/**
 * Whether an inference may alert: its routing decision's `clinical` when it carries one (v2), else a v1 record's
 * `rollout === 'live'`. Shadow is never clinical; a canary is clinical inside its cohort (routing decides).
 */
export function isClinical(inf: Inference & Routed): boolean {
  const routing = inf.routing;
  if (routing !== undefined && routing !== null) return routing.clinical === true && inf.rollout !== 'shadow';
  return inf.rollout === 'live';
}

/** Evidence with nothing in it: a record that carries none spreads it and sets what it has. */
export const NO_EVIDENCE: Evidence = {
  inferenceIds: [],
  eventIds: [],
  modelName: null,
  modelVersion: null,
  rollout: null,
  score: null,
  parameter: null,
  alarmCode: null,
};

const PRIORITY_RANK = { low: 0, medium: 1, high: 2 } as const;

/** The NEWS2 response band of an aggregate score and its per-parameter scores, and the first parameter that scored 3. */
export function news2Band(score: number, subscores: readonly number[]): { band: Band; redParameter: number } {
  const redParameter = subscores.findIndex((s) => s >= 3);
  const band: Band = score >= 7 ? 'high' : score >= 5 ? 'medium' : redParameter >= 0 ? 'low_medium' : 'low';
  return { band, redParameter };
}

/** Every rule's observation of `value`, or why there is none. */
export function observe(value: Inference | NormalisedEvent, rules: RaiseAlertsConfig['rules']): Observation[] | Skip {
  if ('inference_id' in value) return observeInference(value, rules);
  return observeEvent(value, rules);
}

function observeInference(inf: Inference, rules: RaiseAlertsConfig['rules']): Observation[] | Skip {
  const { news2, risk } = rules;
  if (!news2 && !risk) return 'not_alerting';
  const isNews2 = news2 !== undefined && inf.model_name === news2.model;
  const isRisk = risk?.models.includes(inf.model_name) === true;
  if (!isNews2 && !isRisk) return 'other_model';
  // The one gate that keeps shadow models (and canaries outside their cohort) away from patients.
  if (!isClinical(inf)) return 'not_clinical';
  const base = {
    kind: 'physiological' as const,
    patientRef: inf.patient_ref,
    siteId: inf.site_id,
    deviceId: inf.device_id,
    observedAt: inf.observed_at,
    triggerId: inf.inference_id,
  };
  const evidence: Evidence = {
    ...NO_EVIDENCE,
    inferenceIds: [inf.inference_id],
    eventIds: [inf.event_id],
    modelName: inf.model_name,
    modelVersion: inf.model_version,
    rollout: inf.rollout,
    score: inf.score,
  };
  if (isNews2) {
    const { band, redParameter } = news2Band(inf.score, inf.subscores);
    return [
      {
        ...base,
        rule: RULE_IDS.news2,
        version: news2.version,
        scope: '',
        condition: band === 'low' ? { state: 'clear' } : { state: 'active', band },
        evidence: {
          ...evidence,
          parameter: redParameter >= 0 ? (inf.feature_names[redParameter] ?? null) : null,
        },
      },
    ];
  }
  // A probability model: its band is the one its manifest's thresholds gave the inference (score's riskBandOf).
  const band = inf.risk_band;
  return [
    {
      ...base,
      rule: RULE_IDS.risk,
      version: risk!.version,
      scope: inf.model_name,
      condition: band === 'low' ? { state: 'clear' } : { state: 'active', band },
      evidence,
    },
  ];
}

function observeEvent(e: NormalisedEvent, rules: RaiseAlertsConfig['rules']): Observation[] | Skip {
  const payload = payloadOf(e.payload as unknown as Payload);
  const base = {
    patientRef: e.patient_ref,
    siteId: e.site_id,
    deviceId: e.device_id,
    observedAt: e.observed_at,
    triggerId: e.event_id,
  };
  const evidence: Evidence = { ...NO_EVIDENCE, eventIds: [e.event_id] };
  if (payload?.type === 'alarm') {
    const rule = rules.deviceAlarm;
    if (!rule) return 'not_alerting';
    const alarm = payload.data;
    const condition: Condition = !alarm.active
      ? { state: 'clear' }
      : PRIORITY_RANK[alarm.priority] >= PRIORITY_RANK[rule.minPriority]
        ? { state: 'active', band: alarm.priority }
        : { state: 'hold' };
    return [
      {
        ...base,
        rule: RULE_IDS.deviceAlarm,
        version: rule.version,
        kind: alarm.category === 'technical' ? 'technical' : 'device_alarm',
        scope: alarm.alarm_code,
        condition,
        evidence: { ...evidence, alarmCode: alarm.alarm_code },
      },
    ];
  }
  if (payload?.type === 'device_status') {
    const status = payload.data;
    const out: Observation[] = [];
    const technical = { ...base, kind: 'technical' as const, scope: '', evidence };
    if (rules.sensorOff) {
      out.push({
        ...technical,
        rule: RULE_IDS.sensorOff,
        version: rules.sensorOff.version,
        condition: status.state === 'fault' ? { state: 'active', band: 'medium' } : { state: 'clear' },
      });
    }
    const battery = rules.batteryCritical;
    if (battery) {
      const pct = status.battery_pct;
      out.push({
        ...technical,
        rule: RULE_IDS.batteryCritical,
        version: battery.version,
        condition:
          pct === null
            ? { state: 'hold' }
            : pct <= battery.belowPct
              ? { state: 'active', band: 'medium' }
              : pct >= battery.recoveredPct
                ? { state: 'clear' }
                : { state: 'hold' },
      });
    }
    if (rules.calibrationStale) {
      const c = status.calibration_state;
      out.push({
        ...technical,
        rule: RULE_IDS.calibrationStale,
        version: rules.calibrationStale.version,
        condition:
          c === 'stale' ? { state: 'active', band: 'low' } : c === 'current' ? { state: 'clear' } : { state: 'hold' },
      });
    }
    return out.length > 0 ? out : 'not_alerting';
  }
  return 'not_alerting';
}

/** The state key of (rule, patient, scope): the same for an observation and for an action on its alert. */
export function stateKey(rule: string, patientRef: string, scope: string): string {
  return `${rule}\u0000${patientRef}\u0000${scope}`;
}
