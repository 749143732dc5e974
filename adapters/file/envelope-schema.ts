/**
 * The newest telemetry envelope as an avsc Type, and the facts about it the file sources and the simulator need:
 * the payload branch types by event_type, and which fields are `timestamp-millis` (NDJSON accepts them as epoch
 * milliseconds or ISO-8601 strings).
 *
 * The Type is adapters/avro's reader (the newest schemas/avro/envelope/v<N>.avsc, hardened against hostile array
 * counts), so file sources read exactly what the Kafka decoder reads.
 */
import type avro from 'avsc';
import { type EventType, PAYLOAD_RECORD } from '../../schemas/types.ts';
import { loadSchemaRepo } from '../avro/schemas.ts';

type JsonSchema = string | JsonSchema[] | { [key: string]: unknown };

export interface EnvelopeSchemaInfo {
  /** The envelope record type (unions of records wrapped, nullable unions not: avsc `wrapUnions: 'auto'`). */
  readonly type: avro.types.RecordType;
  /** `telemetry-envelope-v<N>`: what schema_version says on envelopes written with this schema. */
  readonly schemaVersion: string;
  /** The payload record type for each event_type. */
  readonly payloadTypes: Readonly<Record<EventType, avro.types.RecordType>>;
  /** Field names holding timestamp-millis values, per record full name (envelope and payload records). */
  readonly timestampFields: ReadonlyMap<string, ReadonlySet<string>>;
}

let cached: EnvelopeSchemaInfo | null = null;

/** The newest envelope's Type and derived facts (built once per process). */
export function envelopeSchema(): EnvelopeSchemaInfo {
  if (cached) return cached;
  const newest = loadSchemaRepo().get('envelope').newest;
  const type = newest.type as avro.types.RecordType;
  const payloadField = type.field('payload');
  if (!payloadField) throw new Error('envelope schema has no payload field');
  const union = payloadField.type as avro.types.WrappedUnionType;
  const byName = new Map<string, avro.types.RecordType>();
  for (const branch of union.types) byName.set(branch.name ?? '', branch as avro.types.RecordType);
  const payloadTypes = {} as Record<EventType, avro.types.RecordType>;
  for (const [eventType, fullName] of Object.entries(PAYLOAD_RECORD) as [EventType, string][]) {
    const branch = byName.get(fullName);
    if (!branch) throw new Error(`envelope schema has no payload branch ${fullName}`);
    payloadTypes[eventType] = branch;
  }
  const timestampFields = new Map<string, Set<string>>();
  collectTimestampFields(newest.schema as JsonSchema, '', timestampFields);
  const doc = String((newest.schema as { doc?: unknown }).doc ?? '');
  const schemaVersion = /^(telemetry-envelope-v\d+)/.exec(doc)?.[1] ?? `telemetry-envelope-v${newest.version}`;
  cached = { type, schemaVersion, payloadTypes, timestampFields };
  return cached;
}

function isTimestampMillis(schema: JsonSchema): boolean {
  if (Array.isArray(schema)) return schema.some(isTimestampMillis);
  return typeof schema === 'object' && schema.type === 'long' && schema.logicalType === 'timestamp-millis';
}

function collectTimestampFields(schema: JsonSchema, namespace: string, out: Map<string, Set<string>>): void {
  if (Array.isArray(schema)) {
    for (const branch of schema) collectTimestampFields(branch, namespace, out);
    return;
  }
  if (typeof schema !== 'object') return;
  if (schema.type === 'record') {
    const name = String(schema.name);
    const ns = typeof schema.namespace === 'string' ? schema.namespace : namespace;
    const fullName = name.includes('.') || ns === '' ? name : `${ns}.${name}`;
    const fields = new Set<string>();
    for (const field of schema.fields as { name: string; type: JsonSchema }[]) {
      if (isTimestampMillis(field.type)) fields.add(field.name);
      collectTimestampFields(field.type, ns, out);
    }
    out.set(fullName, fields);
  } else if (schema.type === 'array') {
    collectTimestampFields(schema.items as JsonSchema, namespace, out);
  } else if (schema.type === 'map') {
    collectTimestampFields(schema.values as JsonSchema, namespace, out);
  }
}
