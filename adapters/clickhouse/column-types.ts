/**
 * Checks a row against its table's column types before it is sent, so that a value ClickHouse would refuse (and fail
 * the whole insert with) or, worse, silently store as something else, is found per row. The checks are derived from
 * the type names ClickHouse reports (`system.columns.type`), so every table, including one added by a later migration,
 * is checked without a hand-written list: find the class, not the case.
 *
 * What ClickHouse 26.x does with JSONEachRow values out of their column's range, and why each check exists:
 * - Int32 1e10 is stored wrapped (1410065408), UInt32 2^32 as 0, Int64 2^63 as -2^63: silent corruption. A 64-bit
 *   integer beyond 2^53 cannot even be written exactly as a JSON number, so 64-bit columns take safe integers only.
 * - 1.5 into an Int column, -1 into a UInt column, a bad calendar date, an unknown Enum symbol, a FixedString too long:
 *   the insert is refused (codes 27, 72, 41, 691, 131).
 * - A JS NaN/Infinity becomes JSON `null`, stored as 0 in a non-Nullable Float64: Vigil sends `nan`/`inf`/`-inf`
 *   strings instead (tables.ts `toFloat`), so a non-finite number here is a mapper bug or a hostile value.
 * - `null` into a non-Nullable column is stored as the type's default (0, ''): refused here.
 * Types the checker does not know (Decimal, IPv6, JSON, ...) pass unchecked: the insert path's fallback isolates a
 * refused row by bisection (guard.ts).
 *
 * A problem names the column and the rule, never the value (values may be PHI).
 */
import { DATETIME64_MAX_MS, DATETIME64_MIN_MS } from './tables.ts';

/** Returns null when the value fits, else what is wrong with it (no value quoted). */
export type ValueCheck = (value: unknown) => string | null;

/** Largest string value (UTF-8 bytes) Vigil sends in one column: far above any legitimate field, below engine limits. */
export const STRING_MAX_BYTES = 16 * 1024 * 1024;

const INT_RANGES: Record<string, readonly [bigint, bigint]> = {
  Int8: [-(2n ** 7n), 2n ** 7n - 1n],
  Int16: [-(2n ** 15n), 2n ** 15n - 1n],
  Int32: [-(2n ** 31n), 2n ** 31n - 1n],
  Int64: [-(2n ** 63n), 2n ** 63n - 1n],
  Int128: [-(2n ** 127n), 2n ** 127n - 1n],
  Int256: [-(2n ** 255n), 2n ** 255n - 1n],
  UInt8: [0n, 2n ** 8n - 1n],
  UInt16: [0n, 2n ** 16n - 1n],
  UInt32: [0n, 2n ** 32n - 1n],
  UInt64: [0n, 2n ** 64n - 1n],
  UInt128: [0n, 2n ** 128n - 1n],
  UInt256: [0n, 2n ** 256n - 1n],
};

const FLOAT32_MAX = 3.4028234663852886e38;
const NON_FINITE_TEXT = new Set(['nan', 'inf', '-inf', '+inf']);

/** The time range of each date type, epoch ms (DateTime64: the range tables.ts promises, 1900..2299). */
const DATE_RANGES: Record<string, readonly [number, number]> = {
  DateTime64: [DATETIME64_MIN_MS, DATETIME64_MAX_MS],
  Date32: [DATETIME64_MIN_MS, DATETIME64_MAX_MS],
  DateTime: [0, Date.UTC(2106, 1, 7, 6, 28, 15)],
  Date: [0, Date.UTC(2149, 5, 6)],
};
const DATE_TIME_TEXT = /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?$/;
const UUID_TEXT = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * The check of one ClickHouse type name, e.g. `LowCardinality(Nullable(String))`, `Array(Tuple(key String, value
 * Nullable(String)))`, `DateTime64(3, 'UTC')`, `Enum8('a' = 1, 'b' = 2)`.
 *
 * @example
 * const check = columnCheck('Nullable(Int32)');
 * check(null);  // null (fits)
 * check(1e10);  // 'Int32 out of range'
 */
export function columnCheck(type: string): ValueCheck {
  return build(parseType(type), false);
}

interface TypeNode {
  readonly name: string;
  /** Arguments as written: nested types, numbers, quoted strings, `name Type` pairs of named tuples. */
  readonly args: readonly string[];
}

function build(node: TypeNode, nullable: boolean): ValueCheck {
  const { name, args } = node;
  if (name === 'Nullable') {
    const inner = build(parseType(args[0] ?? ''), true);
    return (v) => (v === null || v === undefined ? null : inner(v));
  }
  if (name === 'LowCardinality') return build(parseType(args[0] ?? ''), nullable);
  const check = base(name, args);
  if (nullable) return check;
  return (v) => (v === null || v === undefined ? `NULL in a non-Nullable ${name} column` : check(v));
}

