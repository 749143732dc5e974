/**
 * Turns a batch outcome into what the sinks write: the pipeline's record outputs, plus the outputs every pipeline has
 * whether it asks or not — dead letters, duplicates and the raw plane. Pure: given the outcome and a processing time,
 * the result is always the same.
 */
import { hash } from 'node:crypto';
import type { DeadLetter, Duplicate } from '../schemas/types.ts';
import { claimedLong, claimedText } from './claims.ts';
import type { BatchOutcome, BatchRange, StagedDuplicate, StagedRejection } from './engine.ts';
import type { OutputValue, PipelineDefinition } from './pipeline.ts';
import type { Origin } from './record.ts';

export interface EmittedOutput {
  readonly name: string;
  readonly topic: string;
  readonly schema: string;
  readonly table: string;
  readonly values: readonly OutputValue[];
  /** The output's declared event time, when its latency is measured (see `RecordOutput.eventTime`). */
  readonly eventTime?: (value: Readonly<Record<string, unknown>>) => number | null;
}

export interface EmittedBatch {
  readonly range: BatchRange;
  /** The pipeline's own outputs (record outputs, then side outputs), in declaration order. */
  readonly outputs: readonly EmittedOutput[];
  readonly deadLetters: readonly OutputValue[];
  readonly duplicates: readonly OutputValue[];
  /** Every consumed record, for the raw plane, with the ids decoding learnt (null when it did not decode). */
  readonly raw: readonly RawSeen[];
}

export interface RawSeen extends RawEvidence {
  readonly origin: Origin;
  readonly eventId: string | null;
  readonly deviceId: string | null;
}

/** The gateway's evidence a decoded envelope carried (null when absent): the raw plane keeps it (0007_gateway.sql). */
export interface RawEvidence {
  readonly signedEvent?: string | null;
  readonly gatewayId?: string | null;
  readonly deviceCertFingerprint?: string | null;
  readonly keyId?: string | null;
  readonly integrityHash?: string | null;
}

const NOTHING_KNOWN: Omit<RawSeen, 'origin'> = {
  eventId: null,
  deviceId: null,
  signedEvent: null,
  gatewayId: null,
  deviceCertFingerprint: null,
  keyId: null,
  integrityHash: null,
};

/** The outputs every pipeline has, and where they go. */
export const STANDARD_OUTPUTS = {
  deadLetters: { name: 'dead-letters', schema: 'dead-letter', table: 'dead_letters' },
  duplicates: { name: 'duplicates', schema: 'duplicate', table: 'duplicates' },
  raw: { name: 'raw', schema: 'envelope', table: 'raw_events' },
} as const;

export function materialise<O>(
  definition: PipelineDefinition<unknown, O>,
  outcome: BatchOutcome<O>,
  processedAt: number,
): EmittedBatch {
  const outputs: EmittedOutput[] = [];
  for (const output of definition.outputs.records) {
    const values: OutputValue[] = [];
    for (const record of outcome.completed) {
      const selected = output.select(record, processedAt);
      if (selected === null) continue;
      if (isMany(selected)) values.push(...selected);
      else values.push(selected);
    }
    outputs.push({
      name: output.name,
      topic: output.topic,
      schema: output.schema,
      table: output.table,
      values,
      ...(output.eventTime ? { eventTime: output.eventTime } : {}),
    });
  }
  for (const [name, sink] of Object.entries(definition.outputs.side)) {
    const rows = outcome.side[name] ?? [];
    outputs.push({
      name,
      topic: sink.topic,
      schema: sink.schema,
      table: sink.table,
      values: rows.map((row) => ({ key: sink.key(row as never), value: row as Record<string, unknown> })),
    });
  }
  return {
    range: outcome.range,
    outputs,
    deadLetters: outcome.rejected.map((r) => {
      const value = deadLetterOf(definition.name, r, processedAt);
      return {
        key: r.record.origin.key ?? value.claimed_device_id ?? '',
        value: value as unknown as Record<string, unknown>,
      };
    }),
    duplicates: outcome.duplicates.map((d) => {
      const value = duplicateOf(definition.name, d, processedAt);
      return { key: value.device_id, value: value as unknown as Record<string, unknown> };
    }),
    raw: rawSeen(outcome),
  };
}

function isMany(selected: OutputValue | readonly OutputValue[]): selected is readonly OutputValue[] {
  return Array.isArray(selected);
}

