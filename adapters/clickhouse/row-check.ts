/**
 * The guard's per-row check compiled once per table and column list: one function that reads each column once and
 * tests the common types inline (`typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi` for an Int32),
 * instead of a Map lookup and a chain of closures per column (column-types.ts), which V8 cannot inline from one call
 * site. A value the inline test does not accept (a wrong value, or a type without an inline test: arrays, tuples,
 * enums, date text) goes to the column's own check, so the problem found and its text are exactly `checkRow`'s.
 *
 * Every inline test accepts only values its column's check accepts; `row-check.test.ts` compares both on every case.
 * The generated source holds column names only as JSON string literals and numbers; never a value.
 */
import { parseType, STRING_MAX_BYTES, type ValueCheck } from './column-types.ts';

/** Returns null when the row fits, else `<column>: <problem>` (or that the row is not an object), as `checkRow`. */
export type RowCheck = (row: unknown) => string | null;

export interface DescribedColumns {
  /** Column name -> check, for every column the table has. */
  readonly columns: ReadonlyMap<string, ValueCheck>;
  /** Column name -> its ClickHouse type name; a column without one is checked through its check only. */
  readonly types?: ReadonlyMap<string, string>;
  /** Columns with a default expression: a row may leave them out. */
  readonly defaulted: ReadonlySet<string>;
}

/**
 * Compiles the check of rows sending `columns` (in that order: the first problem found is the one reported).
 *
 * @example
 * const check = compileRowCheck(checks, TABLE_COLUMNS.duplicates);
 * check(row); // null, or 'sequence: Int64 beyond ±2^53 or out of range'
 */
export function compileRowCheck(described: DescribedColumns, columns: readonly string[]): RowCheck {
  const checks: ValueCheck[] = [];
  const helpers: Helpers = [];
  const lines: string[] = [
    "if (row === null || typeof row !== 'object' || Array.isArray(row)) return 'the row is not an object';",
    'let v; let p;',
  ];
  for (const column of columns) {
    const check = described.columns.get(column);
    if (!check) continue;
    const i = checks.push(check) - 1;
    const type = described.types?.get(column);
    const fast = type === undefined ? null : inlineTest(type, helpers);
    const full = `p = c${i}(v); if (p) return ${JSON.stringify(`${column}: `)} + p;`;
    const slow = described.defaulted.has(column) ? `if (v !== undefined) { ${full} }` : full;
    lines.push(`v = row[${JSON.stringify(column)}];`, fast ? `if (!(${fast})) { ${slow} }` : slow);
  }
  lines.push('return null;');
  const params = [...checks.map((_, i) => `c${i}`), ...helpers.map((_, i) => `h${i}`)];
  const factory = new Function(...params, `return function checkRow(row) {\n${lines.join('\n')}\n};`);
  return factory(...checks, ...helpers) as RowCheck;
}

/** Functions an inline test calls (`h<index>` in its source): element tests of arrays and tuples, `every`. */
type Helpers = unknown[];

/**
 * The inline test of a type as a function (true: the value surely fits; false: ask the type's check), or null when
 * the type has none.
 */
export function valueTest(type: string): ((value: unknown) => boolean) | null {
  const helpers: Helpers = [];
  const test = inlineTest(type, helpers);
  if (test === null) return null;
  const params = helpers.map((_, i) => `h${i}`);
  return new Function(...params, `return function test(v) { return ${test}; };`)(...helpers) as (
    value: unknown,
  ) => boolean;
}

function helper(helpers: Helpers, fn: unknown): string {
  return `h${helpers.push(fn) - 1}`;
}

function every(values: readonly unknown[], test: (value: unknown) => boolean): boolean {
  for (let i = 0; i < values.length; i++) if (!test(values[i])) return false;
  return true;
}

