/**
 * Outputs shared by envelope pipelines: the normalised plane (every event that completed the chain) and the clinical
 * plane (every inference), each with its topic, schema and table (`rows.columns`: checked against the migrated table by
 * `npm run check`, scripts/check-tables.ts). Each is a child record of the raw one: it names the raw bytes' hash and log position, and
 * the transformation that produced it; nothing in the raw plane is ever overwritten.
 */
import { TABLE_COLUMNS } from '../adapters/clickhouse/tables.ts';
import type { CheckedEvent, ScoredEvent } from '../operators/types.ts';
import { TOPICS } from '../runtime/endpoints.ts';
import type { RecordOutput, SideOutputSink } from '../runtime/pipeline.ts';
import type { InFlight } from '../runtime/record.ts';
import type { DriftHistogram, NormalisedEvent } from '../schemas/types.ts';

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
    // Row mapping: adapters/clickhouse/tables.ts normalisedEventRow (its chdb fast path and conformance suite use it).
    rows: { columns: TABLE_COLUMNS.normalised_events },
    select: (record, processedAt) => ({
      key: record.value.envelope.device_id,
      value: toNormalisedEvent(record, processedAt, transformation) as unknown as Record<string, unknown>,
    }),
  };
}

/** Every inference, to the clinical inference topic and `inferences`. */
export function inferenceOutput(): RecordOutput<ScoredEvent> {
  return {
    name: 'inferences',
    topic: TOPICS.inferences,
    schema: 'inference',
    table: 'inferences',
    // Row mapping: adapters/clickhouse/tables.ts inferenceRow.
    rows: { columns: TABLE_COLUMNS.inferences },
    select: (record) => {
      const { inference } = record.value;
      return inference ? { key: inference.device_id, value: inference as unknown as Record<string, unknown> } : null;
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