/** Each consumed record with the event and device ids (and gateway evidence) its decoded value carried, in offset order. */
function rawSeen(outcome: BatchOutcome<unknown>): RawSeen[] {
  // The decoded value of each offset that has one; each consumed record then becomes one object of one shape.
  const values = new Map<number, unknown>();
  for (const r of outcome.completed) values.set(r.origin.offset, r.value);
  for (const r of outcome.rejected) values.set(r.record.origin.offset, r.record.value);
  for (const d of outcome.duplicates) values.set(d.record.origin.offset, d.record.value);
  const origins = outcome.origins;
  const out = new Array<RawSeen>(origins.length);
  for (let i = 0; i < origins.length; i++) {
    const origin = origins[i]!;
    out[i] = values.has(origin.offset) ? seenOf(origin, values.get(origin.offset)) : { origin, ...NOTHING_KNOWN };
  }
  return out;
}

function seenOf(origin: Origin, value: unknown): RawSeen {
  const outer = claimed(value);
  const env = 'envelope' in outer ? claimed(outer.envelope) : outer;
  return {
    origin,
    eventId: str(env.event_id),
    deviceId: str(env.device_id),
    signedEvent: str(env.signed_event),
    gatewayId: str(env.gateway_id),
    deviceCertFingerprint: str(env.device_cert_fingerprint),
    keyId: str(env.key_id),
    integrityHash: str(env.integrity_hash),
  };
}

/** Fields of an envelope-shaped value, read defensively: a rejected record may be anything. */
function claimed(value: unknown): Partial<Record<string, unknown>> {
  return value !== null && typeof value === 'object' && !Buffer.isBuffer(value)
    ? (value as Record<string, unknown>)
    : {};
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

/** Deterministic id of a record's fate at a stage: the same record failing the same way always gets the same id. */
function fateId(prefix: string, origin: Origin, stage: string): string {
  return `${prefix}-${hash('sha256', `${origin.topic}\0${origin.partition}\0${origin.offset}\0${stage}`, 'hex').slice(0, 32)}`;
}

/**
 * A rejection -> its dead letter. The fields the record *claimed* (ids, firmware, sequence, nonce, key id) are cut
 * down to what every store holds (runtime/claims.ts): a record is often rejected because its values are hostile, and
 * its dead letter must still be storable. The raw bytes and their sha256 are kept exactly: they are the evidence.
 */
export function deadLetterOf(pipeline: string, rejection: StagedRejection, failedAt: number): DeadLetter {
  const { origin } = rejection.record;
  // A checked event carries its envelope one level down; a decoded envelope is the value itself.
  const outer = claimed(rejection.record.value);
  const env = 'envelope' in outer ? claimed(outer.envelope) : outer;
  const id = fateId('dl', origin, rejection.stage);
  return {
    dead_letter_id: id,
    failed_at: failedAt,
    pipeline,
    stage: rejection.stage,
    operator: rejection.operator,
    reason_code: rejection.code,
    reason_detail: rejection.detail,
    source_topic: origin.topic,
    source_partition: origin.partition,
    source_offset: origin.offset,
    raw_sha256: origin.rawSha256,
    raw_bytes: origin.raw,
    original_headers: origin.headers.map((h) => ({ key: h.key, value: h.value })),
    event_id: claimedText(env.event_id),
    claimed_device_id: claimedText(env.device_id) ?? claimedText(origin.key),
    firmware_version: claimedText(env.firmware_version),
    sequence: claimedLong(env.sequence),
    nonce: claimedText(env.nonce),
    key_id: claimedText(env.key_id),
    device_cert_fingerprint: claimedText(env.device_cert_fingerprint),
    trace_id: id.slice(3),
  };
}

export function duplicateOf(pipeline: string, notice: StagedDuplicate, detectedAt: number): Duplicate {
  const { origin } = notice.record;
  const outer = claimed(notice.record.value);
  const env = 'envelope' in outer ? claimed(outer.envelope) : outer;
  return {
    pipeline,
    event_id: claimedText(env.event_id) ?? '',
    device_id: claimedText(env.device_id) ?? claimedText(origin.key) ?? '',
    site_id: claimedText(env.site_id) ?? '',
    sequence: claimedLong(env.sequence),
    kind: notice.kind,
    first_seen: notice.firstSeen,
    source_topic: origin.topic,
    source_partition: origin.partition,
    source_offset: origin.offset,
    raw_sha256: origin.rawSha256,
    detected_at: detectedAt,
  };
}
