/**
 * The scripted ward (./alerts.ts) as the alerts pipeline reads it: for each device event, the record the vitals
 * pipeline would put on the normalised topic, and for each vital sign the inference of every rollout that scores it
 * (live `news2@1.0.0`, and a shadow candidate `news2@1.1.0-rc1` for the cohorts it scores) on the clinical inference
 * topic, keyed by device. `npm start` feeds them to the alerts pipeline beside what the fleet's vitals run emitted.
 *
 * The scores are the NEWS2 chart itself (operators/score/news2-reference.ts, which the ONNX model is tested against
 * at every boundary): the scenario's alerts are known by construction, so its truth never depends on the model run.
 * These inferences say so: runtime `scenario-chart`, an all-zero artifact hash. Same options, same values.
 */
import { NEWS2_FEATURES, news2Features } from '../operators/score/features.ts';
import { news2Reference, RISK_BANDS } from '../operators/score/news2-reference.ts';
import { toNormalisedEvent } from '../pipelines/outputs.ts';
import { type Envelope, type Inference, type NormalisedEvent, payloadOf } from '../schemas/types.ts';
import { type AlertScenarioOptions, type ScenarioRollout, simulateAlertScenario } from './alerts.ts';

export const SCENARIO_MODEL = { name: 'news2', live: '1.0.0', shadow: '1.1.0-rc1' } as const;
/** What the scenario's records stand in for: the vitals pipeline's normalise step. */
export const NORMALISED_BY = 'vitals@1/validate/dedupe';
const ZERO = '0'.repeat(64);

/** One value for a topic of the alerts pipeline: `kind` names which (the caller maps it to its topic). */
export interface ScenarioInput {
  readonly kind: 'normalised' | 'inference';
  readonly key: string;
  readonly value: NormalisedEvent | Inference;
}

/** The scenario's inputs in observed_at order: each device event's normalised record, then its inferences. */
export function* alertScenarioInputs(options: AlertScenarioOptions = {}): Generator<ScenarioInput> {
  let offset = 0;
  for (const r of simulateAlertScenario(options)) {
    const e = r.envelope;
    const origin = {
      topic: 'scenario',
      partition: 0,
      offset: offset++,
      consumedAt: e.received_at,
      rawSha256: ZERO,
      raw: Buffer.alloc(0),
      headers: [],
      key: r.key,
    };
    yield {
      kind: 'normalised',
      key: r.key,
      value: toNormalisedEvent({ value: { envelope: e, flags: [] }, origin }, e.received_at + 100, NORMALISED_BY),
    };
    for (const rollout of r.scoredBy) {
      const inference = scenarioInference(e, rollout);
      if (inference) yield { kind: 'inference', key: r.key, value: inference };
    }
  }
}

function scenarioInference(e: Envelope, rollout: ScenarioRollout): Inference | null {
  return chartInference(e, {
    inferenceId: `inf-${e.event_id}-${rollout}`,
    rollout,
    model: SCENARIO_MODEL.name,
    version: SCENARIO_MODEL[rollout],
    runtime: 'scenario-chart',
  });
}

/** Who an inference made by the NEWS2 chart says made it. */
export interface ChartInferenceOptions {
  readonly inferenceId: string;
  readonly rollout: Inference['rollout'];
  readonly model: string;
  readonly version: string;
  /** The `runtime` the inference names (not a model runtime: the chart, e.g. `scenario-chart`). */
  readonly runtime: string;
}

/**
 * The inference `score` would make of a complete vital-signs envelope, scored by the NEWS2 chart itself (null when
 * NEWS2 does not apply): all-zero artifact, config and feature-vector hashes, scored 50 ms after receipt.
 *
 * @example
 * const inference = chartInference(envelope, { inferenceId: 'inf-1', rollout: 'live', model: 'news2', version: '1.0.0', runtime: 'reference-chart' });
 */
export function chartInference(e: Envelope, o: ChartInferenceOptions): Inference | null {
  const p = payloadOf(e.payload);
  if (p?.type !== 'vital_signs') return null;
  const features = news2Features(p.data);
  if (features === null) return null;
  const { score, subscores, band } = news2Reference(features);
  return {
    inference_id: o.inferenceId,
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
    model_name: o.model,
    model_version: o.version,
    model_artifact_sha256: ZERO,
    runtime: o.runtime,
    runtime_version: '0',
    config_hash: ZERO,
    rollout: o.rollout,
    feature_names: [...NEWS2_FEATURES],
    features,
    feature_vector_hash: ZERO,
    score,
    subscores,
    risk_band: RISK_BANDS[band] as Inference['risk_band'],
    transformation_version: `vitals@1/score/${o.model}@${o.version}`,
    // Scenario inferences are not routed by a registry: no routing decision (inference-v1's reading, by rollout).
    rollout_id: null,
    routing: null,
  };
}