function base(name: string, args: readonly string[]): ValueCheck {
  const range = INT_RANGES[name];
  if (range) return intCheck(name, range);
  if (name === 'Float64' || name === 'Float32') return floatCheck(name);
  if (name === 'Bool' || name === 'Boolean') {
    return (v) => (typeof v === 'boolean' || v === 0 || v === 1 ? null : 'not a Bool');
  }
  if (name === 'String') return stringCheck(STRING_MAX_BYTES, 'String');
  if (name === 'FixedString') return stringCheck(Number(args[0]), `FixedString(${Number(args[0])})`);
  if (name === 'UUID') return (v) => (typeof v === 'string' && UUID_TEXT.test(v) ? null : 'not a UUID');
  const dates = DATE_RANGES[name];
  if (dates) return dateCheck(name, dates, msPerTick(name, args));
  if (name === 'Enum8' || name === 'Enum16' || name === 'Enum') return enumCheck(name, args);
  if (name === 'Array') {
    const item = build(parseType(args[0] ?? ''), false);
    return (v) => {
      if (!Array.isArray(v)) return 'not an Array';
      for (const x of v) {
        const problem = item(x);
        if (problem) return `in an Array: ${problem}`;
      }
      return null;
    };
  }
  if (name === 'Tuple') return tupleCheck(args);
  if (name === 'Map') {
    const value = build(parseType(args[1] ?? ''), false);
    return (v) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not a Map (JSON object)';
      for (const x of Object.values(v)) {
        const problem = value(x);
        if (problem) return `in a Map: ${problem}`;
      }
      return null;
    };
  }
  // Unknown to the checker: the insert path's fallback isolates what ClickHouse refuses.
  return (v) => (typeof v === 'bigint' ? 'a bigint cannot be sent as JSON' : null);
}

function intCheck(name: string, [min, max]: readonly [bigint, bigint]): ValueCheck {
  const wide = max > 2n ** 32n; // 64 bits and more: beyond 2^53 a JSON number is not exact
  const lo = Number(min);
  const hi = Number(max);
  return (v) => {
    if (typeof v !== 'number') return typeof v === 'bigint' ? 'a bigint cannot be sent as JSON' : `not an ${name}`;
    if (!Number.isInteger(v)) return Number.isFinite(v) ? `not an integer for ${name}` : `non-finite ${name}`;
    if (wide) return Number.isSafeInteger(v) && v >= lo && v <= hi ? null : `${name} beyond ±2^53 or out of range`;
    return v >= lo && v <= hi ? null : `${name} out of range`;
  };
}

function floatCheck(name: string): ValueCheck {
  const limit = name === 'Float32' ? FLOAT32_MAX : Number.MAX_VALUE;
  return (v) => {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return `non-finite number for ${name} (send 'nan'/'inf'/'-inf')`;
      return Math.abs(v) <= limit ? null : `${name} out of range`;
    }
    if (typeof v === 'string' && NON_FINITE_TEXT.has(v)) return null;
    return `not a ${name}`;
  };
}

function stringCheck(maxBytes: number, label: string): ValueCheck {
  return (v) => {
    if (typeof v !== 'string') return `not a ${label}`;
    // Cheap bounds first: UTF-8 needs at least 1 and at most 3 bytes per UTF-16 unit.
    if (v.length * 3 <= maxBytes) return null;
    if (v.length > maxBytes || Buffer.byteLength(v, 'utf8') > maxBytes) return `${label} longer than ${maxBytes} bytes`;
    return null;
  };
}

/** What one unit of a date type's numeric form is worth in ms: DateTime64(p) ticks of 10^-p s, seconds, days. */
function msPerTick(name: string, args: readonly string[]): number {
  if (name === 'DateTime64') return 10 ** (3 - Number(args[0] ?? 3));
  return name === 'DateTime' ? 1000 : 86_400_000;
}

/**
 * Dates as text (`YYYY-MM-DD[ hh:mm:ss[.fff]]`, a real calendar date) or as an integer number of ticks (DateTime64(3):
 * epoch ms, as the drift tables send). Out of range, ClickHouse clamps or wraps them silently (1e20 ms is stored as
 * 9999-12-31, a Date of 70000 days as 1982): refused here. A fractional number of ticks is refused by ClickHouse.
 */
function dateCheck(name: string, [min, max]: readonly [number, number], tickMs: number): ValueCheck {
  const withTime = name.startsWith('DateTime');
  return (v) => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) return `not a whole number of ${name} ticks`;
      const ms = v * tickMs;
      return ms >= min && ms <= max ? null : `${name} outside its range`;
    }
    if (typeof v !== 'string') return `not a ${name}`;
    // The text Vigil's mappers send (`YYYY-MM-DD hh:mm:ss[.fff]`), its day looked up in a cache: the same answer as
    // the full parse below, which takes every other text.
    if (withTime && fitsDateTimeText(v, min, max)) return null;
    const m = DATE_TIME_TEXT.exec(v);
    if (!m || (withTime && m[4] === undefined) || (!withTime && m[4] !== undefined)) return `not a ${name} text`;
    const [y, mo, d, h = 0, mi = 0, s = 0] = m.slice(1, 7).map((x) => (x === undefined ? 0 : Number(x)));
    const ms = Date.UTC(y as number, (mo as number) - 1, d, h, mi, s);
    const date = new Date(ms);
    if (date.getUTCDate() !== d || date.getUTCMonth() !== (mo as number) - 1 || h > 23 || mi > 59 || s > 59) {
      return `not a calendar ${name}`;
    }
    return ms >= min && ms <= max ? null : `${name} outside its range`;
  };
}

