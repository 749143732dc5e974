import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { columnCheck, STRING_MAX_BYTES } from './column-types.ts';
import { checkRow, type TableChecks } from './guard.ts';
import { compileRowCheck, inlineTest, valueTest } from './row-check.ts';

const TYPES = [
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'Int128',
  'UInt8',
  'UInt16',
  'UInt32',
  'UInt64',
  'UInt256',
  'Nullable(Int64)',
  'Nullable(Int32)',
  'Float64',
  'Float32',
  'Nullable(Float64)',
  'Bool',
  'String',
  'Nullable(String)',
  'LowCardinality(String)',
  'LowCardinality(Nullable(String))',
  'FixedString(2)',
  'FixedString(64)',
  'UUID',
  "DateTime64(3, 'UTC')",
  "Nullable(DateTime64(3, 'UTC'))",
  "DateTime('UTC')",
  'Date',
  "Enum8('a' = 1, 'b' = 2)",
  'Array(Int32)',
  'Array(LowCardinality(String))',
  'Array(Tuple(key String, value_b64 Nullable(String)))',
  'Map(String, Float64)',
  'Tuple(a Int32, b Nullable(String))',
  'Tuple(Int32, String)',
  'Decimal(10, 2)',
];

/** Values around every boundary the checks have, and of every JavaScript kind. */
const VALUES: unknown[] = [
  0,
  -0,
  1,
  -1,
  1.5,
  127,
  128,
  -128,
  -129,
  255,
  256,
  2 ** 15,
  2 ** 16,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  -(2 ** 31) - 1,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  -(2 ** 53) + 1,
  2 ** 60,
  2 ** 63,
  2 ** 64,
  1e10,
  1e20,
  1e39,
  -1e39,
  3.4e38,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  17e11,
  17e14,
  17e17,
  19_000,
  70_000,
  5n,
  null,
  undefined,
  true,
  false,
  '',
  'a',
  'ab',
  'abc',
  'éé',
  'x'.repeat(64),
  'x'.repeat(65),
  'nan',
  'inf',
  '-inf',
  '12',
  '2026-03-10 08:00:00.123',
  '2026-02-30 00:00:00.000',
  '2026-03-10',
  '123e4567-e89b-12d3-a456-426614174000',
  [],
  [1, 2],
  [1, 1e10],
  ['a'],
  [{ key: 'k', value_b64: null }],
  [{ key: 'k', value_b64: 5 }],
  {},
  { a: 1, b: 'x' },
  { a: 1, b: null },
  { a: 1.5, b: 'x' },
  [1, 'x'],
  [1, 'x', 2],
  { key: 'k', value_b64: 'eA==' },
  [
    { key: 'k', value_b64: 'eA==' },
    { key: 'k2', value_b64: null },
  ],
  '2026-03-10 08:00:00',
  '2026-03-10 24:00:00',
  '2026-03-10 23:60:00.000',
  '2024-02-29 12:00:00.000',
  '2023-02-29 12:00:00.000',
  '1900-01-01 00:00:00.000',
  '1899-12-31 23:59:59.999',
  '2299-12-31 23:59:59.999',
  '2300-01-01 00:00:00.000',
  '0050-01-01 00:00:00.000',
  '2106-02-07 06:28:15',
  '2106-02-07 06:28:16',
  '1970-01-01 00:00:00',
  '2026-03-10 08:00:00.1234',
  '2026-03-10 08:00:00.12',
  '2026-3-10 08:00:00.123',
  '2026-03-10x08:00:00.123',
  '２026-03-10 08:00:00.123',
  { a: 1.5 },
  { a: Number.NaN },
];

function described(types: Record<string, string>, defaulted: string[] = []): TableChecks {
  return {
    table: 't',
    columns: new Map(Object.entries(types).map(([c, t]) => [c, columnCheck(t)])),
    types: new Map(Object.entries(types)),
    defaulted: new Set(defaulted),
  };
}

