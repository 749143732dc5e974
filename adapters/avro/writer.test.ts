import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import avsc from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixtureLabel, listGoldenFixtures } from './fixtures.ts';
import { encodeFramed } from './framing.ts';
import { loadSchemaRepo } from './schemas.ts';
import { CHUNK_SIZE, compileWriter, FramedWriter } from './writer.ts';

type WriterTap = Parameters<NonNullable<ReturnType<typeof compileWriter>>>[0];
const { Tap: AvscTap } = createRequire(import.meta.url)('avsc/lib/utils') as {
  Tap: new (buf: Buffer) => WriterTap;
};

const repo = loadSchemaRepo();

/** The internals of avsc Types the arbitrary walks (the same the writer compiles from). */
interface Node {
  readonly typeName: string;
  readonly name?: string;
  readonly fields?: readonly { readonly name: string; readonly type: Node; defaultValue(): unknown }[];
  readonly itemsType?: Node;
  readonly valuesType?: Node;
  readonly types?: readonly Node[];
  readonly symbols?: readonly string[];
  readonly size?: number;
  readonly branchName?: string;
}

const branchName = (t: Node): string => t.branchName ?? t.name ?? t.typeName;

// Strings of every kind the writer treats apart: short and long, ASCII, any UTF-16 (lone surrogates included), and
// the lengths where the length prefix and avsc's own paths change (63/64/65, 127/128 units).
const text = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', maxLength: 140 }),
  fc.string({ unit: 'binary', maxLength: 140 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.constantFrom(31, 32, 33, 63, 64, 65, 127, 128, 129).map((n) => 'x'.repeat(n)),
  fc.constantFrom(63, 64, 65, 127, 128).map((n) => `${'a'.repeat(n - 1)}\u00e9`),
  fc.constantFrom('\ud800', 'a\udc00b', '\ud83d\ude00'),
);

const long = fc.oneof(
  fc.integer({ min: -70, max: 70 }),
  fc.integer(),
  fc.integer({ min: -9007199254740990, max: 9007199254740990 }),
  fc.constantFrom(-9007199254740990, 9007199254740990, 2 ** 31, -(2 ** 31) - 1, 1_795_927_377_406),
);

function arbitraryOf(type: Node, depth = 0): fc.Arbitrary<unknown> {
  switch (type.typeName) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'int':
      return fc.oneof(fc.integer({ min: -70, max: 70 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));
    case 'long':
      return long;
    case 'float':
      return fc.float();
    case 'double':
      return fc.oneof(fc.double(), fc.integer({ min: -100, max: 100 }));
    case 'string':
      return text;
    case 'bytes':
      return fc.uint8Array({ maxLength: 90 }).map((a) => Buffer.from(a));
    case 'fixed':
      return fc.uint8Array({ minLength: type.size!, maxLength: type.size! }).map((a) => Buffer.from(a));
    case 'enum':
      return fc.constantFrom(...type.symbols!);
    case 'array':
      return fc.array(arbitraryOf(type.itemsType!, depth + 1), { maxLength: depth > 2 ? 2 : 12 });
    case 'map':
      return fc.dictionary(fc.string({ maxLength: 8 }), arbitraryOf(type.valuesType!, depth + 1), { maxKeys: 4 });
    case 'union:unwrapped':
      return fc.oneof(...type.types!.map((t) => arbitraryOf(t, depth + 1)));
    case 'union:wrapped':
      return fc.oneof(
        ...type.types!.map((t) =>
          t.typeName === 'null' ? fc.constant(null) : arbitraryOf(t, depth + 1).map((v) => ({ [branchName(t)]: v })),
        ),
      );
    case 'record':
    case 'error': {
      const shape: Record<string, fc.Arbitrary<unknown>> = {};
      const optional: string[] = [];
      for (const field of type.fields!) {
        shape[field.name] = arbitraryOf(field.type, depth + 1);
        // A field with a default may be left out: the writer writes the default's bytes, as avsc does.
        if (field.defaultValue() !== undefined) optional.push(field.name);
      }
      const required = type.fields!.map((f) => f.name).filter((n) => !optional.includes(n));
      return fc.record(shape, { requiredKeys: required });
    }
    default:
      throw new Error(`no arbitrary for ${type.typeName}`);
  }
}

const everyVersion = repo.subjects.flatMap((s) => s.versions.map((v) => [`${v.name} v${v.version}`, v.type] as const));
const OUTPUTS = ['normalised', 'inference', 'dead-letter', 'duplicate', 'drift-histogram'];

describe('compiled Avro writers', () => {
  it.each(everyVersion)('%s: the same bytes as avsc toBuffer on generated records', (_, type) => {
    const writer = new FramedWriter();
    fc.assert(
      fc.property(arbitraryOf(type as unknown as Node), (value) => {
        const expected = type.toBuffer(value);
        expect(writer.body(type, value).equals(expected)).toBe(true);
        expect(writer.frame(42, type, value).equals(encodeFramed(42, type, value))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('covers every output schema the worker encodes', () => {
    for (const name of OUTPUTS) {
      expect(compileWriter(repo.get(name).newest.type), name).not.toBeNull();
    }
  });

  it.each(listGoldenFixtures(repo).map((f) => [fixtureLabel(f), f] as const))(
    '%s: re-encoding the golden fixture gives its exact bytes',
    (_, f) => {
      const type = repo.get(f.name).versions.find((v) => v.version === f.version)!.type;
      const bytes = readFileSync(f.avroFile);
      expect(new FramedWriter().body(type, type.fromBuffer(bytes)).equals(bytes)).toBe(true);
    },
  );

  it.each(OUTPUTS)('%s: throws where avsc throws on a value that does not fit', (name) => {
    const type = repo.get(name).newest.type;
    const writer = new FramedWriter();
    const sample = type.random() as unknown as Record<string, unknown>;
    const fields = (type as unknown as Node).fields!;
    let checked = 0;
    for (const field of fields) {
      for (const wrong of [undefined, 12.5, 'not-a-value', { nested: true }, [1]]) {
        const value = { ...sample, [field.name]: wrong };
        let avscThrew = false;
        try {
          type.toBuffer(value);
        } catch {
          avscThrew = true;
        }
        if (avscThrew) {
          expect(() => writer.body(type, value), `${name}.${field.name} = ${JSON.stringify(wrong)}`).toThrow();
          checked++;
        } else {
          expect(writer.body(type, value).equals(type.toBuffer(value))).toBe(true);
        }
      }
    }
    expect(checked).toBeGreaterThan(fields.length);
    expect(() => writer.body(type, null)).toThrow();
  });

  it('hands out views that later values never overwrite, across chunks', () => {
    const type = repo.get('duplicate').newest.type;
    const writer = new FramedWriter();
    const values = Array.from({ length: 2 * Math.ceil(CHUNK_SIZE / 150) }, () => type.random());
    const framed = values.map((v) => writer.frame(7, type, v));
    const chunks = new Set(framed.map((b) => b.buffer));
    expect(chunks.size).toBeGreaterThan(1);
    framed.forEach((bytes, i) => {
      expect(bytes.equals(encodeFramed(7, type, values[i]))).toBe(true);
    });
  });

  it('writes a string whole or not at all when the buffer ends inside it (every room left, ASCII or not)', () => {
    // A non-ASCII prefix can fill exactly as many bytes as the string has units, with the string cut short: the
    // writer must not take that for an ASCII string (it did: `é` + 39 x `a` with 40 bytes of room lost its last `a`).
    const type = avsc.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 's', type: 'string' }] });
    const write = compileWriter(type) as NonNullable<ReturnType<typeof compileWriter>>;
    for (const s of [`é${'a'.repeat(39)}`, `${'a'.repeat(38)}€`, `😀${'b'.repeat(70)}`, 'c'.repeat(100)]) {
      const expected = type.toBuffer({ s });
      for (let room = 0; room <= expected.length + 4; room++) {
        const tap = new AvscTap(Buffer.alloc(room));
        write(tap, { s });
        // A tap whose position passed its end says "resize and write again", as avsc's own writer does.
        if (tap.pos <= room) expect(tap.buf.subarray(0, tap.pos), `${s.length} units, ${room} bytes`).toEqual(expected);
        else expect(room).toBeLessThan(expected.length);
      }
    }
  });

  it('encodes a value larger than a chunk', () => {
    const type = repo.get('dead-letter').newest.type as avsc.Type;
    const value = { ...(type.random() as unknown as object), raw_bytes: Buffer.alloc(3 * CHUNK_SIZE, 7) };
    const writer = new FramedWriter();
    writer.frame(1, type, type.random());
    expect(writer.frame(1, type, value).equals(encodeFramed(1, type, value))).toBe(true);
  });
});
