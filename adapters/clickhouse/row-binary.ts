/**
 * Rows -> ClickHouse RowBinary, for the embedded store's inserts (chdb.ts): the engine reads fixed-width numbers and
 * length-prefixed strings instead of parsing JSON text (~12 µs of parsing per 47-column normalised row, see
 * bench/micro/clickhouse-parse.bench.ts). One encoder per table, generated once from the column types ClickHouse
 * reports (`system.columns.type`, parsed by column-types.ts `parseType`).
 *
 * The encoder takes the rows the mappers build for JSON (tables.ts): DateTime64 as `YYYY-MM-DD hh:mm:ss.sss` text,
 * Float64 as a number or `nan`/`inf`/`-inf`, 64-bit integers as safe JS integers, Tuples as objects
 * by element name (or arrays), EPHEMERAL `*_b64` columns as their base64 text (the table decodes them as before).
 *
 * It is strict: it writes a value only when it is exactly of its column's type (what column-types.ts's checker
 * accepts, minus the conversions ClickHouse's JSON parser would make, such as a number into a String column). For
 * anything else it gives up on the batch (returns the row's index) and the store sends that batch as JSON, as before,
 * so the engine decides about odd values exactly as it always did: refused (a content refusal the guard isolates by
 * bisection) or converted. A value is never guessed at and the encoder never throws on row content.
 */

import { parseType } from './column-types.ts';
import { DATETIME64_MAX_MS, DATETIME64_MIN_MS } from './tables.ts';

/** A growable output buffer, reused from batch to batch. */
export class ByteWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 1 << 20) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  reset(): void {
    this.pos = 0;
  }

  /** The bytes written (a view: valid until the next write). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Writes one value; false when the value is not exactly of the column's type (nothing to roll back: see encoder). */
export type ValueWriter = (w: ByteWriter, value: unknown) => boolean;

