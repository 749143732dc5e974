import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The vitals pipeline's tables (normalised_events, inferences) join TABLE_COLUMNS where their outputs are declared.
import '../../pipelines/outputs.ts';
import { openChdbStore } from './chdb.ts';
import { parseType } from './column-types.ts';
import { ByteWriter, dateTime64Ms, rowBinaryEncoder, valueWriter, withoutLowCardinality } from './row-binary.ts';
import type { ClickHouseStore } from './store.ts';
import { DATETIME64_MAX_MS, DATETIME64_MIN_MS, TABLE_COLUMNS, type TableName, toDateTime64 } from './tables.ts';

function bytesOf(type: string, value: unknown): number[] | null {
  const write = valueWriter(type);
  if (!write) throw new Error(`no writer for ${type}`);
  const w = new ByteWriter(4);
  return write(w, value) ? [...w.bytes()] : null;
}

describe('RowBinary values', () => {
  it('writes strings with a LEB128 byte length, multi-byte UTF-8 included', () => {
    expect(bytesOf('String', '')).toEqual([0]);
    expect(bytesOf('String', 'ab')).toEqual([2, 97, 98]);
    expect(bytesOf('String', 'é😀')).toEqual([6, ...Buffer.from('é😀')]);
    const long = 'x'.repeat(300);
    expect(bytesOf('String', long)).toEqual([0xac, 0x02, ...Buffer.from(long)]);
    const longUnicode = '😀'.repeat(40); // 80 UTF-16 units, 160 bytes: a 2-byte length
    expect(bytesOf('String', longUnicode)).toEqual([0xa0, 0x01, ...Buffer.from(longUnicode)]);
  });

  it('gives up on what JSON would carry differently: a lone surrogate, a number for a String, -Infinity as a number', () => {
    expect(bytesOf('String', 'a\ud800b')).toBeNull();
    expect(bytesOf('String', 12)).toBeNull();
    expect(bytesOf('Float64', Number.NEGATIVE_INFINITY)).toBeNull();
    expect(bytesOf('Int32', 2 ** 31)).toBeNull();
    expect(bytesOf('Int32', 1.5)).toBeNull();
    expect(bytesOf('UInt32', -1)).toBeNull();
    expect(bytesOf('Int64', 2 ** 53)).toBeNull();
    expect(bytesOf('String', null)).toBeNull();
    expect(bytesOf('Bool', 'true')).toBeNull();
    expect(bytesOf("DateTime64(3, 'UTC')", '2026-02-30 00:00:00.000')).toBeNull();
    expect(bytesOf("DateTime64(3, 'UTC')", 1_700_000_000_000)).toBeNull();
    expect(bytesOf("Enum8('a' = 1, 'b' = 2)", 'c')).toBeNull();
  });

  it('writes 64-bit integers in two’s complement, little-endian, up to ±(2^53-1)', () => {
    const le = (n: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(n);
      return [...b];
    };
    for (const n of [0, 1, -1, 2 ** 32, -(2 ** 32), 2 ** 32 + 5, -(2 ** 32) - 5, 2 ** 53 - 1, -(2 ** 53 - 1)]) {
      expect(bytesOf('Int64', n)).toEqual(le(BigInt(n)));
    }
    expect(bytesOf('UInt64', 2 ** 53 - 1)).toEqual(le(BigInt(2 ** 53 - 1)));
    expect(bytesOf('UInt64', -1)).toBeNull();
  });

  it('writes floats, the non-finite texts as IEEE values and -0 as 0 (what JSON writes)', () => {
    const le = (x: number) => {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(x);
      return [...b];
    };
    expect(bytesOf('Float64', 36.6)).toEqual(le(36.6));
    expect(bytesOf('Float64', 'nan')).toEqual(le(Number.NaN));
    expect(bytesOf('Float64', 'inf')).toEqual(le(Number.POSITIVE_INFINITY));
    expect(bytesOf('Float64', '-inf')).toEqual(le(Number.NEGATIVE_INFINITY));
    expect(bytesOf('Float64', -0)).toEqual(le(0));
  });

  it('writes Nullable, Array, named Tuple, Bool, Enum8 and LowCardinality as their RowBinary forms', () => {
    expect(bytesOf('Nullable(Int32)', null)).toEqual([1]);
    expect(bytesOf('Nullable(Int32)', undefined)).toEqual([1]);
    expect(bytesOf('Nullable(Int32)', 7)).toEqual([0, 7, 0, 0, 0]);
    expect(bytesOf('LowCardinality(Nullable(String))', 'a')).toEqual([0, 1, 97]);
    expect(bytesOf('Array(Nullable(Float64))', [])).toEqual([0]);
    expect(bytesOf('Array(UInt32)', [1, 2])).toEqual([2, 1, 0, 0, 0, 2, 0, 0, 0]);
    const tuple = 'Array(Tuple(key String, value Nullable(String)))';
    expect(bytesOf(tuple, [{ key: 'k', value: null }])).toEqual([1, 1, 107, 1]);
    expect(bytesOf(tuple, [['k', 'v']])).toEqual([1, 1, 107, 0, 1, 118]);
    expect(bytesOf(tuple, [{ key: 'k' }])).toBeNull(); // JSON would leave the member out: not guessed
    expect(bytesOf('Bool', true)).toEqual([1]);
    expect(bytesOf('Bool', 0)).toEqual([0]);
    expect(bytesOf("Enum8('a' = 1, 'b' = -2)", 'b')).toEqual([0xfe]);
    expect(valueWriter('Decimal(10, 2)')).toBeNull();
    expect(valueWriter("DateTime64(6, 'UTC')")).toBeNull();
  });

  it('reads DateTime64 text as epoch ms, at both ends of the range and across the day cache', () => {
    expect(dateTime64Ms('1900-01-01 00:00:00.000')).toBe(DATETIME64_MIN_MS);
    expect(dateTime64Ms('2299-12-31 23:59:59.999')).toBe(DATETIME64_MAX_MS);
    expect(dateTime64Ms('1899-12-31 23:59:59.999')).toBeNull();
    expect(dateTime64Ms('2026-03-10 24:00:00.000')).toBeNull();
    expect(dateTime64Ms('2026-03-10T00:00:00.000')).toBeNull();
    expect(dateTime64Ms('2026-03-10 00:00:00.00')).toBeNull();
    fc.assert(
      fc.property(fc.integer({ min: DATETIME64_MIN_MS, max: DATETIME64_MAX_MS }), (ms) => {
        expect(dateTime64Ms(toDateTime64(ms))).toBe(ms);
        // toDateTime64 refuses a time past the range (the mapper makes it an Unmappable), so the neighbour is only
        // taken inside it.
        if (ms < DATETIME64_MAX_MS) expect(dateTime64Ms(toDateTime64(ms + 1))).toBe(ms + 1);
      }),
    );
  });

  it('names plain types in the file structure (LowCardinality removed at every depth)', () => {
    expect(withoutLowCardinality('LowCardinality(Nullable(String))')).toBe('Nullable(String)');
    expect(withoutLowCardinality('Array(LowCardinality(String))')).toBe('Array(String)');
    expect(withoutLowCardinality('Array(Tuple(key String, value LowCardinality(Nullable(String))))')).toBe(
      'Array(Tuple(key String, value Nullable(String)))',
    );
    expect(withoutLowCardinality("DateTime64(3, 'UTC')")).toBe("DateTime64(3, 'UTC')");
  });

  it('returns the index of the first row it cannot write, and is null for a table with an unsupported type', () => {
    const encoder = rowBinaryEncoder([
      { name: 'a', type: 'String' },
      { name: 'n', type: 'Int32' },
    ]);
    const w = new ByteWriter(2);
    expect(encoder?.encode([{ a: 'x', n: 1 }], w)).toBe(-1);
    expect([...w.bytes()]).toEqual([1, 120, 1, 0, 0, 0]);
    w.reset();
    expect(encoder?.encode([{ a: 'x', n: 1 }, { a: 'y', n: 1e10 }, null as unknown as object], w)).toBe(1);
    expect(rowBinaryEncoder([{ name: 'd', type: 'Decimal(9, 2)' }])).toBeNull();
    expect(rowBinaryEncoder([{ name: 'bad-name', type: 'String' }])).toBeNull();
  });
});

