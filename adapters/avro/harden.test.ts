import { isUtf8 } from 'node:buffer';
import avsc from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbitraryFor } from '../../test/property/arbitrary.ts';
import { isHardened, MAX_EMPTY_ITEMS } from './harden.ts';
import { hardened, loadSchemaRepo, parseAvroSchema } from './schemas.ts';

/** Zig-zag varint, as Avro writes ints and longs. */
function varint(n: number): number[] {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  while (z >= 0x80) {
    out.push((z % 0x80) | 0x80);
    z = Math.floor(z / 0x80);
  }
  out.push(z);
  return out;
}

const strings = { type: 'array', items: 'string' } as const;
const nulls = { type: 'array', items: 'null' } as const;
const map = { type: 'map', values: 'int' } as const;

describe('hardened array and map reads', () => {
  it('builds every array and map of the repo schemas hardened', () => {
    for (const s of loadSchemaRepo().subjects) for (const v of s.versions) expect(isHardened(v.type)).toBe(true);
    expect(isHardened(avsc.Type.forSchema(strings))).toBe(false);
    expect(isHardened(hardened(avsc.Type.forSchema(strings)))).toBe(true);
  });

  it('a huge claimed item count ends as a truncated read, fast, instead of a hang', () => {
    const type = parseAvroSchema(strings);
    const hostile = Buffer.from([...varint(2 ** 31 - 1), 2, 0x61]);
    const started = performance.now();
    expect(type.decode(hostile, 0).offset).toBe(-1);
    expect(performance.now() - started).toBeLessThan(50);
    // Negative counts (with a block size) too.
    expect(type.decode(Buffer.from([...varint(-(2 ** 40)), ...varint(3), 2, 0x61]), 0).offset).toBe(-1);
  });

  it('refuses more zero-byte items than MAX_EMPTY_ITEMS', () => {
    const type = parseAvroSchema(nulls);
    expect(type.fromBuffer(Buffer.from([...varint(1000), 0]))).toHaveLength(1000);
    expect(() => type.fromBuffer(Buffer.from([...varint(2 ** 40), 0]))).toThrow(/zero-byte items/);
    expect(() => type.fromBuffer(Buffer.from([...varint(MAX_EMPTY_ITEMS + 1), 0]))).toThrow(/zero-byte items/);
  });

  it('a resolver inherits the guard (reader hardened, writer-only array skipped with the guard)', () => {
    const writer = parseAvroSchema({
      type: 'record',
      name: 'W',
      fields: [
        { name: 'drop', type: strings },
        { name: 'keep', type: strings },
      ],
    } as never);
    const reader = parseAvroSchema({ type: 'record', name: 'W', fields: [{ name: 'keep', type: strings }] } as never);
    const resolver = reader.createResolver(writer);
    const skipHostile = Buffer.from([...varint(2 ** 31 - 1), 2, 0x61]);
    expect(reader.decode(skipHostile, 0, resolver).offset).toBe(-1);
    const readHostile = Buffer.from([0, ...varint(2 ** 31 - 1), 2, 0x61]);
    expect(reader.decode(readHostile, 0, resolver).offset).toBe(-1);
    const ok = writer.toBuffer({ drop: ['x', 'y'], keep: ['z'] });
    expect(reader.fromBuffer(ok, resolver)).toEqual({ keep: ['z'] });
  });

  it('maps: a hostile count is a truncated read; a "__proto__" key is data, not a prototype', () => {
    const type = parseAvroSchema(map);
    expect(type.decode(Buffer.from([...varint(2 ** 31 - 1), 2, 0x61, 2]), 0).offset).toBe(-1);
    const value = type.fromBuffer(avsc.Type.forSchema(map).toBuffer({ ['__proto__']: 7, a: 1 } as never));
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value).sort()).toEqual(['__proto__', 'a']);
  });

  it('reads valid data exactly as plain avsc does (every repo schema, arbitrary values, blocked encodings too)', () => {
    for (const s of loadSchemaRepo().subjects) {
      const plain = avsc.Type.forSchema(s.newest.schema);
      fc.assert(
        fc.property(arbitraryFor(s.newest.type), (value) => {
          const bytes = plain.toBuffer(value);
          expect(s.newest.type.fromBuffer(bytes)).toEqual(plain.fromBuffer(bytes));
        }),
        { numRuns: 100 },
      );
    }
    // Block-encoded arrays (negative count + byte size), as other Avro writers may produce them.
    const blocked = Buffer.from([...varint(-2), ...varint(4), 2, 0x61, 2, 0x62, ...varint(1), 2, 0x63, 0]);
    expect(parseAvroSchema(strings).fromBuffer(blocked)).toEqual(avsc.Type.forSchema(strings).fromBuffer(blocked));
    expect(parseAvroSchema(strings).fromBuffer(blocked)).toEqual(['a', 'b', 'c']);
  });
});

describe('hardened string reads', () => {
  const record = parseAvroSchema({ type: 'record', name: 'S', fields: [{ name: 's', type: 'string' }] } as never);

  it('builds every string of the repo schemas hardened', () => {
    expect(isHardened(record)).toBe(true);
    expect(isHardened(avsc.Type.forSchema('string'))).toBe(false);
  });

  it('refuses bytes that are not UTF-8 instead of replacing them with U+FFFD', () => {
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0x61, 0x80, 0x62]]) {
      expect(() => record.fromBuffer(Buffer.from([...varint(bad.length), ...bad]))).toThrow(/not valid UTF-8/);
    }
    const text = 'ok é 😀';
    expect(record.fromBuffer(record.toBuffer({ s: text }))).toEqual({ s: text });
  });

  it('reads any bytes as avsc would when they are UTF-8, and refuses them otherwise (ASCII prefix or not)', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.uint8Array({ maxLength: 40, max: 0x7f }),
      // An ASCII prefix, then anything: the check starts at the first non-ASCII byte.
      fc
        .tuple(fc.uint8Array({ maxLength: 30, max: 0x7f }), fc.uint8Array({ minLength: 1, maxLength: 8, min: 0x80 }))
        .map(([a, b]) => new Uint8Array([...a, ...b])),
      fc.string({ unit: 'grapheme', maxLength: 20 }).map((t) => new Uint8Array(Buffer.from(t, 'utf8'))),
    );
    fc.assert(
      fc.property(bytes, (raw) => {
        const frame = Buffer.from([...varint(raw.length), ...raw]);
        if (isUtf8(raw)) expect(record.fromBuffer(frame)).toEqual({ s: Buffer.from(raw).toString('utf8') });
        else expect(() => record.fromBuffer(frame)).toThrow(/not valid UTF-8/);
      }),
      { numRuns: 2000 },
    );
  });

  it('a string cut short still reads as a truncated body', () => {
    expect(record.decode(Buffer.from([...varint(10), 0x61]), 0).offset).toBe(-1);
  });

  it('a resolver reading bytes as a string inherits the guard', () => {
    const writer = parseAvroSchema({ type: 'record', name: 'S', fields: [{ name: 's', type: 'bytes' }] } as never);
    const resolver = record.createResolver(writer);
    expect(() => record.fromBuffer(Buffer.from([...varint(1), 0xff]), resolver)).toThrow(/not valid UTF-8/);
  });
});
