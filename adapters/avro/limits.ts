/**
 * What an envelope can carry: the limits a decoded value must keep, beyond its Avro shape, so that every record that
 * leaves decoding can be stored as it is, in every plane, by every sink.
 *
 * Avro (and JSON) say a field is a string, an int, a long; they do not say how long, how clean or how far. So a
 * record can be schema-valid and still unstorable or silently altered on the way: a 5 MB device id, a NUL or a lone
 * UTF-16 surrogate (which no UTF-8 store can hold as it is), an "int" whose varint carries 40 bits (avsc reads ints
 * and longs alike), a timestamp before 1970 or past what DateTime64(3) holds, an enum "symbol" such as `constructor`
 * that avsc's own check takes for a symbol (its symbol index is a plain object). Each is a class of hostile value; this
 * module is where every one is refused, for every decoder at once (NDJSON lines, Avro container files, Confluent
 * frames from Kafka): the decoders call the same check after their own, and the record becomes a dead letter
 * (ENVELOPE_INVALID) with a detail naming the field and the bound, never the value.
 *
 * The check is compiled once per schema (a tree of small closures) and walks only the schema's own fields, so its cost
 * per record is a few comparisons per field plus one scan per string, and a value nested deeper than the schema is
 * never walked. Not here: whether a value is plausible (SpO2 140, NaN, a clock decades off) — that is `validate`'s
 * judgement; doubles are carried as they are (NaN and infinities included: Float64 holds them).
 */
import type avsc from 'avsc';
import { isCleanText } from '../../runtime/claims.ts';
import { loadSchemaRepo } from './schemas.ts';

/** Longest string of a field without its own entry in STRING_LIMITS, in UTF-16 code units. */
export const DEFAULT_STRING_LIMIT = 256;

/**
 * Per-field string caps (UTF-16 code units), by field name. Wide enough for every legitimate value (a ULID is 26, a
 * `sha256:<hex>` 71), far below what would strain a row or a batch.
 */
export const STRING_LIMITS: Readonly<Record<string, number>> = {
  event_id: 64,
  parent_event_ids: 64,
  schema_version: 64,
  integrity_hash: 128,
  device_cert_fingerprint: 128,
  alarm_code: 64,
  old_value: 4096,
  new_value: 4096,
  /** The device's JWS as the gateway received it: up to the gateway's per-event cap (gateway maxEventBytes, 64 KiB). */
  signed_event: 65_536,
  gateway_id: 128,
};

/**
 * Most items one array may hold, and entries one map. Generous (a derived record may cite a great many parents): the
 * input's own size limits bound an array long before this; the cap bounds the work one record may cost here.
 */
export const MAX_ARRAY_ITEMS = 1_000_000;
export const MAX_MAP_ENTRIES = 1_000_000;

/** Most bytes one `bytes` or `fixed` value may hold. */
export const MAX_BYTES = 64 * 1024;

/**
 * The times a `timestamp-millis` field may hold: from the epoch to the end of 2299, the last instant ClickHouse's
 * DateTime64(3) holds (adapters/clickhouse/tables.ts DATETIME64_MAX_MS; a test keeps the two equal). Before the epoch
 * is no device's time and is where stores start to disagree (DateTime64 begins in 1900, DateTime in 1970).
 */
export const MIN_TIMESTAMP_MS = 0;
export const MAX_TIMESTAMP_MS = Date.UTC(2299, 11, 31, 23, 59, 59, 999);

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

/** A compiled check: null when the value keeps every limit, else a detail naming the field path and the bound. */
export type LimitCheck = (value: unknown) => string | null;
/**
 * `path` null: the value is only judged (no path is built, the detail is not used); compileLimits asks again with a path
 * for the detail when a value fails, so valid records (nearly all) build no path strings.
 */
type Check = (value: unknown, path: string | null) => string | null;

type JsonSchema = string | JsonSchema[] | { readonly [key: string]: unknown };

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);
const ok: Check = () => null;

/** The JavaScript form of a branch of an unwrapped union, to pick the branch a value belongs to. */
function jsKind(schema: JsonSchema, named: Map<string, JsonSchema>): string {
  const type = typeof schema === 'string' ? schema : Array.isArray(schema) ? 'union' : String(schema.type);
  switch (type) {
    case 'null':
      return 'null';
    case 'boolean':
      return 'boolean';
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return 'number';
    case 'string':
    case 'enum':
      return 'string';
    case 'bytes':
    case 'fixed':
      return 'buffer';
    case 'array':
      return 'array';
    case 'record':
    case 'error':
    case 'map':
      return 'object';
    default: {
      const target = named.get(type);
      return target === undefined ? 'unknown' : jsKind(target, named);
    }
  }
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Buffer.isBuffer(value)) return 'buffer';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function fullName(name: string, namespace: string): string {
  return name.includes('.') || namespace === '' ? name : `${namespace}.${name}`;
}