const INT_BITS: Record<string, readonly [number, number]> = {
  Int8: [-(2 ** 7), 2 ** 7 - 1],
  Int16: [-(2 ** 15), 2 ** 15 - 1],
  Int32: [-(2 ** 31), 2 ** 31 - 1],
  UInt8: [0, 2 ** 8 - 1],
  UInt16: [0, 2 ** 16 - 1],
  UInt32: [0, 2 ** 32 - 1],
};
/** 64 bits and more: only safe integers (column-types.ts `intCheck`), within the type's range. */
const WIDE_INTS: Record<string, readonly [bigint, bigint]> = {
  Int64: [-(2n ** 63n), 2n ** 63n - 1n],
  Int128: [-(2n ** 127n), 2n ** 127n - 1n],
  Int256: [-(2n ** 255n), 2n ** 255n - 1n],
  UInt64: [0n, 2n ** 64n - 1n],
  UInt128: [0n, 2n ** 128n - 1n],
  UInt256: [0n, 2n ** 256n - 1n],
};
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * A JavaScript expression over `v` that is true only for values the type's check accepts (it may be false for some
 * of them: those take the full check), or null when the type has no inline test.
 */
export function inlineTest(type: string, helpers: Helpers): string | null {
  const { name, args } = parseType(type);
  if (name === 'Nullable') {
    const inner = inlineTest(args[0] ?? '', helpers);
    return inner ? `(v === null || v === undefined || ${inner})` : '(v === null || v === undefined)';
  }
  if (name === 'LowCardinality') return inlineTest(args[0] ?? '', helpers);
  const small = INT_BITS[name];
  if (small) return `(typeof v === 'number' && Number.isInteger(v) && v >= ${small[0]} && v <= ${small[1]})`;
  const wide = WIDE_INTS[name];
  if (wide) {
    // The same double bounds as column-types.ts (Number(bigint)); String(number) reads back as the same double.
    return `(typeof v === 'number' && Number.isSafeInteger(v) && v >= ${String(Number(wide[0]))} && v <= ${String(Number(wide[1]))})`;
  }
  if (name === 'Float64') return "(typeof v === 'number' && v - v === 0)";
  if (name === 'Float32') return `(typeof v === 'number' && v - v === 0 && Math.abs(v) <= ${String(FLOAT32_MAX)})`;
  if (name === 'Bool' || name === 'Boolean') return "(typeof v === 'boolean')";
  if (name === 'String') return `(typeof v === 'string' && v.length <= ${Math.floor(STRING_MAX_BYTES / 3)})`;
  if (name === 'FixedString') {
    const n = Number(args[0]);
    return Number.isSafeInteger(n) && n >= 0 ? `(typeof v === 'string' && v.length <= ${Math.floor(n / 3)})` : null;
  }
  if (name === 'Array') {
    const item = valueTest(args[0] ?? '');
    return item ? `(Array.isArray(v) && ${helper(helpers, every)}(v, ${helper(helpers, item)}))` : null;
  }
  if (name === 'Tuple') return namedTupleTest(args, helpers);
  return null;
}

/**
 * A tuple of named elements sent as an object (`{ key, value_b64 }`, column-types.ts `tupleCheck`): each element by its
 * own test. A tuple sent as an array, or with an element without a test, takes the full check.
 */
function namedTupleTest(args: readonly string[], helpers: Helpers): string | null {
  const reads: string[] = [];
  for (const arg of args) {
    const named = /^([A-Za-z_][A-Za-z0-9_]*)\s+(\S[\s\S]*)$/.exec(arg.trim());
    if (!named || /^[A-Za-z0-9_]+\(/.test(arg.trim())) return null;
    const test = valueTest(named[2] as string);
    if (!test) return null;
    reads.push(`${helper(helpers, test)}(v[${JSON.stringify(named[1])}])`);
  }
  if (reads.length === 0) return null;
  return `(v !== null && typeof v === 'object' && !Array.isArray(v) && ${reads.join(' && ')})`;
}
