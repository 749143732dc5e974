/**
 * Outputs shared by envelope pipelines: the normalised plane (every event that completed the chain) and the clinical
 * plane (every inference), each with its topic, schema and table, and each table's knowledge in one place here: its
 * row type, insert columns (`rows.columns`: checked against the migrated table by `npm run check`,
 * scripts/check-tables.ts) and mapper, registered with the ClickHouse adapter's tables (`registerTable`) so the sinks
 * map these records by table name in both modes and the embedded store keeps its compact insert path for them. Each
 * record is a child of the raw one: it names the raw bytes' hash and log position, and the transformation that
 * produced it; nothing in the raw plane is ever overwritten.
 */
import {
  columnsOf,
  type DateTime64String,
  type FloatValue,
  optionalDateTime64,
  optionalFloat,
  registerTable,
  toDateTime64,
  toFloat,
} from '../adapters/clickhouse/tables.ts';
import type { CheckedEvent, ScoredEvent } from '../operators/types.ts';
import { TOPICS } from '../runtime/endpoints.ts';
import type { RecordOutput, SideOutputSink } from '../runtime/pipeline.ts';
import type { InFlight } from '../runtime/record.ts';
import { type DriftHistogram, type Inference, type NormalisedEvent, payloadOf } from '../schemas/types.ts';

export function toNormalisedEvent(
  record: InFlight<CheckedEvent>,
  processedAt: number,
  transformation: string,
): NormalisedEvent {
  const { envelope: e, flags } = record.value;
  const { origin } = record;
  // Field by field rather than `{ ...envelope }`: one fixed object shape, which V8 builds and the Avro writer reads
  // with fast property access (the spread of a ~20-field decoded record cost ~8 µs per record in the worker profile).
  // The envelope's fields are a subset of the normalised record's (the type checks each one).
  return {
    event_id: e.event_id,
    device_id: e.device_id,
    patient_ref: e.patient_ref,
    site_id: e.site_id,
    event_type: e.event_type,
    observed_at: e.observed_at,
    received_at: e.received_at,
    firmware_version: e.firmware_version,
    model_version: e.model_version,
    schema_version: e.schema_version,
    integrity_hash: e.integrity_hash,
    consent_context: e.consent_context,
    processing_policy: e.processing_policy,
    payload: e.payload,
    sequence: e.sequence,
    nonce: e.nonce,
    device_cert_fingerprint: e.device_cert_fingerprint,
    key_id: e.key_id,
    device_batch: e.device_batch,
    patient_subgroup: e.patient_subgroup,
    parent_event_ids: e.parent_event_ids,
    transformation_version: transformation,
    provenance_flags: [...flags],
    source_topic: origin.topic,
    source_partition: origin.partition,
    source_offset: origin.offset,
    raw_sha256: origin.rawSha256,
    processed_at: processedAt,
  };
}

/** Every completed event, to the normalised topic and `normalised_events`. */
export function normalisedOutput(transformation: string): RecordOutput<CheckedEvent> {
  return {
    name: 'normalised',
    topic: TOPICS.normalised,
    schema: 'normalised',
    table: 'normalised_events',
    // Row mapping: normalisedEventRow, registered for the table below (the sink maps by table name, so no `row` here).
    rows: { columns: NORMALISED_EVENT_COLUMNS },
    select: (record, processedAt) => ({
      key: record.value.envelope.device_id,
      value: toNormalisedEvent(record, processedAt, transformation) as unknown as Record<string, unknown>,
    }),
  };
}

/** Every inference of every event (each model, each routed version: live, canary, shadow), to the clinical inference topic and `inferences`. */
export function inferenceOutput(): RecordOutput<ScoredEvent> {
  return {
    name: 'inferences',
    topic: TOPICS.inferences,
    schema: 'inference',
    table: 'inferences',
    // Row mapping: inferenceRow, registered for the table below.
    rows: { columns: INFERENCE_COLUMNS },
    select: (record) => {
      const { inferences } = record.value;
      if (inferences.length === 0) return null;
      if (inferences.length === 1) {
        const only = inferences[0]!;
        return { key: only.device_id, value: only as unknown as Record<string, unknown> };
      }
      return inferences.map((i) => ({ key: i.device_id, value: i as unknown as Record<string, unknown> }));
    },
  };
}

/** Drift partial histograms: keyed by (model version, site) so one group's partials share a partition downstream. */
export const driftHistogramSink: SideOutputSink<DriftHistogram> = {
  topic: TOPICS.driftHistograms,
  schema: 'drift-histogram',
  table: 'drift_histograms',
  // Each histogram is its row.
  rows: {
    columns: [
      'pipeline',
      'model_name',
      'model_version',
      'site_id',
      'firmware_version',
      'window_start',
      'window_end',
      'feature',
      'bin_counts',
      'n',
      'missing',
      'out_of_range',
      'source_topic',
      'source_partition',
      'first_offset',
      'last_offset',
    ],
  },
  key: (row) => `${row.model_name}@${row.model_version}/${row.site_id}`,
};