function stringCheck(limit: number): Check {
  return (value, path) => {
    if (typeof value !== 'string') return null;
    if (value.length > limit) return `${path}: longer than ${limit} characters`;
    if (!isCleanText(value)) return `${path}: not clean Unicode text (a lone surrogate or NUL)`;
    return null;
  };
}

const intCheck: Check = (value, path) =>
  typeof value === 'number' && !(Number.isInteger(value) && value >= INT_MIN && value <= INT_MAX)
    ? `${path}: outside the int range (32-bit, ${INT_MIN} to ${INT_MAX})`
    : null;

const longCheck: Check = (value, path) =>
  typeof value === 'number' && !Number.isSafeInteger(value)
    ? `${path}: not an integer within the exact long range (±(2^53 - 1))`
    : null;

const timestampCheck: Check = (value, path) =>
  typeof value === 'number' && !(Number.isSafeInteger(value) && value >= MIN_TIMESTAMP_MS && value <= MAX_TIMESTAMP_MS)
    ? `${path}: outside the storable time range 1970-01-01T00:00:00.000Z to 2299-12-31T23:59:59.999Z`
    : null;

const bytesCheck: Check = (value, path) =>
  Buffer.isBuffer(value) && value.length > MAX_BYTES ? `${path}: longer than ${MAX_BYTES} bytes` : null;

class Compiler {
  readonly named = new Map<string, JsonSchema>();
  readonly compiled = new Map<string, Check>();

  compile(schema: JsonSchema, namespace: string, fieldName: string): Check {
    if (typeof schema === 'string') {
      if (PRIMITIVES.has(schema)) return this.compile({ type: schema }, namespace, fieldName);
      const name = this.named.has(schema) ? schema : fullName(schema, namespace);
      // A reference to a named type: resolved lazily, so recursive schemas compile (and a value is finite anyway).
      return (value, path) => (this.compiled.get(name) ?? ok)(value, path);
    }
    if (Array.isArray(schema)) return this.union(schema, namespace, fieldName);
    const type = schema.type;
    if (typeof type !== 'string') return this.compile(type as JsonSchema, namespace, fieldName);
    switch (type) {
      case 'string':
        return stringCheck(STRING_LIMITS[fieldName] ?? DEFAULT_STRING_LIMIT);
      case 'int':
        return intCheck;
      case 'long':
        return schema.logicalType === 'timestamp-millis' ? timestampCheck : longCheck;
      case 'bytes':
        return bytesCheck;
      case 'record':
      case 'error':
        return this.record(schema, namespace);
      case 'enum':
        return this.enumeration(schema, namespace);
      case 'array':
        return this.array(schema, namespace, fieldName);
      case 'map':
        return this.map(schema, namespace, fieldName);
      case 'fixed': {
        const ns = typeof schema.namespace === 'string' ? schema.namespace : namespace;
        this.named.set(fullName(String(schema.name), ns), schema);
        return ok;
      }
      default:
        return PRIMITIVES.has(type) ? ok : this.compile(type, namespace, fieldName);
    }
  }

  record(schema: { readonly [key: string]: unknown }, namespace: string): Check {
    const ns = typeof schema.namespace === 'string' ? schema.namespace : namespace;
    const name = fullName(String(schema.name), ns);
    this.named.set(name, schema);
    const fields = (schema.fields as { name: string; type: JsonSchema }[]).map((field) => ({
      name: field.name,
      check: this.compile(field.type, ns, field.name),
    }));
    const check: Check = (value, path) => {
      if (value === null || typeof value !== 'object') return null;
      const record = value as Record<string, unknown>;
      for (let i = 0; i < fields.length; i++) {
        const field = fields[i]!;
        const problem = field.check(
          record[field.name],
          path === null ? null : path === '' ? field.name : `${path}.${field.name}`,
        );
        if (problem !== null) return problem;
      }
      return null;
    };
    this.compiled.set(name, check);
    return check;
  }