/** A table's encoder: writes every row, or returns the index of the first row it cannot write. */
export interface RowBinaryEncoder {
  /** `name Type, ...`: the `structure` argument of `file(path, 'RowBinary', structure)`. */
  readonly structure: string;
  readonly columns: readonly string[];
  /** -1 when every row was written to `w`; else the first row it could not write (w holds a partial batch). */
  encode(rows: readonly object[], w: ByteWriter): number;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The encoder of `columns` (in insert order), with their ClickHouse types; null when a type is not supported (the
 * store keeps JSON for that table).
 *
 * @example
 * const enc = rowBinaryEncoder([{ name: 'id', type: 'String' }, { name: 'at', type: "DateTime64(3, 'UTC')" }]);
 * const w = new ByteWriter();
 * enc?.encode([{ id: 'a', at: '2026-03-10 00:00:00.000' }], w); // -1: w.bytes() is one RowBinary row
 */
export function rowBinaryEncoder(
  columns: readonly { readonly name: string; readonly type: string }[],
): RowBinaryEncoder | null {
  const writers: ValueWriter[] = [];
  for (const { name, type } of columns) {
    if (!IDENTIFIER.test(name)) return null;
    const writer = valueWriter(type);
    if (!writer) return null;
    writers.push(writer);
  }
  // Fixed property loads compile into fast loads (names are checked identifiers, never input).
  const body = [
    'return function encode(rows, w) {',
    '  for (let i = 0; i < rows.length; i++) {',
    '    const r = rows[i];',
    "    if (r === null || typeof r !== 'object') return i;",
    ...columns.map((c, j) => `    if (!f${j}(w, r.${c.name})) return i;`),
    '  }',
    '  return -1;',
    '};',
  ].join('\n');
  const encode = new Function(...writers.map((_, j) => `f${j}`), body)(...writers) as RowBinaryEncoder['encode'];
  const structure = columns.map((c) => `${c.name} ${withoutLowCardinality(c.type)}`).join(', ');
  return { structure, columns: columns.map((c) => c.name), encode };
}

/**
 * The type with every LowCardinality wrapper removed, for the `structure` of `file()`: RowBinary carries the same bytes,
 * and reading into plain columns (the INSERT converts them) costs the engine a third of reading into LowCardinality
 * ones (~2 vs ~5.5 µs per normalised row, bench/micro/clickhouse.bench.ts).
 */
export function withoutLowCardinality(type: string): string {
  const { name, args } = parseType(type);
  if (name === 'LowCardinality') return withoutLowCardinality(args[0] ?? '');
  if (name === 'Nullable' || name === 'Array') return `${name}(${withoutLowCardinality(args[0] ?? '')})`;
  if (name === 'Tuple') {
    const elements = args.map((arg) => {
      const text = arg.trim();
      const named = /^([A-Za-z_][A-Za-z0-9_]*)\s+(\S[\s\S]*)$/.exec(text);
      if (named && !/^[A-Za-z0-9_]+\(/.test(text)) return `${named[1]} ${withoutLowCardinality(named[2] as string)}`;
      return withoutLowCardinality(text);
    });
    return `Tuple(${elements.join(', ')})`;
  }
  return type.trim();
}

/** The writer of one ClickHouse type name, or null when it is not supported. */
export function valueWriter(type: string): ValueWriter | null {
  const { name, args } = parseType(type);
  switch (name) {
    case 'LowCardinality':
      // RowBinary carries a LowCardinality(T) value as a T.
      return valueWriter(args[0] ?? '');
    case 'Nullable': {
      const inner = valueWriter(args[0] ?? '');
      if (!inner) return null;
      return (w, v) => {
        w.ensure(1);
        // undefined too: the JSON path's `JSON.stringify([..])` writes it as null.
        if (v === null || v === undefined) {
          w.buf[w.pos++] = 1;
          return true;
        }
        w.buf[w.pos++] = 0;
        return inner(w, v);
      };
    }
    case 'String':
      return writeString;
    case 'Bool':
    case 'Boolean':
      return writeBool;
    case 'Int8':
      return intWriter(1, -(2 ** 7), 2 ** 7 - 1);
    case 'Int16':
      return intWriter(2, -(2 ** 15), 2 ** 15 - 1);
    case 'Int32':
      return intWriter(4, -(2 ** 31), 2 ** 31 - 1);
    case 'UInt8':
      return intWriter(1, 0, 2 ** 8 - 1);
    case 'UInt16':
      return intWriter(2, 0, 2 ** 16 - 1);
    case 'UInt32':
      return intWriter(4, 0, 2 ** 32 - 1);
    case 'Int64':
      return writeInt64;
    case 'UInt64':
      return writeUInt64;
    case 'Float64':
      return writeFloat64;
    case 'DateTime64': {
      // Only millisecond precision: the mappers' text has milliseconds, the drift tables send epoch ms.
      if (Number(args[0]) !== 3) return null;
      return writeDateTime64ms;
    }
    case 'Enum8':
      return enum8Writer(args);
    case 'Array': {
      const item = valueWriter(args[0] ?? '');
      if (!item) return null;
      return (w, v) => {
        if (!Array.isArray(v)) return false;
        writeVarUInt(w, v.length);
        for (let i = 0; i < v.length; i++) if (!item(w, v[i])) return false;
        return true;
      };
    }
    case 'Tuple':
      return tupleWriter(args);
    default:
      return null;
  }
}

function writeVarUInt(w: ByteWriter, n: number): void {
  w.ensure(10);
  const buf = w.buf;
  let p = w.pos;
  while (n >= 0x80) {
    buf[p++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[p++] = n;
  w.pos = p;
}

function writeString(w: ByteWriter, v: unknown): boolean {
  if (typeof v !== 'string') return false;
  const n = v.length;
  if (n < 128) {
    // Short strings: ASCII copied by hand (one length byte), which beats a native call per string.
    w.ensure(1 + 3 * n);
    const buf = w.buf;
    const start = w.pos;
    let p = start + 1;
    for (let i = 0; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0x80) return writeLongString(w, v);
      buf[p++] = c;
    }
    buf[start] = n;
    w.pos = p;
    return true;
  }
  return writeLongString(w, v);
}

/** With the `u` flag a surrogate pair is one code point: this matches only an unpaired half. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function writeLongString(w: ByteWriter, v: string): boolean {
  // A lone surrogate: JSON carries it escaped and the engine's JSON parser decides what it becomes; Buffer would write
  // U+FFFD. Not guessed: the batch goes as JSON.
  if (LONE_SURROGATE.test(v)) return false;
  const bytes = Buffer.byteLength(v, 'utf8');
  writeVarUInt(w, bytes);
  w.ensure(bytes);
  w.buf.write(v, w.pos, bytes, 'utf8');
  w.pos += bytes;
  return true;
}

function writeBool(w: ByteWriter, v: unknown): boolean {
  let b: number;
  if (v === true || v === 1) b = 1;
  else if (v === false || v === 0) b = 0;
  else return false;
  w.ensure(1);
  w.buf[w.pos++] = b;
  return true;
}

function intWriter(bytes: 1 | 2 | 4, min: number, max: number): ValueWriter {
  const signed = min < 0;
  return (w, v) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return false;
    w.ensure(bytes);
    const buf = w.buf;
    const p = w.pos;
    if (bytes === 1) buf[p] = v & 0xff;
    else if (bytes === 2) {
      buf[p] = v & 0xff;
      buf[p + 1] = (v >> 8) & 0xff;
    } else if (signed) buf.writeInt32LE(v, p);
    else buf.writeUInt32LE(v, p);
    w.pos = p + bytes;
    return true;
  };
}

const TWO_32 = 2 ** 32;

/** A safe integer as 8 little-endian bytes (two's complement), without a BigInt. */
function write64(w: ByteWriter, v: number): void {
  w.ensure(8);
  const lo = v >>> 0; // v mod 2^32, also for negative v
  const hi = Math.floor(v / TWO_32); // |v| < 2^53: fits an Int32
  w.buf.writeUInt32LE(lo, w.pos);
  w.buf.writeInt32LE(hi, w.pos + 4);
  w.pos += 8;
}

function writeInt64(w: ByteWriter, v: unknown): boolean {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) return false;
  write64(w, v);
  return true;
}

function writeUInt64(w: ByteWriter, v: unknown): boolean {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return false;
  write64(w, v);
  return true;
}

function writeFloat64(w: ByteWriter, v: unknown): boolean {
  let x: number;
  if (typeof v === 'number')
    x = v === 0 ? 0 : v; // -0: JSON writes it as 0
  else if (v === 'nan') x = Number.NaN;
  else if (v === 'inf' || v === '+inf') x = Number.POSITIVE_INFINITY;
  else if (v === '-inf') x = Number.NEGATIVE_INFINITY;
  else return false;
  // JSON has no non-finite number (JSON.stringify writes null): the JSON path's behaviour stays the engine's.
  if (typeof v === 'number' && !Number.isFinite(v)) return false;
  w.ensure(8);
  w.buf.writeDoubleLE(x, w.pos);
  w.pos += 8;
  return true;
}

/** The last date seen, as the number YYYYMMDD, and its epoch ms (a batch's timestamps share a few days). */
let cachedDay = -1;
let cachedDayMs = 0;

/** The decimal number in `v` at [from, to), or -1 when a character is not a digit. No closure: it runs per value. */
function digits(v: string, from: number, to: number): number {
  let x = 0;
  for (let i = from; i < to; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    x = x * 10 + d;
  }
  return x;
}

/**
 * `YYYY-MM-DD hh:mm:ss.sss` (what tables.ts toDateTime64 writes) -> Int64 ms ticks, or null for a text of any other
 * shape, an impossible date or a time outside 1900..2299 (the JSON path keeps the engine's answer for those).
 */
export function dateTime64Ms(v: unknown): number | null {
  if (typeof v !== 'string' || v.length !== 23) return null;
  if (
    v.charCodeAt(4) !== 45 ||
    v.charCodeAt(7) !== 45 ||
    v.charCodeAt(10) !== 32 ||
    v.charCodeAt(13) !== 58 ||
    v.charCodeAt(16) !== 58 ||
    v.charCodeAt(19) !== 46
  ) {
    return null;
  }
  const y = digits(v, 0, 4);
  const mo = digits(v, 5, 7);
  const d = digits(v, 8, 10);
  if (y < 0 || mo < 0 || d < 0) return null;
  const day = y * 10_000 + mo * 100 + d;
  let dayMs: number;
  if (day === cachedDay) dayMs = cachedDayMs;
  else {
    dayMs = Date.UTC(y, mo - 1, d);
    const date = new Date(dayMs);
    if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
    cachedDay = day;
    cachedDayMs = dayMs;
  }
  const h = digits(v, 11, 13);
  const mi = digits(v, 14, 16);
  const sec = digits(v, 17, 19);
  const milli = digits(v, 20, 23);
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 || milli < 0) return null;
  const ms = dayMs + h * 3_600_000 + mi * 60_000 + sec * 1000 + milli;
  return ms >= DATETIME64_MIN_MS && ms <= DATETIME64_MAX_MS ? ms : null;
}

function writeDateTime64ms(w: ByteWriter, v: unknown): boolean {
  const ms = dateTime64Ms(v);
  if (ms === null) return false;
  write64(w, ms);
  return true;
}

function enum8Writer(args: readonly string[]): ValueWriter | null {
  const bySymbol = new Map<string, number>();
  const values = new Set<number>();
  for (const arg of args) {
    const m = /^'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)$/.exec(arg.trim());
    if (!m) return null;
    const value = Number(m[2]);
    bySymbol.set((m[1] as string).replace(/\\(.)/g, '$1'), value);
    values.add(value);
  }
  return (w, v) => {
    const value = typeof v === 'string' ? bySymbol.get(v) : typeof v === 'number' && values.has(v) ? v : undefined;
    if (value === undefined) return false;
    w.ensure(1);
    w.buf[w.pos++] = value & 0xff;
    return true;
  };
}

function tupleWriter(args: readonly string[]): ValueWriter | null {
  const elements: { name: string | null; write: ValueWriter }[] = [];
  for (const arg of args) {
    const text = arg.trim();
    const named = /^([A-Za-z_][A-Za-z0-9_]*)\s+(\S[\s\S]*)$/.exec(text);
    const isNamed = named !== null && !/^[A-Za-z0-9_]+\(/.test(text);
    const write = valueWriter(isNamed ? (named[2] as string) : text);
    if (!write) return null;
    elements.push({ name: isNamed ? (named[1] as string) : null, write });
  }
  const byName = elements.every((e) => e.name !== null);
  return (w, v) => {
    if (Array.isArray(v)) {
      if (v.length !== elements.length) return false;
      for (let i = 0; i < elements.length; i++) if (!(elements[i] as (typeof elements)[0]).write(w, v[i])) return false;
      return true;
    }
    if (!byName || v === null || typeof v !== 'object') return false;
    const o = v as Record<string, unknown>;
    for (const e of elements) {
      const x = o[e.name as string];
      // JSON.stringify leaves out an undefined member and the engine fills the default: not guessed here.
      if (x === undefined || !e.write(w, x)) return false;
    }
    return true;
  };
}