// --- the same rows through JSON and RowBinary: stored identically -------------------------------------------------------

/** Values of a ClickHouse type as the mappers make them (`column` picks base64 for the EPHEMERAL `*_b64` columns). */
function arbitraryOf(type: string, column: string): fc.Arbitrary<unknown> {
  const { name, args } = parseType(type);
  const inner = (t: string) => arbitraryOf(t, column);
  switch (name) {
    case 'LowCardinality':
      return inner(args[0] as string);
    case 'Nullable':
      return fc.option(inner(args[0] as string), { nil: null, freq: 3 });
    case 'String':
      if (column.endsWith('_b64'))
        return fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64'));
      return fc.oneof(
        fc.constantFrom('', 'a', 'é', '😀𝄞', 'x'.repeat(127), 'y'.repeat(128), `${'z'.repeat(126)}é`, 'tab\tnl\n"q"\\'),
        fc.string({ unit: 'binary', maxLength: 80 }),
        fc.string({ unit: 'grapheme', maxLength: 200 }),
        fc.string({ maxLength: 300 }),
      );
    case 'Bool':
      return fc.boolean();
    case 'Int32':
      return fc.oneof(fc.constantFrom(0, -(2 ** 31), 2 ** 31 - 1), fc.integer());
    case 'UInt16':
      return fc.integer({ min: 0, max: 2 ** 16 - 1 });
    case 'UInt32':
      return fc.oneof(fc.constantFrom(0, 2 ** 32 - 1), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
    case 'Int64':
      return fc.oneof(fc.constantFrom(0, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 32, -(2 ** 32)), fc.maxSafeInteger());
    case 'UInt64':
      return fc.oneof(fc.constantFrom(0, 2 ** 53 - 1, 2 ** 32), fc.maxSafeNat());
    case 'Float64':
      return fc.oneof(
        fc.constantFrom('nan', 'inf', '-inf', 0, -0, 5e-324, Number.MAX_VALUE, -Number.MAX_VALUE, 0.1, 36.6),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
      );
    case 'DateTime64':
      return fc
        .oneof(
          fc.constantFrom(DATETIME64_MIN_MS, DATETIME64_MAX_MS),
          fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2026, 3, 1) }),
          fc.integer({ min: DATETIME64_MIN_MS, max: DATETIME64_MAX_MS }),
        )
        .map((ms) => toDateTime64(ms));
    case 'Array':
      return fc.array(inner(args[0] as string), { maxLength: 4 });
    case 'Tuple': {
      const elements = args.map((arg) => {
        const [field, ...rest] = arg.trim().split(/\s+/);
        return [field as string, arbitraryOf(rest.join(' '), field as string)] as const;
      });
      return fc.record(Object.fromEntries(elements));
    }
    default:
      throw new Error(`the test has no values for ${type}`);
  }
}

