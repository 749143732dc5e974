/**
 * NDJSON envelopes: one JSON object per line, the envelope's snake_case field names, timestamps as epoch
 * milliseconds or ISO-8601 strings, `payload` a plain object (no Avro union wrapping: its record is the one the
 * event_type names), optional fields allowed to be absent (their schema defaults apply).
 *
 * Parsing is strict about shape and silent about meaning: a line that is not a JSON object is JSON_PARSE_FAILED;
 * anything that does not fit the newest envelope schema (wrong types, missing required fields, undeclared fields,
 * unknown enum symbols, a payload that does not fit its event_type, a timestamp that does not parse) or goes beyond
 * what the envelope can carry (adapters/avro/limits.ts: string sizes, lone surrogates and NUL, integers beyond their
 * int or long, times outside 1970..2299) is ENVELOPE_INVALID with a detail naming the field path, never its value.
 * Well-typed but absurd values (SpO2 140, 1e400 read as Infinity) pass: judging them is `validate`'s job. A JSON `-0`
 * reads as 0 (Avro cannot carry it in an int or long, so both formats give the same envelope).
 *
 * A rejected line keeps only its claims (runtime/claims.ts): the few envelope fields a dead letter cites, cut down to
 * what every store holds; never the whole parsed object, which may be anything.
 */
import { isUtf8 } from 'node:buffer';
import type avro from 'avsc';
import { claimsOf } from '../../runtime/claims.ts';
import type { ReasonCode } from '../../runtime/errors.ts';
import { type Envelope, type EventType, PAYLOAD_RECORD, payloadOf } from '../../schemas/types.ts';
import { envelopeLimits } from '../avro/limits.ts';
import { envelopeSchema } from './envelope-schema.ts';
import { coerceTimestamp, formatIsoTimestamp } from './timestamps.ts';

export type ParsedLine =
  | { readonly ok: true; readonly envelope: Envelope }
  | {
      readonly ok: false;
      readonly code: Extract<ReasonCode, 'JSON_PARSE_FAILED' | 'ENVELOPE_INVALID'>;
      readonly detail: string;
      /**
       * The claimed fields of the parsed JSON object when there was one, in storable form (runtime/claims.ts), so a
       * dead letter can cite its claimed device id without carrying a hostile value.
       */
      readonly claims: Record<string, string | number | null> | null;
    };

const FULL_NAMES = new Set<string>(Object.values(PAYLOAD_RECORD));
const SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** A field name fit for a detail: names from the schema pass; names taken from the data only when identifier-like. */
function fieldName(name: string): string {
  return SAFE_NAME.test(name) ? name : '<non-identifier field name>';
}

/** An avsc error path as a readable field path: union branch names dropped, array indexes in brackets. */
function formatPath(path: readonly string[]): string {
  let out = '';
  for (const segment of path) {
    if (FULL_NAMES.has(segment)) continue;
    if (/^\d+$/.test(segment)) out += `[${segment}]`;
    else out += out === '' ? fieldName(segment) : `.${fieldName(segment)}`;
  }
  return out || '(envelope)';
}

class Invalid {
  constructor(readonly detail: string) {}
}

/** Parses one line (without its terminator) into an envelope of the newest schema. */
export function parseEnvelopeLine(line: Buffer | string): ParsedLine {
  let text: string;
  if (typeof line === 'string') text = line;
  else {
    if (!isUtf8(line)) return { ok: false, code: 'JSON_PARSE_FAILED', detail: 'line is not valid UTF-8', claims: null };
    text = line.toString('utf8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, code: 'JSON_PARSE_FAILED', detail: 'line is not valid JSON', claims: null };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return { ok: false, code: 'JSON_PARSE_FAILED', detail: 'line is JSON but not an object', claims: null };
  }
  return parseEnvelopeObject(json as Record<string, unknown>);
}

/**
 * An already-parsed JSON object (the gateway's stamped payload) into an envelope of the newest schema: the checks of
 * parseEnvelopeLine after its JSON.parse, without a stringify/parse round trip.
 */
export function parseEnvelopeObject(parsed: Record<string, unknown>): ParsedLine {
  try {
    return { ok: true, envelope: plainToEnvelope(parsed) };
  } catch (error) {
    if (error instanceof Invalid) {
      return { ok: false, code: 'ENVELOPE_INVALID', detail: error.detail, claims: claimsOf(parsed) };
    }
    throw error;
  }
}

/**
 * Converts a plain-JSON envelope to the Avro value form (timestamps coerced, defaults filled, payload wrapped) and
 * checks it against the newest envelope schema. Throws `Invalid` naming the first offending field path.
 */
function plainToEnvelope(plain: Record<string, unknown>): Envelope {
  const { type, payloadTypes, timestampFields } = envelopeSchema();
  const value = fillRecord(plain, type, timestampFields.get(type.name ?? '') ?? new Set(), '');
  const eventType = value.event_type;
  if (typeof eventType !== 'string' || !Object.hasOwn(PAYLOAD_RECORD, eventType)) {
    throw new Invalid('event_type: expected one of the EventType symbols');
  }
  const payload = value.payload;
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new Invalid(`payload: expected an object (a ${eventType} payload record)`);
  }
  const branch = payloadTypes[eventType as EventType];
  const fullName = PAYLOAD_RECORD[eventType as EventType];
  value.payload = {
    [fullName]: fillRecord(
      payload as Record<string, unknown>,
      branch,
      timestampFields.get(fullName) ?? new Set(),
      'payload.',
    ),
  };
  if (type.isValid(value, { noUndeclaredFields: true })) {
    const problem = envelopeLimits()(value);
    if (problem !== null) throw new Invalid(problem);
    return value as unknown as Envelope;
  }
  // Slow path, only for invalid lines: find the first offending path.
  let problem: string | null = null;
  type.isValid(value, {
    noUndeclaredFields: true,
    errorHook: (path: string[], _value: unknown, at: avro.Type) => {
      if (problem !== null) return;
      problem = `${formatPath(path)}: expected ${describe(at)}`;
    },
  });
  throw new Invalid(problem ?? '(envelope): does not match the envelope schema');
}

