import { describe, expect, it } from 'vitest';
import { columnCheck, parseType, STRING_MAX_BYTES } from './column-types.ts';

/** [type, values that fit, values that do not] */
const CASES: [string, unknown[], unknown[]][] = [
  ['Int32', [0, -(2 ** 31), 2 ** 31 - 1], [1e10, 2 ** 31, 1.5, Number.NaN, '12', null, undefined, 5n]],
  ['UInt8', [0, 255], [-1, 256]],
  ['UInt32', [2 ** 32 - 1], [2 ** 32, -1]],
  ['Int64', [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER], [2 ** 60, 2 ** 63, 1e300]],
  ['UInt64', [0, 2 ** 53 - 1], [-1, 2 ** 64]],
  ['Nullable(Int64)', [null, undefined, 42], [1.5e300, 'x']],
  ['Float64', [1.5, -0, 'nan', 'inf', '-inf', Number.MAX_VALUE], [Number.NaN, Number.POSITIVE_INFINITY, null, '1.5']],
  ['Float32', [3.4e38, 'nan'], [1e39]],
  ['Nullable(Float64)', [null, 'nan'], [Number.NaN]],
  ['Bool', [true, false, 0, 1], [2, 'true', null]],
  ['String', ['', 'é', 'x'.repeat(1000)], [5, null, { a: 1 }]],
  ['LowCardinality(Nullable(String))', [null, 'a'], [7]],
  ['FixedString(2)', ['ab', 'a'], ['abc', 'éé']],
  ['UUID', ['123e4567-e89b-12d3-a456-426614174000'], ['123e4567', 1]],
  [
    "DateTime64(3, 'UTC')",
    ['2026-03-10 08:00:00.123', '1900-01-01 00:00:00.000', '2299-12-31 23:59:59.999', '2026-03-10 08:00:00', 17e11],
    [
      '2026-02-30 00:00:00.000',
      '2026-03-10T08:00:00Z',
      '2300-01-01 00:00:00.000',
      '1899-12-31 23:59:59.999',
      '2026-03-10',
      '2026-03-10 24:00:00',
      1.5,
      1e20,
      null,
    ],
  ],
  ["DateTime64(6, 'UTC')", [17e14], [17e17]],
  ["DateTime('UTC')", ['2026-03-10 08:00:00', 1_700_000_000], ['1969-12-31 23:59:59', 5e9]],
  ['Date', ['2026-03-10', 19_000], ['2026-03-10 08:00:00', 70_000]],
  ["Enum8('a' = 1, 'b, (c)' = 2, 'it\\'s' = 3)", ['a', 'b, (c)', "it's", 2], ['zz', 9, null]],
  ['Array(Int32)', [[], [1, 2]], [[1, 1e10], 'x', null]],
  ['Array(LowCardinality(String))', [['a']], [[1]]],
  ['Array(Float64)', [[1, 'nan']], [[Number.NaN]]],
  [
    'Array(Tuple(key String, value_b64 Nullable(String)))',
    [[{ key: 'k', value_b64: null }], [['k', 'dg==']]],
    [[{ key: 1, value_b64: null }], [{ value_b64: null }], [['k']]],
  ],
  ['Tuple(String, Nullable(Int32))', [['a', null]], [['a', 1e10], { 0: 'a' }]],
  ['Map(String, Int32)', [{ a: 1 }], [{ a: 1e10 }, [1]]],
  ['Decimal(9, 2)', [1.5, 'anything'], [1n]],
];

describe('columnCheck', () => {
  for (const [type, fit, misfit] of CASES) {
    it(`${type}: accepts what ClickHouse stores exactly, refuses what it would refuse or change`, () => {
      const check = columnCheck(type);
      for (const v of fit) expect(check(v), `${type} ${String(v)}`).toBeNull();
      for (const v of misfit) expect(check(v), `${type} ${String(v)}`).toEqual(expect.any(String));
    });
  }

  it('names the rule, never the value', () => {
    const check = columnCheck('Nullable(Int32)');
    expect(check(1234567890123)).toBe('Int32 out of range');
    expect(columnCheck('String')(12345)).toBe('not a String');
    expect(columnCheck("DateTime64(3, 'UTC')")('2999-01-01 00:00:00.000')).toBe('DateTime64 outside its range');
  });

  it('caps string size in UTF-8 bytes', () => {
    const check = columnCheck('String');
    expect(check('a'.repeat(STRING_MAX_BYTES))).toBeNull();
    expect(check('a'.repeat(STRING_MAX_BYTES + 1))).toMatch(/longer than/);
    expect(check('é'.repeat(STRING_MAX_BYTES / 2 + 1))).toMatch(/longer than/);
  });
});

describe('parseType', () => {
  it('splits top-level arguments, respecting quotes, escapes and nesting', () => {
    expect(parseType("Enum8('a,b' = 1, 'c)\\'' = 2)")).toEqual({ name: 'Enum8', args: ["'a,b' = 1", "'c)\\'' = 2"] });
    expect(parseType('Map(String, Array(Tuple(Int32, String)))')).toEqual({
      name: 'Map',
      args: ['String', 'Array(Tuple(Int32, String))'],
    });
    expect(parseType('String')).toEqual({ name: 'String', args: [] });
  });
});
