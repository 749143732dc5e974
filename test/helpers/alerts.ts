/**
 * Builders for the alerts pipeline's inputs in tests: what the vitals pipeline puts on the clinical inference and
 * normalised topics, made from envelopes without a model or a broker (the NEWS2 chart's plain implementation stands in
 * for the ONNX model, which tests check against it at every boundary), and alert actions as `vigil alerts` writes them.
 */
import { createHash } from 'node:crypto';
import { actionFor } from '../../cli/commands/alerts.ts';
import { toNormalisedEvent } from '../../pipelines/outputs.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import type { InFlight, Origin } from '../../runtime/record.ts';
import type { AlertAction } from '../../schemas/generated/alert-action.ts';
import type { ClinicalAlert } from '../../schemas/generated/clinical-alert.ts';
import type { Envelope, Inference, NormalisedEvent } from '../../schemas/types.ts';
import { chartInference, NORMALISED_BY } from '../../simulator/alert-inputs.ts';

export type Rollout = Inference['rollout'];

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The inference `score` would make of a complete vital-signs envelope (null when NEWS2 does not apply). */
export function inferenceOf(
  e: Envelope,
  rollout: Rollout = 'live',
  model = 'news2',
  version = '1.0.0',
): Inference | null {
  return chartInference(e, {
    inferenceId: `inf-${sha(`${e.event_id}|${model}|${version}|${rollout}`).slice(0, 32)}`,
    rollout,
    model,
    version,
    runtime: 'reference-chart',
  });
}

/** The normalised record of an envelope, as the vitals pipeline writes it. */
export function normalisedOf(e: Envelope, at: { partition: number; offset: number }): NormalisedEvent {
  return toNormalisedEvent(
    { value: { envelope: e, flags: [] }, origin: origin(TOPICS.raw, at.partition, at.offset, e.received_at) },
    e.received_at + 100,
    NORMALISED_BY,
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

/** An action on an alert, as `vigil alerts ack|escalate` writes it (a deterministic id). */
export function actionOn(
  alert: ClinicalAlert,
  action: 'ack' | 'escalate',
  at: number,
  principal = 'staff-psn-0001',
): AlertAction {
  return actionFor(alert, action, principal, null, at, `act-${sha(`${alert.alert_id}|${action}|${at}`).slice(0, 26)}`);
}