/** Day text (`YYYY-MM-DD`) -> its UTC midnight as `Date.UTC` reads it, or NaN when it is not a calendar date. */
const DAY_STARTS = new Map<string, number>();

/**
 * True only when `v` is `YYYY-MM-DD hh:mm:ss` or `YYYY-MM-DD hh:mm:ss.fff`, a calendar date, a time of day and within
 * [min, max] (the full parse's answer; it is asked whenever this says false).
 */
function fitsDateTimeText(v: string, min: number, max: number): boolean {
  const n = v.length;
  if (n !== 19 && n !== 23) return false;
  if (v.charCodeAt(10) !== 32 || v.charCodeAt(13) !== 58 || v.charCodeAt(16) !== 58) return false;
  if (n === 23 && (v.charCodeAt(19) !== 46 || !digits(v, 20, 23))) return false;
  if (!digits(v, 11, 13) || !digits(v, 14, 16) || !digits(v, 17, 19)) return false;
  const h = (v.charCodeAt(11) - 48) * 10 + v.charCodeAt(12) - 48;
  const mi = (v.charCodeAt(14) - 48) * 10 + v.charCodeAt(15) - 48;
  const s = (v.charCodeAt(17) - 48) * 10 + v.charCodeAt(18) - 48;
  if (h > 23 || mi > 59 || s > 59) return false;
  const dayText = v.slice(0, 10);
  let dayStart = DAY_STARTS.get(dayText);
  if (dayStart === undefined) {
    dayStart = Number.NaN;
    if (v.charCodeAt(4) === 45 && v.charCodeAt(7) === 45 && digits(v, 0, 4) && digits(v, 5, 7) && digits(v, 8, 10)) {
      const y = Number(v.slice(0, 4));
      const mo = Number(v.slice(5, 7));
      const d = Number(v.slice(8, 10));
      const start = Date.UTC(y, mo - 1, d);
      const date = new Date(start);
      if (date.getUTCDate() === d && date.getUTCMonth() === mo - 1) dayStart = start;
    }
    if (DAY_STARTS.size >= 4096) DAY_STARTS.clear();
    DAY_STARTS.set(dayText, dayStart);
  }
  const ms = dayStart + h * 3_600_000 + mi * 60_000 + s * 1000;
  return ms >= min && ms <= max;
}

function digits(v: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function enumCheck(name: string, args: readonly string[]): ValueCheck {
  const symbols = new Set<string>();
  const values = new Set<number>();
  for (const arg of args) {
    const m = /^'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)$/.exec(arg.trim());
    if (!m) continue;
    symbols.add((m[1] as string).replace(/\\(.)/g, '$1'));
    values.add(Number(m[2]));
  }
  return (v) => {
    if (typeof v === 'string') return symbols.has(v) ? null : `not a symbol of ${name}`;
    if (typeof v === 'number') return values.has(v) ? null : `not a value of ${name}`;
    return `not a symbol of ${name}`;
  };
}

function tupleCheck(args: readonly string[]): ValueCheck {
  const elements = args.map((arg) => {
    const named = /^([A-Za-z_][A-Za-z0-9_]*)\s+(\S[\s\S]*)$/.exec(arg.trim());
    // `key String` is a named element; `String` or `Nullable(String)` alone is not (a type name never has a space
    // before its parenthesis).
    if (named && !/^[A-Za-z0-9_]+\(/.test(arg.trim())) {
      return { name: named[1] as string, check: columnCheck(named[2] as string) };
    }
    return { name: null, check: columnCheck(arg) };
  });
  return (v) => {
    if (Array.isArray(v)) {
      if (v.length !== elements.length) return `a Tuple of ${elements.length} elements expected`;
      for (const [i, e] of elements.entries()) {
        const problem = e.check(v[i]);
        if (problem) return `in a Tuple: ${problem}`;
      }
      return null;
    }
    if (v !== null && typeof v === 'object' && elements.every((e) => e.name !== null)) {
      for (const e of elements) {
        const problem = e.check((v as Record<string, unknown>)[e.name as string]);
        if (problem) return `in a Tuple: ${problem}`;
      }
      return null;
    }
    return 'not a Tuple';
  };
}

/** `Name(arg, arg, ...)` -> name and top-level arguments (quotes, escapes and nested parentheses respected). */
export function parseType(type: string): TypeNode {
  const text = type.trim();
  const open = text.indexOf('(');
  if (open === -1 || !text.endsWith(')')) return { name: text, args: [] };
  const name = text.slice(0, open).trim();
  const inner = text.slice(open + 1, -1);
  const args: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === "'") quoted = false;
    } else if (c === "'") quoted = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      args.push(inner.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = inner.slice(start).trim();
  if (last.length > 0 || args.length > 0) args.push(last);
  return { name, args };
}
