/**
 * Builders for the alerts pipeline's inputs in tests: what the vitals pipeline puts on the clinical inference and
 * normalised topics, made from envelopes without a model or a broker (the NEWS2 chart's plain implementation stands in
 * for the ONNX model, which tests check against it at every boundary), and alert actions as `vigil alerts` writes them.
 */
import { createHash } from 'node:crypto';
import { NEWS2_FEATURES, news2Features } from '../../operators/score/features.ts';
import { news2Reference, RISK_BANDS } from '../../operators/score/news2-reference.ts';
import { toNormalisedEvent } from '../../pipelines/outputs.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import type { InFlight, Origin } from '../../runtime/record.ts';
import type { AlertAction } from '../../schemas/generated/alert-action.ts';
import type { ClinicalAlert } from '../../schemas/generated/clinical-alert.ts';
import { type Envelope, type Inference, type NormalisedEvent, payloadOf } from '../../schemas/types.ts';

export type Rollout = Inference['rollout'];

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The inference `score` would make of a complete vital-signs envelope (null when NEWS2 does not apply). */
export function inferenceOf(
  e: Envelope,
  rollout: Rollout = 'live',
  model = 'news2',
  version = '1.0.0',
): Inference | null {
  const p = payloadOf(e.payload);
  if (p?.type !== 'vital_signs') return null;
  const features = news2Features(p.data);
  if (features === null) return null;
  const { score, subscores, band } = news2Reference(features);
  return {
    inference_id: `inf-${sha(`${e.event_id}|${model}|${version}|${rollout}`).slice(0, 32)}`,
    event_id: e.event_id,
    parent_event_ids: [],
    device_id: e.device_id,
    patient_ref: e.patient_ref,
    site_id: e.site_id,
    firmware_version: e.firmware_version,
    device_batch: e.device_batch,
    patient_subgroup: e.patient_subgroup,
    observed_at: e.observed_at,
    scored_at: e.received_at + 50,
    model_name: model,
    model_version: version,
    model_artifact_sha256: '0'.repeat(64),
    runtime: 'reference-chart',
    runtime_version: '0',
    config_hash: '0'.repeat(64),
    rollout,
    feature_names: [...NEWS2_FEATURES],
    features,
    feature_vector_hash: '0'.repeat(64),
    score,
    subscores,
    risk_band: RISK_BANDS[band]!,
    transformation_version: `vitals@1/score/${model}@${version}`,
  };
}

/** The normalised record of an envelope, as the vitals pipeline writes it. */
export function normalisedOf(e: Envelope, at: { partition: number; offset: number }): NormalisedEvent {
  return toNormalisedEvent(
    { value: { envelope: e, flags: [] }, origin: origin(TOPICS.raw, at.partition, at.offset, e.received_at) },
    e.received_at + 100,
    'vitals@1/validate/dedupe',
  );
}

export function origin(topic: string, partition: number, offset: number, consumedAt: number): Origin {
  return {
    topic,
    partition,
    offset,
    consumedAt,
    rawSha256: '0'.repeat(64),
    raw: Buffer.alloc(0),
    headers: [],
    key: null,
  };
}

/** A record as the alerts pipeline consumes it from `topic` (consumed 200 ms after the device's received_at). */
export function consumed<T>(value: T, topic: string, offset: number, at: number, partition = 0): InFlight<T> {
  return { value, origin: origin(topic, partition, offset, at) };
}

/** An action on an alert, as `vigil alerts ack|escalate` writes it. */
export function actionOn(
  alert: ClinicalAlert,
  action: 'ack' | 'escalate',
  at: number,
  principal = 'staff-psn-0001',
): AlertAction {
  return {
    action_id: `act-${sha(`${alert.alert_id}|${action}|${at}`).slice(0, 26)}`,
    alert_id: alert.alert_id,
    patient_ref: alert.patient_ref,
    device_id: alert.device_id,
    rule_id: alert.rule_id,
    alarm_code: alert.alarm_code,
    action,
    principal,
    reason: null,
    at,
  };
}