describe('compileRowCheck', () => {
  it("finds exactly checkRow's problem for every type and value", () => {
    for (const type of TYPES) {
      for (const defaulted of [false, true]) {
        const checks = described({ c: type }, defaulted ? ['c'] : []);
        const compiled = compileRowCheck(checks, ['c']);
        for (const value of VALUES) {
          const row = { c: value };
          expect(compiled(row), `${type} ${String(value)}`).toBe(checkRow(checks, ['c'], row));
        }
        expect(compiled({}), type).toBe(checkRow(checks, ['c'], {}));
      }
    }
  });

  it('reports the first problem in column order, skips columns the table lacks, refuses non-objects', () => {
    const checks = described({ a: 'Int32', b: 'String', d: 'Nullable(Float64)' }, ['d']);
    const columns = ['b', 'missing', 'a', 'd'];
    const compiled = compileRowCheck(checks, columns);
    const rows: unknown[] = [
      { a: 1, b: 'x' },
      { a: 1e10, b: 5 },
      { a: 1e10, b: 'x' },
      { a: 1, b: 'x', d: Number.NaN },
      { a: 1, b: 'x', d: undefined },
      { a: 1, b: 'x', missing: 1n },
      null,
      [],
      'row',
      7,
    ];
    for (const row of rows) expect(compiled(row)).toBe(checkRow(checks, columns, row));
    expect(compiled({ a: 1e10, b: 5 })).toBe('b: not a String');
  });

  it('a checker without type names checks through the column checks alone', () => {
    const checks = { ...described({ a: 'Int32' }), types: undefined };
    expect(compileRowCheck(checks, ['a'])({ a: 1e10 })).toBe('a: Int32 out of range');
    expect(compileRowCheck(checks, ['a'])({ a: 1 })).toBeNull();
  });

  it('column names are quoted in the generated source, never evaluated', () => {
    const name = "x'); throw new Error('no'); ('";
    const checks = described({ [name]: 'Int32' });
    expect(compileRowCheck(checks, [name])({ [name]: 1.5 })).toBe(`${name}: not an integer for Int32`);
  });

  it('an inline test accepts only what its check accepts (property)', () => {
    const value = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.bigInt(),
      fc.string({ maxLength: 70 }),
      fc.boolean(),
      fc.constantFrom(null, undefined, 2 ** 31, 2 ** 53, 2 ** 64, -(2 ** 63)),
    );
    for (const type of TYPES) {
      const inline = valueTest(type);
      if (inline === null) continue;
      const check = columnCheck(type);
      fc.assert(
        fc.property(value, (v) => !inline(v) || check(v) === null),
        { numRuns: 500 },
      );
    }
    expect(inlineTest('String', [])).toContain(String(Math.floor(STRING_MAX_BYTES / 3)));
  });
});

/** column-types.ts's date text check before its cached fast path: the reference the fast path must equal. */
function referenceDateText(name: string, [min, max]: readonly [number, number]) {
  const text = /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?$/;
  return (v: string): string | null => {
    const m = text.exec(v);
    if (!m || m[4] === undefined) return `not a ${name} text`;
    const [y, mo, d, h = 0, mi = 0, s = 0] = m.slice(1, 7).map((x) => (x === undefined ? 0 : Number(x)));
    const ms = Date.UTC(y as number, (mo as number) - 1, d, h, mi, s);
    const date = new Date(ms);
    if (date.getUTCDate() !== d || date.getUTCMonth() !== (mo as number) - 1 || h > 23 || mi > 59 || s > 59) {
      return `not a calendar ${name}`;
    }
    return ms >= min && ms <= max ? null : `${name} outside its range`;
  };
}

describe('date text checks', () => {
  const cases: [string, readonly [number, number]][] = [
    ["DateTime64(3, 'UTC')", [Date.UTC(1900, 0, 1), Date.UTC(2299, 11, 31, 23, 59, 59, 999)]],
    ["DateTime('UTC')", [0, Date.UTC(2106, 1, 7, 6, 28, 15)]],
  ];
  const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, '0'));
  const text = fc
    .tuple(
      fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(1899, 1900, 1970, 2106, 2299, 2300)),
      two(13),
      two(32),
      two(25),
      two(61),
      two(61),
      fc.oneof(
        fc.constant(''),
        fc.integer({ min: 0, max: 999 }).map((n) => `.${String(n).padStart(3, '0')}`),
      ),
      fc.constantFrom(' ', ' ', ' ', 'T', ':'),
    )
    .map(([y, mo, d, h, mi, s, f, sep]) => `${String(y).padStart(4, '0')}-${mo}-${d}${sep}${h}:${mi}:${s}${f}`);
  for (const [type, range] of cases) {
    it(`${type}: the cached text path gives the full parse's answer`, () => {
      const check = columnCheck(type);
      const name = type.slice(0, type.indexOf('('));
      const reference = referenceDateText(name, range);
      fc.assert(
        fc.property(text, (v) => check(v) === reference(v)),
        { numRuns: 20_000 },
      );
      for (const v of VALUES) if (typeof v === 'string') expect(check(v), v).toBe(reference(v));
    });
  }
});