// --- the normalised and inference tables (infra/clickhouse/migrations/*.sql) ---------------------------------------

/** A row of `normalised_events`, as sent (see adapters/clickhouse/tables.ts for the value conventions). */
export interface NormalisedEventRow {
  event_id: string;
  device_id: string;
  patient_ref: string;
  site_id: string;
  event_type: string;
  observed_at: DateTime64String;
  received_at: DateTime64String;
  firmware_version: string;
  model_version: string | null;
  schema_version: string;
  integrity_hash: string;
  consent_context: string;
  processing_policy: string;
  sequence: number | null;
  nonce: string | null;
  device_cert_fingerprint: string | null;
  key_id: string | null;
  device_batch: string | null;
  patient_subgroup: string | null;
  parent_event_ids: string[];
  provenance_flags: string[];
  respiratory_rate: FloatValue | null;
  spo2: number | null;
  on_oxygen: boolean | null;
  systolic_bp: number | null;
  pulse: number | null;
  consciousness: string | null;
  temperature_c: FloatValue | null;
  device_state: string | null;
  battery_pct: number | null;
  signal_dbm: number | null;
  calibration_state: string | null;
  last_calibrated_at: DateTime64String | null;
  alarm_code: string | null;
  alarm_category: string | null;
  alarm_priority: string | null;
  alarm_active: boolean | null;
  config_parameter: string | null;
  config_old_value: string | null;
  config_new_value: string | null;
  config_changed_by: string | null;
  source_topic: string;
  source_partition: number;
  source_offset: number;
  raw_sha256: string;
  transformation_version: string;
  processed_at: DateTime64String;
}

/** A row of `inferences`, as sent. */
export interface InferenceRow {
  inference_id: string;
  event_id: string;
  parent_event_ids: string[];
  device_id: string;
  patient_ref: string;
  site_id: string;
  firmware_version: string;
  device_batch: string | null;
  patient_subgroup: string | null;
  observed_at: DateTime64String;
  scored_at: DateTime64String;
  model_name: string;
  model_version: string;
  model_artifact_sha256: string;
  runtime: string;
  runtime_version: string;
  config_hash: string;
  rollout: string;
  feature_names: string[];
  features: FloatValue[];
  feature_vector_hash: string;
  score: FloatValue;
  subscores: FloatValue[];
  risk_band: string;
  transformation_version: string;
  /** The rollout record that routed the version (null: the pipeline's default). Migration 0013. */
  rollout_id: string | null;
  /** `registry` or `pipeline` (also for inference-v1 records, which carry no routing: they ran by the pipeline's config). */
  routing_source: string;
  cohort_bucket: number | null;
  in_canary: boolean;
  /** Whether the output is clinical (may alert); inference-v1 records: every rollout but shadow. */
  clinical: boolean;
}

// The two tables join the adapter's typed tables (TABLE_COLUMNS, ROW_MAPPERS, ClickHouseStore.insert).
declare module '../adapters/clickhouse/tables.ts' {
  interface TableRows {
    normalised_events: NormalisedEventRow;
    inferences: InferenceRow;
  }
  interface TableSources {
    normalised_events: NormalisedEvent;
    inferences: Inference;
  }
}

/** The insert columns of `normalised_events`, in row-type order. */
export const NORMALISED_EVENT_COLUMNS = columnsOf<NormalisedEventRow>()({
  event_id: true,
  device_id: true,
  patient_ref: true,
  site_id: true,
  event_type: true,
  observed_at: true,
  received_at: true,
  firmware_version: true,
  model_version: true,
  schema_version: true,
  integrity_hash: true,
  consent_context: true,
  processing_policy: true,
  sequence: true,
  nonce: true,
  device_cert_fingerprint: true,
  key_id: true,
  device_batch: true,
  patient_subgroup: true,
  parent_event_ids: true,
  provenance_flags: true,
  respiratory_rate: true,
  spo2: true,
  on_oxygen: true,
  systolic_bp: true,
  pulse: true,
  consciousness: true,
  temperature_c: true,
  device_state: true,
  battery_pct: true,
  signal_dbm: true,
  calibration_state: true,
  last_calibrated_at: true,
  alarm_code: true,
  alarm_category: true,
  alarm_priority: true,
  alarm_active: true,
  config_parameter: true,
  config_old_value: true,
  config_new_value: true,
  config_changed_by: true,
  source_topic: true,
  source_partition: true,
  source_offset: true,
  raw_sha256: true,
  transformation_version: true,
  processed_at: true,
});

/** The insert columns of `inferences`, in row-type order. */
export const INFERENCE_COLUMNS = columnsOf<InferenceRow>()({
  inference_id: true,
  event_id: true,
  parent_event_ids: true,
  device_id: true,
  patient_ref: true,
  site_id: true,
  firmware_version: true,
  device_batch: true,
  patient_subgroup: true,
  observed_at: true,
  scored_at: true,
  model_name: true,
  model_version: true,
  model_artifact_sha256: true,
  runtime: true,
  runtime_version: true,
  config_hash: true,
  rollout: true,
  feature_names: true,
  features: true,
  feature_vector_hash: true,
  score: true,
  subscores: true,
  risk_band: true,
  transformation_version: true,
  rollout_id: true,
  routing_source: true,
  cohort_bucket: true,
  in_canary: true,
  clinical: true,
});

