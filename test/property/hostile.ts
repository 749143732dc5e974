/**
 * Hostile input for the property suite: NDJSON lines and Avro container records at the edges of every field's type.
 * Test scaffolding (fast-check), kept with the tests.
 *
 * A hostile line starts from a valid envelope and breaks one or more fields with a value from the class pools below
 * (numbers past int/long/double, NaN spelt out, -0, lone surrogates, NUL, megabyte strings, times before 1970 or past
 * 2299, deep nesting, prototype names as enum symbols, wrong types), or is hostile as a whole line (invalid UTF-8,
 * broken or non-object JSON, arbitrary JSON). A value that JSON.stringify cannot write (1e400, NaN, a 40-digit
 * integer, deep nesting) travels as a raw literal spliced into the text.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { AVRO_MAGIC } from '../../adapters/file/avro-container.ts';
import { envelopeSchema } from '../../adapters/file/envelope-schema.ts';
import { envelope, VITALS } from '../fixtures/envelope.ts';

/** A raw JSON literal, spliced into the line's text as it is. */
export class Raw {
  constructor(readonly text: string) {}
}

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ulid = fc
  .tuple(fc.constantFrom(...'01234567'), fc.array(fc.constantFrom(...ALPHABET), { minLength: 25, maxLength: 25 }))
  .map(([first, rest]) => first + rest.join(''));

const BASE_TIME = Date.UTC(2026, 0, 5, 6);

/** A valid plain NDJSON envelope (vital signs) of one of a few devices. */
export const validPlain = fc
  .record({
    event_id: ulid,
    device: fc.integer({ min: 0, max: 5 }),
    sequence: fc.integer({ min: 0, max: 1_000_000 }),
    at: fc.integer({ min: 0, max: 3_600_000 }),
  })
  .map(({ event_id, device, sequence, at }) => ({
    // The shared envelope (test/fixtures/envelope.ts), written as plain NDJSON: the payload is the bare vital signs.
    ...envelope({
      event_id,
      device_id: `prop-dev-${device}`,
      patient_ref: `psn-${device}`,
      site_id: 'site-01',
      observed_at: BASE_TIME + at,
      received_at: BASE_TIME + at + 10,
      firmware_version: '5.12.1',
      integrity_hash: `sha256:${'a'.repeat(64)}`,
      consent_context: 'hah-care-v3',
      processing_policy: 'care-only-v1',
      sequence,
    }),
    nonce: 'n0',
    key_id: 'k1',
    payload: { ...VITALS, systolic_bp: 120, pulse: 70 } as Record<string, unknown>,
    parent_event_ids: [] as unknown[],
  }));

const TOP_FIELDS = [
  'event_id',
  'device_id',
  'patient_ref',
  'site_id',
  'event_type',
  'observed_at',
  'received_at',
  'firmware_version',
  'model_version',
  'schema_version',
  'integrity_hash',
  'consent_context',
  'processing_policy',
  'sequence',
  'nonce',
  'device_cert_fingerprint',
  'key_id',
  'device_batch',
  'patient_subgroup',
  'transformation_version',
  'parent_event_ids',
] as const;
const PAYLOAD_FIELDS = [
  'respiratory_rate',
  'spo2',
  'on_oxygen',
  'systolic_bp',
  'pulse',
  'consciousness',
  'temperature_c',
] as const;

const deep = (depth: number, open: string, close: string) => new Raw(open.repeat(depth) + close.repeat(depth));