/** How to fill one record type's fields (computed once per type). */
interface FieldPlan {
  readonly name: string;
  /** null when the field has no default (required). */
  readonly fallback: (() => unknown) | null;
}

const plans = new WeakMap<avro.types.RecordType, { fields: FieldPlan[]; names: Set<string> }>();

function planOf(type: avro.types.RecordType): { fields: FieldPlan[]; names: Set<string> } {
  let plan = plans.get(type);
  if (!plan) {
    const fields = type.fields.map((field) => ({
      name: field.name,
      fallback: field.defaultValue() === undefined ? null : () => field.defaultValue(),
    }));
    plan = { fields, names: new Set(fields.map((f) => f.name)) };
    plans.set(type, plan);
  }
  return plan;
}

/**
 * Copies a record's declared fields in schema order: absent ones get their default (or stay missing when they have
 * none), timestamps are coerced, undeclared ones are refused.
 */
function fillRecord(
  plain: Record<string, unknown>,
  type: avro.types.RecordType,
  timestamps: ReadonlySet<string>,
  prefix: string,
): Record<string, unknown> {
  const plan = planOf(type);
  for (const key in plain) {
    if (Object.hasOwn(plain, key) && !plan.names.has(key))
      throw new Invalid(`${prefix}${fieldName(key)}: undeclared field`);
  }
  const out: Record<string, unknown> = {};
  for (const field of plan.fields) {
    let v = plain[field.name];
    if (v === undefined) {
      if (field.fallback === null) throw new Invalid(`${prefix}${field.name}: required field missing`);
      v = field.fallback();
    } else if (timestamps.size > 0 && timestamps.has(field.name) && v !== null) {
      const ms = coerceTimestamp(v);
      if (ms === undefined) {
        throw new Invalid(`${prefix}${field.name}: expected epoch milliseconds (an integer) or an ISO-8601 date-time`);
      }
      v = ms;
    }
    out[field.name] = v === 0 ? 0 : v; // -0 is 0
  }
  return out;
}

function describe(type: avro.Type): string {
  const t = type as avro.Type & { types?: avro.Type[]; symbols?: string[]; name?: string };
  switch (type.typeName) {
    case 'union:unwrapped':
    case 'union:wrapped':
      return (t.types ?? []).map(describe).join(' or ');
    case 'enum':
      return `one of the ${shortName(t.name)} symbols`;
    case 'record':
    case 'error':
      return `an object (${shortName(t.name)})`;
    case 'array':
      return 'an array';
    case 'map':
      return 'an object (map)';
    case 'int':
      return 'int (32-bit integer)';
    case 'long':
      return 'long (integer)';
    default:
      return type.typeName;
  }
}

function shortName(name: string | undefined): string {
  return (name ?? '').split('.').pop() || 'record';
}

export interface NdjsonWriteOptions {
  /** How timestamps are written: epoch milliseconds (default) or ISO-8601 UTC strings. */
  readonly timestamps?: 'epoch' | 'iso';
}

/** The plain-JSON form of an envelope (payload unwrapped), fields in schema order. */
export function envelopeToPlain(envelope: Envelope, options: NdjsonWriteOptions = {}): Record<string, unknown> {
  const iso = options.timestamps === 'iso';
  const { type, timestampFields } = envelopeSchema();
  const out: Record<string, unknown> = {};
  const source = envelope as unknown as Record<string, unknown>;
  const topTimestamps = timestampFields.get(type.name ?? '') ?? new Set<string>();
  for (const field of type.fields) {
    let v = source[field.name];
    if (field.name === 'payload') {
      const payload = payloadOf(envelope.payload);
      if (!payload) throw new Error('envelope payload holds no known record');
      const stamps = timestampFields.get(PAYLOAD_RECORD[payload.type]) ?? new Set<string>();
      const data: Record<string, unknown> = { ...(payload.data as unknown as Record<string, unknown>) };
      if (iso)
        for (const name of stamps) if (typeof data[name] === 'number') data[name] = formatIsoTimestamp(data[name]);
      v = data;
    } else if (iso && topTimestamps.has(field.name) && typeof v === 'number') {
      v = formatIsoTimestamp(v);
    }
    out[field.name] = v;
  }
  return out;
}

/** One NDJSON line (without the newline). */
export function envelopeToNdjson(envelope: Envelope, options: NdjsonWriteOptions = {}): string {
  return JSON.stringify(envelopeToPlain(envelope, options));
}