/** A normalised event -> `normalised_events` (the payload union flattened into its type's columns). */
export function normalisedEventRow(event: NormalisedEvent): NormalisedEventRow {
  const payload = payloadOf(event.payload);
  const vitals = payload?.type === 'vital_signs' ? payload.data : null;
  const status = payload?.type === 'device_status' ? payload.data : null;
  const alarm = payload?.type === 'alarm' ? payload.data : null;
  const config = payload?.type === 'config_change' ? payload.data : null;
  return {
    event_id: event.event_id,
    device_id: event.device_id,
    patient_ref: event.patient_ref,
    site_id: event.site_id,
    event_type: event.event_type,
    observed_at: toDateTime64(event.observed_at, 'observed_at'),
    received_at: toDateTime64(event.received_at, 'received_at'),
    firmware_version: event.firmware_version,
    model_version: event.model_version ?? null,
    schema_version: event.schema_version,
    integrity_hash: event.integrity_hash,
    consent_context: event.consent_context,
    processing_policy: event.processing_policy,
    sequence: event.sequence ?? null,
    nonce: event.nonce ?? null,
    device_cert_fingerprint: event.device_cert_fingerprint ?? null,
    key_id: event.key_id ?? null,
    device_batch: event.device_batch ?? null,
    patient_subgroup: event.patient_subgroup ?? null,
    parent_event_ids: event.parent_event_ids ?? [],
    provenance_flags: event.provenance_flags ?? [],
    respiratory_rate: optionalFloat(vitals?.respiratory_rate),
    spo2: vitals?.spo2 ?? null,
    on_oxygen: vitals?.on_oxygen ?? null,
    systolic_bp: vitals?.systolic_bp ?? null,
    pulse: vitals?.pulse ?? null,
    consciousness: vitals?.consciousness ?? null,
    temperature_c: optionalFloat(vitals?.temperature_c),
    device_state: status?.state ?? null,
    battery_pct: status?.battery_pct ?? null,
    signal_dbm: status?.signal_dbm ?? null,
    calibration_state: status?.calibration_state ?? null,
    last_calibrated_at: optionalDateTime64(status?.last_calibrated_at),
    alarm_code: alarm?.alarm_code ?? null,
    alarm_category: alarm?.category ?? null,
    alarm_priority: alarm?.priority ?? null,
    alarm_active: alarm ? alarm.active : null,
    config_parameter: config?.parameter ?? null,
    config_old_value: config?.old_value ?? null,
    config_new_value: config?.new_value ?? null,
    config_changed_by: config?.changed_by ?? null,
    source_topic: event.source_topic,
    source_partition: event.source_partition,
    source_offset: event.source_offset,
    raw_sha256: event.raw_sha256,
    transformation_version: event.transformation_version,
    processed_at: toDateTime64(event.processed_at, 'processed_at'),
  };
}

/** An inference -> `inferences`. */
export function inferenceRow(inference: Inference): InferenceRow {
  const routing = inference.routing ?? null;
  return {
    inference_id: inference.inference_id,
    event_id: inference.event_id,
    parent_event_ids: inference.parent_event_ids ?? [],
    device_id: inference.device_id,
    patient_ref: inference.patient_ref,
    site_id: inference.site_id,
    firmware_version: inference.firmware_version,
    device_batch: inference.device_batch ?? null,
    patient_subgroup: inference.patient_subgroup ?? null,
    observed_at: toDateTime64(inference.observed_at, 'observed_at'),
    scored_at: toDateTime64(inference.scored_at, 'scored_at'),
    model_name: inference.model_name,
    model_version: inference.model_version,
    model_artifact_sha256: inference.model_artifact_sha256,
    runtime: inference.runtime,
    runtime_version: inference.runtime_version,
    config_hash: inference.config_hash,
    rollout: inference.rollout,
    feature_names: inference.feature_names,
    features: inference.features.map(toFloat),
    feature_vector_hash: inference.feature_vector_hash,
    score: toFloat(inference.score),
    subscores: inference.subscores.map(toFloat),
    risk_band: inference.risk_band,
    transformation_version: inference.transformation_version,
    rollout_id: inference.rollout_id ?? null,
    routing_source: routing?.source ?? 'pipeline',
    cohort_bucket: routing?.cohort_bucket ?? null,
    in_canary: routing?.in_canary ?? false,
    clinical: routing?.clinical ?? inference.rollout !== 'shadow',
  };
}

registerTable('normalised_events', NORMALISED_EVENT_COLUMNS, normalisedEventRow);
registerTable('inferences', INFERENCE_COLUMNS, inferenceRow);