/** One value at the edge of some type. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  // numbers past what int, long, double or a column holds
  fc.constantFrom<unknown>(
    1e30,
    -1e30,
    2 ** 53,
    -(2 ** 53),
    2 ** 63,
    -(2 ** 63),
    2 ** 64,
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 32,
    1.5,
    -0,
    0,
    -1,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    new Raw('1e400'),
    new Raw('-1e400'),
    new Raw('NaN'),
    new Raw('Infinity'),
    new Raw('123456789012345678901234567890'),
    new Raw('-0.0'),
    new Raw('1E+2'),
  ),
  fc.integer(),
  fc.double(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((n) => new Raw(n.toString())),
  // strings: unclean, long, prototype names, empty, odd
  fc.constantFrom<unknown>(
    '\ud800',
    'a\udc00b',
    '\udbff',
    'a\u0000b',
    '\u0000',
    '',
    ' ',
    '\u{1F600}',
    'constructor',
    '__proto__',
    'toString',
    'hasOwnProperty',
    'x'.repeat(257),
    'x'.repeat(4097),
    'é'.repeat(300),
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.integer({ min: 1, max: 3 }).map((mb) => 'm'.repeat(mb * 1024 * 1024 - 7)),
  // times around 1970 and DateTime64's ends, as numbers and ISO strings
  fc.constantFrom<unknown>(
    -1,
    -62135596800000,
    Date.UTC(1900, 0, 1),
    Date.UTC(2299, 11, 31, 23, 59, 59, 999),
    Date.UTC(2300, 0, 1),
    8.64e15,
    '1969-12-31T23:59:59.999Z',
    '1970-01-01T00:00:00Z',
    '0001-01-01T00:00:00Z',
    '2299-12-31T23:59:59.999Z',
    '2300-01-01T00:00:00Z',
    '9999-12-31T23:59:59Z',
    '2026-02-30T00:00:00Z',
  ),
  // shapes
  fc.constantFrom<unknown>(
    null,
    true,
    [],
    {},
    { a: 1 },
    ['x'],
    deep(10_000, '[', ']'),
    new Raw(`${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`),
  ),
  fc.array(fc.constantFrom<unknown>('x'.repeat(300), '\ud800', 'ok', 5), { maxLength: 3 }),
);

/** Writes a plain value as JSON, splicing Raw literals in. */
export function toJsonText(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Raw) {
      raws.push(v.text);
      return `\u0001RAW${raws.length - 1}\u0001`;
    }
    return v;
  });
  return text.replace(/"\\u0001RAW(\d+)\\u0001"/g, (_, i: string) => raws[Number(i)] as string);
}

/** A valid envelope with one to three fields (top level or payload) set to hostile values. */
const brokenEnvelope = fc
  .tuple(
    validPlain,
    fc.array(
      fc.tuple(fc.constantFrom<string>(...TOP_FIELDS, ...PAYLOAD_FIELDS.map((f) => `payload.${f}`)), hostileValue),
      { minLength: 1, maxLength: 3 },
    ),
  )
  .map(([plain, edits]) => {
    const out: Record<string, unknown> = { ...plain, payload: { ...plain.payload } };
    for (const [field, value] of edits) {
      if (field.startsWith('payload.')) (out.payload as Record<string, unknown>)[field.slice(8)] = value;
      else out[field] = value;
    }
    return Buffer.from(toJsonText(out));
  });

/** Hostile as a whole line. */
const brokenLine: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constantFrom(
    Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
    Buffer.from('{"device_id":"\xc3"}', 'latin1'),
    Buffer.from('{"event_id":'),
    Buffer.from('[1,2,3]'),
    Buffer.from('"just a string"'),
    Buffer.from('null'),
    Buffer.from('{"__proto__":{"device_id":"p"},"constructor":1}'),
    Buffer.from(`${'['.repeat(200_000)}${']'.repeat(200_000)}`),
    Buffer.from('\ufeff{}'),
  ),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((a) => Buffer.from(a)),
  fc.json().map((j) => Buffer.from(j)),
);

/** A valid line, a broken envelope, or a broken line. LF inside a line would split it: such bytes become spaces. */
export const hostileLine: fc.Arbitrary<Buffer> = fc
  .oneof(
    { weight: 2, arbitrary: validPlain.map((p) => Buffer.from(toJsonText(p))) },
    { weight: 5, arbitrary: brokenEnvelope },
    { weight: 2, arbitrary: brokenLine },
  )
  .map((line) => Buffer.from(line.map((b) => (b === 0x0a ? 0x20 : b))));

/** Writes lines as an NDJSON file; returns how many of them are records (non-blank lines). */
export function writeNdjson(path: string, lines: readonly Buffer[]): number {
  writeFileSync(path, Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])));
  return lines.filter((l) => !/^[ \t\r]*$/.test(l.toString('latin1'))).length;
}

