/**
 * The clinical alerts pipeline: model inferences (the clinical inference topic), validated device events (the
 * normalised topic: alarms and device status) and people's actions on alerts (ack / escalate) -> raise-alerts -> the
 * clinical alerts topic and `clinical_alerts`. A path of its own: clinical alerts never go through the operational
 * (Prometheus) alert manager.
 *
 * Only CLINICAL inferences alert: those whose routing decision (inference v2) says clinical — the live version
 * outside a canary's cohort, the canary inside it (it is live for its cohort) — or, on a v1 record without routing,
 * those whose rollout is live. A shadow inference never alerts. Every alert names the model, version and rollout of
 * the inference it rests on.
 *
 * The rules are declared here, with their versions (copied onto every alert as rule_version: bump a rule's version
 * when its thresholds change, and this pipeline's VERSION when the chain does):
 * - news2.response v1 (physiological): the NEWS2 chart's response band of each clinical inference of `news2`: >= 7
 *   high (emergency), 5-6 medium (urgent), a 3 in any single parameter low_medium.
 * - model.risk v1 (physiological), per probability model listed (`deterioration`): the inference's risk_band (its
 *   manifest's thresholds); low raises nothing and resolves an open alert.
 * - device.alarm v1 (device_alarm, or technical for technical-category alarms): a device's own alarm, per code, at
 *   its priority (every priority alerts).
 * - technical.sensor_off / battery_critical (<= 5%, cleared at >= 10%) / calibration_stale v1 (technical), from
 *   device status, kept apart from the physiological rules by rule id and kind.
 * Timing: a repeat within 15 minutes of the last notification is suppressed (counted); unacknowledged alerts escalate
 * once, 15 minutes after opening (or rising) at high, 30 at medium, 60 at low_medium, 4 hours at low.
 *
 * The three sources are co-partitioned: keyed by device id with the same partition count, so partition p's alert
 * state sees every record of its patients (runtime/pipeline.ts). One record output: a record raises at most one
 * transition per rule, each a message on the clinical alerts topic and a row of `clinical_alerts` (an append-only
 * plane: infra/clickhouse/migrations/0006_clinical_alerts.sql; its columns are declared below and checked against the
 * migration by `npm run check`).
 *
 *   vigil run pipelines/alerts.ts     a worker (distributed)
 *   vigil sink pipelines/alerts.ts    its ClickHouse sink
 */
import { type AlertEvaluation, raiseAlerts } from '../operators/raise-alerts/index.ts';
import { TOPICS } from '../runtime/endpoints.ts';
import { definePipeline, type RecordOutput, type SourceSpec } from '../runtime/pipeline.ts';
import type { AlertAction } from '../schemas/generated/alert-action.ts';
import type { Inference, NormalisedEvent } from '../schemas/types.ts';

const NAME = 'alerts';
/**
 * Bump when the chain's behaviour changes: it is part of every alert's transformation_version. 2: inferences alert by
 * their routing decision (a canary in its cohort alerts) and model.risk reads probability models.
 */
const VERSION = '2';

/** Where `vigil alerts ack|escalate` writes and this pipeline reads people's actions. */
export const ALERT_ACTIONS_TOPIC = TOPICS.alertActions;
export const ALERTS_TABLE = 'clinical_alerts';

/** The columns of `clinical_alerts`: the clinical-alert record's fields, each as it is (the value is the row). */
const ALERT_COLUMNS = [
  'record_id',
  'alert_id',
  'patient_ref',
  'site_id',
  'device_id',
  'rule_id',
  'rule_version',
  'kind',
  'band',
  'transition',
  'opened_at',
  'observed_at',
  'received_at',
  'raised_at',
  'suppressed',
  'inference_ids',
  'event_ids',
  'model_name',
  'model_version',
  'rollout',
  'score',
  'parameter',
  'alarm_code',
  'action_id',
  'principal',
  'transformation_version',
] as const;

export const inferences: SourceSpec<Inference> = { topic: TOPICS.inferences, schema: 'inference' };
export const events: SourceSpec<NormalisedEvent> = { topic: TOPICS.normalised, schema: 'normalised' };
export const actions: SourceSpec<AlertAction> = { topic: ALERT_ACTIONS_TOPIC, schema: 'alert-action' };

/** The rules this pipeline raises, as raise-alerts declares them. */
export const RULES = {
  news2: { version: '1', model: 'news2' },
  risk: { version: '1', models: ['deterioration'] },
  deviceAlarm: { version: '1', minPriority: 'low' },
  sensorOff: { version: '1' },
  batteryCritical: { version: '1', belowPct: 5, recoveredPct: 10 },
  calibrationStale: { version: '1' },
} as const;

export const TIMING = {
  suppressWindowMs: 15 * 60_000,
  escalateAfterMs: { low: 4 * 3_600_000, low_medium: 60 * 60_000, medium: 30 * 60_000, high: 15 * 60_000 },
} as const;

/**
 * Every alert transition a record raised (one per rule at most), to the clinical alerts topic keyed by device (actions
 * follow the same key) and to `clinical_alerts`, in rule order.
 */
export const alertOutput: RecordOutput<AlertEvaluation> = {
  name: 'alerts',
  topic: TOPICS.clinicalAlerts,
  schema: 'clinical-alert',
  table: ALERTS_TABLE,
  rows: { columns: ALERT_COLUMNS },
  select: (record) =>
    record.value.alerts.map((alert) => ({ key: alert.device_id, value: alert as unknown as Record<string, unknown> })),
  // The latency that matters clinically: from the device's observation (and from receipt) to the committed alert.
  eventTime: (value) => value.observed_at as number,
};

export default definePipeline({ name: NAME, version: VERSION, sources: [inferences, events, actions] })
  .pipe(raiseAlerts({ rules: RULES, ...TIMING }))
  .outputs({ records: [alertOutput], side: {} });