describe('RowBinary inserts store exactly what JSON inserts store, for every known table', () => {
  let dir: string;
  let binary: ClickHouseStore;
  let json: ClickHouseStore;
  const types = new Map<string, Map<string, string>>();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vigil-rowbinary-'));
    await mkdir(path.join(dir, 'spool'));
    binary = openChdbStore({ path: path.join(dir, 'db'), spoolBase: path.join(dir, 'spool') });
    json = openChdbStore({ path: path.join(dir, 'db'), binaryInserts: false }); // same directory: a second connection
    await binary.migrate();
    for (const table of Object.keys(TABLE_COLUMNS)) {
      const described = await binary.query<{ name: string; type: string }>(
        `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '${table}'`,
      );
      types.set(table, new Map(described.map((c) => [c.name, c.type])));
    }
  });

  afterAll(async () => {
    await json.close();
    await binary.close();
    await rm(dir, { recursive: true, force: true });
  });

  let batch = 0;
  /** The table's stored rows, all columns (decoded bytes, defaults), in a total order, as JSON text. */
  async function stored(table: string): Promise<unknown[]> {
    return binary.query(
      `SELECT * FROM ${table} ORDER BY ALL SETTINGS output_format_json_quote_denormals = 1, output_format_json_quote_64bit_integers = 1`,
    );
  }
  async function landBoth(table: string, rows: object[]): Promise<{ viaJson: unknown[]; viaBinary: unknown[] }> {
    batch++;
    await binary.command(`TRUNCATE TABLE ${table}`);
    await json.insert(table, rows as never, { dedupToken: `json-${batch}` });
    const viaJson = await stored(table);
    await binary.command(`TRUNCATE TABLE ${table}`);
    await binary.insert(table, rows as never, { dedupToken: `binary-${batch}` });
    const viaBinary = await stored(table);
    return { viaJson, viaBinary };
  }

  it('covers every table of TABLE_COLUMNS, with an encoder for each', () => {
    expect(Object.keys(TABLE_COLUMNS).sort()).toEqual([
      'dead_letters',
      'duplicates',
      'inferences',
      'normalised_events',
      'quarantine',
      'raw_events',
    ]);
    for (const [table, columns] of Object.entries(TABLE_COLUMNS)) {
      const described = types.get(table) as Map<string, string>;
      const encoder = rowBinaryEncoder(columns.map((name) => ({ name, type: described.get(name) as string })));
      expect(encoder, table).not.toBeNull();
    }
  });

  for (const table of Object.keys(TABLE_COLUMNS) as TableName[]) {
    it(`${table}: generated rows, edge values included`, async () => {
      const described = types.get(table) as Map<string, string>;
      const row = fc.record(
        Object.fromEntries(
          TABLE_COLUMNS[table].map((c) => [c, arbitraryOf(described.get(c) as string, c)] as const),
        ) as Record<string, fc.Arbitrary<unknown>>,
      );
      const encoder = rowBinaryEncoder(
        TABLE_COLUMNS[table].map((name) => ({ name, type: described.get(name) as string })),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 30 }), async (rows) => {
          // Every generated row is one the encoder writes: the store sends it as RowBinary, not as JSON.
          expect(encoder?.encode(rows, new ByteWriter())).toBe(-1);
          const { viaJson, viaBinary } = await landBoth(table, rows);
          // The insert went through a file of the store's spool directory, removed after it.
          const spool = readdirSync(path.join(dir, 'spool'));
          expect(spool).toHaveLength(1);
          expect(readdirSync(path.join(dir, 'spool', spool[0] as string))).toEqual([]);
          expect(viaBinary.length).toBeGreaterThan(0);
          expect(viaBinary).toEqual(viaJson);
        }),
        { numRuns: 12 },
      );
    }, 180_000);
  }

  it('keeps the rows in their order: the engine keeps the same copy of equal keys as with JSON (10,000 rows, 100 keys)', async () => {
    const described = types.get('duplicates') as Map<string, string>;
    const [base] = fc.sample(
      fc.record(
        Object.fromEntries(
          TABLE_COLUMNS.duplicates.map((c) => [c, arbitraryOf(described.get(c) as string, c)] as const),
        ) as Record<string, fc.Arbitrary<unknown>>,
      ),
      { numRuns: 1, seed: 11 },
    ) as Record<string, unknown>[];
    // duplicates: ORDER BY (site_id, pipeline, source_topic, source_partition, source_offset), version detected_at.
    const rows = Array.from({ length: 10_000 }, (_, i) => ({
      ...base,
      source_offset: i % 100,
      detected_at: '2026-03-10 00:00:00.000',
      event_id: `copy-${i}`,
    }));
    const { viaJson, viaBinary } = await landBoth('duplicates', rows);
    expect(viaBinary).toHaveLength(100);
    // Which copy the engine keeps depends on the rows' order in the block (its sort is not stable): the same copies.
    expect(viaBinary).toEqual(viaJson);
  });

  it('sends a batch the encoder cannot write as JSON, and the engine answers as before', async () => {
    const described = types.get('duplicates') as Map<string, string>;
    const [base] = fc.sample(
      fc.record(
        Object.fromEntries(
          TABLE_COLUMNS.duplicates.map((c) => [c, arbitraryOf(described.get(c) as string, c)] as const),
        ) as Record<string, fc.Arbitrary<unknown>>,
      ),
      { numRuns: 1, seed: 7 },
    ) as Record<string, unknown>[];
    // Stored by the JSON path (wrapped Int32, a number read as a String, a lone surrogate): the same either way.
    const odd = [
      { ...base, source_partition: 2 ** 31 + 5 },
      { ...base, event_id: 12345, source_offset: 1 },
      { ...base, device_id: 'a\udc00b', source_offset: 2 },
    ];
    const { viaJson, viaBinary } = await landBoth('duplicates', odd);
    expect(viaBinary).toHaveLength(3);
    expect(viaBinary).toEqual(viaJson);
    // Refused by the engine: a content refusal (the guard splits the batch), never a crash.
    const refused = await binary
      .insert('duplicates', [{ ...base, detected_at: 'not a time' }] as never, { dedupToken: 'odd-refused' })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'CLICKHOUSE_QUERY_FAILED', retriable: false });
    expect((refused as { clickhouseCode?: number }).clickhouseCode).toBeGreaterThan(0);
  });
});