  enumeration(schema: { readonly [key: string]: unknown }, namespace: string): Check {
    const ns = typeof schema.namespace === 'string' ? schema.namespace : namespace;
    const name = fullName(String(schema.name), ns);
    this.named.set(name, schema);
    const symbols = new Set(schema.symbols as string[]);
    const short = String(schema.name).split('.').pop();
    const check: Check = (value, path) =>
      typeof value === 'string' && !symbols.has(value) ? `${path}: not one of the ${short} symbols` : null;
    this.compiled.set(name, check);
    return check;
  }

  array(schema: { readonly [key: string]: unknown }, namespace: string, fieldName: string): Check {
    const items = this.compile(schema.items as JsonSchema, namespace, fieldName);
    return (value, path) => {
      if (!Array.isArray(value)) return null;
      if (value.length > MAX_ARRAY_ITEMS) return `${path}: more than ${MAX_ARRAY_ITEMS} items`;
      for (let i = 0; i < value.length; i++) {
        const problem = items(value[i], path === null ? null : `${path}[${i}]`);
        if (problem !== null) return problem;
      }
      return null;
    };
  }

  map(schema: { readonly [key: string]: unknown }, namespace: string, fieldName: string): Check {
    const values = this.compile(schema.values as JsonSchema, namespace, fieldName);
    const keys = stringCheck(DEFAULT_STRING_LIMIT);
    return (value, path) => {
      if (value === null || typeof value !== 'object') return null;
      const entries = Object.keys(value);
      if (entries.length > MAX_MAP_ENTRIES) return `${path}: more than ${MAX_MAP_ENTRIES} entries`;
      for (const key of entries) {
        const problem =
          keys(key, path === null ? null : `${path} (a key)`) ??
          values((value as Record<string, unknown>)[key], path === null ? null : `${path}{}`);
        if (problem !== null) return problem;
      }
      return null;
    };
  }

  /**
   * A union value is either wrapped (`{ "<branch full name>": value }`, avsc's form for unions of several records)
   * or bare (`["null", X]`): a wrapped value is checked against the branch it names, a bare one against the branch of
   * its JavaScript kind.
   */
  union(branches: JsonSchema[], namespace: string, fieldName: string): Check {
    const compiled = branches.map((branch) => ({
      branch,
      check: this.compile(branch, namespace, fieldName),
    }));
    const byName = new Map<string, Check>();
    for (const { branch, check } of compiled) {
      if (typeof branch === 'object' && !Array.isArray(branch) && typeof branch.name === 'string') {
        const ns = typeof branch.namespace === 'string' ? branch.namespace : namespace;
        byName.set(fullName(branch.name, ns), check);
      } else if (typeof branch === 'string') {
        byName.set(branch, check);
      }
    }
    // avsc's 'auto' wrapping: a union is wrapped exactly when two of its branches share a JavaScript kind.
    const kinds = compiled.map(({ branch }) => jsKind(branch, this.named));
    const wrappedUnion = new Set(kinds).size < kinds.length;
    return (value, path) => {
      if (value === null) return null;
      if (wrappedUnion && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value)) {
        const keys = Object.keys(value);
        const wrapped = keys.length === 1 ? byName.get(keys[0]!) : undefined;
        if (wrapped) return wrapped((value as Record<string, unknown>)[keys[0]!], path);
      }
      const kind = kindOf(value);
      for (const { branch, check } of compiled) {
        if (jsKind(branch, this.named) === kind) return check(value, path);
      }
      return null;
    };
  }
}

/**
 * Compiles the limits of a schema (the JSON form, with its attributes: `timestamp-millis` is read from it).
 *
 * @example
 * const check = compileLimits(loadSchemaRepo().get('envelope').newest.schema);
 * check(envelope); // null, or e.g. 'device_id: longer than 256 characters'
 */
export function compileLimits(schema: avsc.Schema): LimitCheck {
  const compiler = new Compiler();
  const check = compiler.compile(schema as JsonSchema, '', '');
  // Judged without paths first; a failing value (rare) is walked again, the same way, to name the field.
  return (value) => (check(value, null) === null ? null : check(value, ''));
}

let envelopeCheck: LimitCheck | null = null;

/**
 * The limits of the newest envelope schema of this checkout, compiled once per process (like envelopeSchema()):
 * reading the schema folder again per call cost 110-170 us per NDJSON line or gateway event, ~15x the check itself.
 */
export function envelopeLimits(): LimitCheck {
  envelopeCheck ??= compileLimits(loadSchemaRepo().get('envelope').newest.schema);
  return envelopeCheck;
}