// --- Avro -------------------------------------------------------------------------------------------------------

/** Zig-zag varint, as Avro writes ints and longs (exact beyond 2^53 through BigInt). */
export function varint(n: bigint): Buffer {
  let z = n >= 0n ? n * 2n : -n * 2n - 1n;
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  out.push(Number(z));
  return Buffer.from(out);
}

const avroString = (bytes: Buffer) => Buffer.concat([varint(BigInt(bytes.length)), bytes]);

/**
 * A hostile Avro record of the newest envelope, written field by field so that values avsc would never write can be
 * written: ints of 40 bits, longs of 70, strings that are not UTF-8, enum indexes past the symbols, times before 1970.
 */
export const hostileAvroRecord: fc.Arbitrary<Buffer> = fc
  .record({
    plain: validPlain,
    spo2: fc.oneof(fc.constant(97n), fc.constantFrom(2n ** 31n, -(2n ** 31n) - 1n, 2n ** 40n, 2n ** 70n)),
    sequence: fc.oneof(fc.constant(5n), fc.constantFrom(2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 70n)),
    observed: fc.oneof(fc.constant(null), fc.constantFrom(-1n, 0n, 2n ** 52n, BigInt(Date.UTC(2300, 0, 1)))),
    device: fc.oneof(
      fc.constant(null),
      fc.constantFrom(
        Buffer.from([0xff]),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from('a\u0000b'),
        Buffer.alloc(300, 0x78),
        Buffer.alloc(2 * 1024 * 1024, 0x78),
      ),
    ),
    consciousness: fc.constantFrom(0n, 4n, 5n, 1000n, -1n),
    temperature: fc.constantFrom(36.8, Number.NaN, Number.POSITIVE_INFINITY, -0),
  })
  .map(({ plain, spo2, sequence, observed, device, consciousness, temperature }) => {
    const s = (v: string) => avroString(Buffer.from(v));
    const nullable = (value: Buffer | null) => (value === null ? varint(0n) : Buffer.concat([varint(1n), value]));
    return Buffer.concat([
      s(plain.event_id),
      device === null ? s(plain.device_id) : avroString(device),
      s(plain.patient_ref),
      s(plain.site_id),
      varint(0n), // event_type vital_signs
      varint(observed ?? BigInt(plain.observed_at)),
      varint(BigInt(plain.received_at)),
      s(plain.firmware_version),
      nullable(null), // model_version
      s(plain.schema_version),
      s(plain.integrity_hash),
      s(plain.consent_context),
      s(plain.processing_policy),
      varint(0n), // payload branch VitalSigns
      nullable(doubleOf(16)), // respiratory_rate
      nullable(varint(spo2)),
      nullable(Buffer.from([0])), // on_oxygen false
      nullable(varint(120n)),
      nullable(varint(70n)),
      nullable(varint(consciousness)),
      nullable(doubleOf(temperature)),
      nullable(varint(sequence)),
      nullable(s(plain.nonce)),
      nullable(null),
      nullable(s(plain.key_id)),
      nullable(null),
      nullable(null),
      nullable(null),
      varint(0n), // parent_event_ids: empty array
    ]);
  });

function doubleOf(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(n);
  return b;
}

/**
 * Writes records as an Avro container file, one record per block so that a record that does not decode costs only
 * itself. Returns how many records it holds.
 */
export function writeAvroRecords(path: string, records: readonly Buffer[]): number {
  const schema = JSON.stringify(envelopeSchema().type.schema());
  const sync = createHash('md5').update(path).digest();
  const meta = Buffer.concat([
    varint(2n),
    avroString(Buffer.from('avro.schema')),
    avroString(Buffer.from(schema)),
    avroString(Buffer.from('avro.codec')),
    avroString(Buffer.from('null')),
    varint(0n),
  ]);
  const blocks = records.map((r) => Buffer.concat([varint(1n), varint(BigInt(r.length)), r, sync]));
  writeFileSync(path, Buffer.concat([AVRO_MAGIC, meta, sync, ...blocks]));
  return records.length;
}
