/**
 * Schema-specialised Avro writers for the hot path: the worker encodes ~3 output values per event, and avsc's generic
 * writer spends most of its time dispatching per field (`type._write`, its checks) and on strings
 * (`Buffer.byteLength` then a second pass to copy, for ~35 strings per normalised record, nearly all short ASCII).
 *
 * `compileWriter(type)` generates, once per record Type, one function that writes the record's fields straight onto
 * avsc's own Tap: short ASCII strings in a single pass, ints and longs with avsc's checks, `["null", X]` unions
 * inline, arrays of those, nested records as generated calls; every other type (wrapped unions such as the payload,
 * maps, fixed, bytes, floats) is delegated to avsc's `_write` for that sub-type, on the same Tap. The bytes are
 * exactly avsc's (`Type#toBuffer`): writer.test.ts checks that on generated records of every output schema and on the
 * golden fixtures. Invalid values throw as avsc's writer does (callers turn that into their own error).
 *
 * `FramedWriter` frames values in the Confluent wire format into large shared chunks and returns views of them: one
 * Buffer object per value, no scratch copy. librdkafka copies a value when it is produced (node-rdkafka produces with
 * RK_MSG_COPY), and a chunk is never written again once a view of it was handed out, so the views stay valid for as
 * long as anybody holds them (the chunk is freed with its last view).
 *
 * Relies on avsc 5.7.9 internals (pinned): the Tap class (`avsc/lib/utils`: `buf`, `pos`, `write*`), the Types'
 * `fields`/`itemsType`/`types`/`_indices`/`_write` and `RecordType#_write` (see harden.ts for the same caveat).
 */
import { createRequire } from 'node:module';
import type avsc from 'avsc';

type TapBuffer = Buffer & { utf8Write(s: string, offset: number, length: number): number };

interface Tap {
  buf: TapBuffer;
  pos: number;
  isValid(): boolean;
  writeLong(n: number): void;
  writeString(s: string): void;
  writeDouble(d: number): void;
  writeBoolean(b: boolean): void;
  writeBinary(s: string, len: number): void;
}

const require = createRequire(import.meta.url);
const { Tap: AvscTap } = require('avsc/lib/utils') as { Tap: new (buf: Buffer, pos?: number) => Tap };

/** A generated writer: writes `value` at `tap.pos` (the tap is invalid afterwards when the buffer was too small). */
export type CompiledWriter = (tap: Tap, value: unknown) => void;

interface AnyType {
  readonly typeName: string;
  readonly name?: string;
  readonly fields?: readonly { readonly name: string; readonly type: AnyType; defaultValue(): unknown }[];
  readonly itemsType?: AnyType;
  readonly types?: readonly AnyType[];
  readonly _indices?: Record<string, number>;
  _write(tap: Tap, value: unknown): void;
  toBuffer(value: unknown): Buffer;
}

function invalid(value: unknown, type: AnyType): never {
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  throw new Error(`invalid ${type.name ?? type.typeName}: ${shown.slice(0, 80)}`);
}

/**
 * avsc's `Tap#writeString`, the same bytes, in one pass for the common case: a string shorter than 128 UTF-16 units
 * that is all ASCII has as many bytes as units, so its length (a zig-zag varint) takes one byte below 64 and two from
 * 64 (the 64-character hex hashes). Anything else goes to avsc's own writer, which counts `Buffer.byteLength` first
 * (and, for <= 64 bytes, then encodes by hand, lone surrogates included: its bytes stay the reference).
 */
function writeString(tap: Tap, s: string): void {
  const n = s.length;
  if (n < 128) {
    const buf = tap.buf;
    const head = n < 64 ? 1 : 2;
    const start = tap.pos + head;
    if (n >= 32) {
      // Native copy for the longer ones (ids, hashes): as many bytes as units means every unit was ASCII — but only
      // when the whole string fits (3 bytes per unit at most). With less room utf8Write stops early, and a non-ASCII
      // prefix can fill exactly n bytes with a string cut short.
      if (start + 3 * n <= buf.length && buf.utf8Write(s, start, 3 * n) === n) {
        finishAscii(tap, start, n, head);
        return;
      }
    } else if (start + n <= buf.length) {
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
      if (i === n) {
        finishAscii(tap, start, n, head);
        return;
      }
    }
  }
  tap.writeString(s);
}

/** Writes the zig-zag length (one or two bytes, `head`) in front of `n` ASCII bytes already at `start`, and moves on. */
function finishAscii(tap: Tap, start: number, n: number, head: number): void {
  const buf = tap.buf;
  if (head === 1) {
    buf[start - 1] = n << 1;
  } else {
    buf[start - 2] = ((n << 1) & 0x7f) | 0x80;
    buf[start - 1] = n >> 6;
  }
  tap.pos = start + n;
}

function isSafeLong(n: number): boolean {
  return n >= -9007199254740990 && n <= 9007199254740990;
}

/** avsc's long check and zig-zag varint, with a one-byte fast path for 0..63. */
function writeLong(tap: Tap, v: unknown, type: AnyType): void {
  if (typeof v !== 'number' || v % 1 || !isSafeLong(v)) invalid(v, type);
  if (v >= 0 && v < 64) {
    tap.buf[tap.pos++] = v << 1;
    return;
  }
  tap.writeLong(v);
}

function writeInt(tap: Tap, v: unknown, type: AnyType): void {
  if (v !== ((v as number) | 0)) invalid(v, type);
  if ((v as number) >= 0 && (v as number) < 64) {
    tap.buf[tap.pos++] = (v as number) << 1;
    return;
  }
  tap.writeLong(v as number);
}

// As Node's Buffer#writeDoubleLE (which avsc's Tap#writeDouble calls): the double stored through a Float64Array.
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** avsc's `Tap#writeDouble` (little-endian IEEE 754, 8 bytes) without its two calls; the tap goes invalid when full. */
function writeDouble(tap: Tap, d: number): void {
  if (!LITTLE_ENDIAN) {
    tap.writeDouble(d);
    return;
  }
  const pos = tap.pos;
  tap.pos = pos + 8;
  const buf = tap.buf;
  if (pos + 8 > buf.length) return;
  f64[0] = d;
  buf[pos] = f64Bytes[0]!;
  buf[pos + 1] = f64Bytes[1]!;
  buf[pos + 2] = f64Bytes[2]!;
  buf[pos + 3] = f64Bytes[3]!;
  buf[pos + 4] = f64Bytes[4]!;
  buf[pos + 5] = f64Bytes[5]!;
  buf[pos + 6] = f64Bytes[6]!;
  buf[pos + 7] = f64Bytes[7]!;
}

const HELPERS = { writeString, writeLong, writeInt, writeDouble, invalid };

/** A JS property access for a field name (Avro names are identifiers, but quote anything unusual). */
function access(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
}

class Compiler {
  readonly args: unknown[] = [];
  readonly names: string[] = [];
  readonly #records = new Map<AnyType, string>();
  readonly #pending: { type: AnyType; fn: string }[] = [];
  readonly bodies: string[] = [];

  constant(value: unknown): string {
    const name = `c${this.args.length}`;
    this.args.push(value);
    this.names.push(name);
    return name;
  }

  /** Statements writing `expr` (a side-effect-free variable name) of `type` onto tap `t`. */
  statements(type: AnyType, expr: string, depth: number): string {
    const t = this.constant(type);
    switch (type.typeName) {
      case 'string':
        return `if (typeof ${expr} !== 'string') h.invalid(${expr}, ${t}); h.writeString(t, ${expr});`;
      case 'long':
        return `h.writeLong(t, ${expr}, ${t});`;
      case 'int':
        return `h.writeInt(t, ${expr}, ${t});`;
      case 'double':
        return `if (typeof ${expr} !== 'number') h.invalid(${expr}, ${t}); h.writeDouble(t, ${expr});`;
      case 'boolean':
        return `if (typeof ${expr} !== 'boolean') h.invalid(${expr}, ${t}); t.buf[t.pos++] = ${expr} ? 1 : 0;`;
      case 'null':
        return `if (${expr} !== null) h.invalid(${expr}, ${t});`;
      case 'enum': {
        const indices = this.constant(type._indices);
        const i = `i${depth}`;
        return `{ const ${i} = ${indices}[${expr}]; if (${i} === undefined) h.invalid(${expr}, ${t}); h.writeLong(t, ${i}, ${t}); }`;
      }
      case 'array': {
        const items = type.itemsType!;
        const n = `n${depth}`;
        const k = `k${depth}`;
        const item = `a${depth}`;
        return (
          `if (!Array.isArray(${expr})) h.invalid(${expr}, ${t}); { const ${n} = ${expr}.length; ` +
          `if (${n}) { h.writeLong(t, ${n}, ${t}); for (let ${k} = 0; ${k} < ${n}; ${k}++) { const ${item} = ${expr}[${k}]; ` +
          `${this.statements(items, item, depth + 1)} } } t.buf[t.pos++] = 0; }`
        );
      }
      case 'union:unwrapped': {
        const branches = type.types!;
        if (branches.length === 2 && branches[0]!.typeName === 'null' && this.#inlinable(branches[1]!)) {
          const branch = branches[1]!;
          // avsc picks the branch by the value's kind: an array or a Buffer is no record.
          const guard =
            branch.typeName === 'record'
              ? `if (Array.isArray(${expr}) || Buffer.isBuffer(${expr})) h.invalid(${expr}, ${t}); `
              : '';
          return `if (${expr} === null) { t.buf[t.pos++] = 0; } else { ${guard}t.buf[t.pos++] = 2; ${this.statements(branch, expr, depth + 1)} }`;
        }
        return `${t}._write(t, ${expr});`;
      }
      case 'union:wrapped': {
        // As avsc's WrappedUnionType#_write: null, or an object with exactly one key naming the branch.
        const indices = this.constant((type as unknown as { _branchIndices: Record<string, number> })._branchIndices);
        const [ks, ix, nm, b] = [`ks${depth}`, `ix${depth}`, `nm${depth}`, `b${depth}`];
        let cases = '';
        type.types!.forEach((branch, i) => {
          cases += `case ${i}: { ${this.statements(branch, b, depth + 1)} break; } `;
        });
        return (
          `if (${expr} === null) { const ${ix} = ${indices}['null']; if (${ix} === undefined) h.invalid(${expr}, ${t}); h.writeLong(t, ${ix}, ${t}); } ` +
          // Own enumerable keys counted with for-in (Object.keys' set, without its array per value).
          `else { let ${ks} = 0; let ${ix}; let ${nm}; for (const k in ${expr}) { if (hasOwn(${expr}, k)) { ${nm} = k; ${ks}++; } } if (${ks} === 1) { ${ix} = ${indices}[${nm}]; } ` +
          `if (${ix} === undefined) h.invalid(${expr}, ${t}); h.writeLong(t, ${ix}, ${t}); const ${b} = ${expr}[${nm}]; ` +
          `switch (${ix}) { ${cases}} }`
        );
      }
      case 'record':
      case 'error':
        return `${this.#record(type)}(t, ${expr});`;
      default:
        // Wrapped unions, maps, fixed, bytes, floats, logical types: avsc's own writer for that sub-type.
        return `${t}._write(t, ${expr});`;
    }
  }

  /** Types whose generated check rejects what avsc's unwrapped union would refuse for the non-null branch. */
  #inlinable(type: AnyType): boolean {
    return ['string', 'long', 'int', 'double', 'boolean', 'enum', 'record'].includes(type.typeName);
  }

  #record(type: AnyType): string {
    const known = this.#records.get(type);
    if (known) return known;
    const fn = `w${this.#records.size}`;
    this.#records.set(type, fn);
    this.#pending.push({ type, fn });
    return fn;
  }

  compile(root: AnyType): CompiledWriter {
    const rootFn = this.#record(root);
    for (let next = this.#pending.shift(); next; next = this.#pending.shift()) {
      const { type, fn } = next;
      const t = this.constant(type);
      let body = `function ${fn}(t, v) {\n  if (v === null || typeof v !== 'object') h.invalid(v, ${t});\n`;
      type.fields!.forEach((field, i) => {
        const v = `f${i}`;
        body += `  { const ${v} = v${access(field.name)};\n`;
        const fallback = field.defaultValue();
        if (fallback === undefined) {
          body += `    ${this.statements(field.type, v, 0)}\n  }\n`;
        } else {
          // As avsc's record writer: a missing (undefined) field takes its default's bytes.
          const bytes = field.type.toBuffer(fallback).toString('binary');
          const d = this.constant(bytes);
          body += `    if (${v} === undefined) t.writeBinary(${d}, ${bytes.length}); else { ${this.statements(field.type, v, 0)} }\n  }\n`;
        }
      });
      body += '}';
      this.bodies.push(body);
    }
    const source = `'use strict';\nconst hasOwn = Object.hasOwn;\n${this.bodies.join('\n')}\nreturn ${rootFn};`;
    const factory = new Function('h', ...this.names, source) as (...args: unknown[]) => CompiledWriter;
    return factory(HELPERS, ...this.args);
  }
}

const compiled = new WeakMap<avsc.Type, CompiledWriter>();

/**
 * The generated writer of a record Type (cached per Type object), or null when the Type is not a record (callers then
 * use avsc's `encode`).
 *
 * @example
 * const write = compileWriter(type); // tap at pos; write(tap, value); tap.isValid() ? tap.pos : grow and retry
 */
export function compileWriter(type: avsc.Type): CompiledWriter | null {
  const known = compiled.get(type);
  if (known) return known;
  const any = type as unknown as AnyType;
  if (any.typeName !== 'record' && any.typeName !== 'error') return null;
  const writer = new Compiler().compile(any);
  compiled.set(type, writer);
  return writer;
}

/** Bytes of the shared chunks values are written into (a value bigger than a chunk gets a chunk of its own). */
export const CHUNK_SIZE = 256 * 1024;

/**
 * Encodes values with a Type's generated writer, framed or not, into shared chunks; returns a view per value.
 *
 * @example
 * const writer = new FramedWriter();
 * const bytes = writer.frame(7, normalisedType, value); // bytes[0] === 0, bytes.readInt32BE(1) === 7
 */
export class FramedWriter {
  #chunk = Buffer.allocUnsafe(CHUNK_SIZE) as TapBuffer;
  #offset = 0;
  readonly #tap: Tap = new AvscTap(this.#chunk, 0);

  /** `[0x00][schemaId int32 BE][Avro body]` of `value`; throws (avsc's error or the writer's) when it does not fit `type`. */
  frame(schemaId: number, type: avsc.Type, value: unknown): Buffer {
    return this.#write(type, value, 5, schemaId);
  }

  /** The Avro body of `value` alone (avsc `toBuffer`'s bytes). */
  body(type: avsc.Type, value: unknown): Buffer {
    return this.#write(type, value, 0, 0);
  }

  #write(type: avsc.Type, value: unknown, header: number, schemaId: number): Buffer {
    const write = compileWriter(type);
    const tap = this.#tap;
    for (let size = CHUNK_SIZE; ; size *= 2) {
      const start = this.#offset;
      tap.buf = this.#chunk;
      tap.pos = start + header;
      if (tap.pos <= this.#chunk.length) {
        if (write) write(tap, value);
        else (type as unknown as AnyType)._write(tap, value);
        if (tap.pos <= this.#chunk.length && tap.isValid()) {
          const end = tap.pos;
          const chunk = this.#chunk;
          if (header > 0) {
            chunk[start] = 0;
            chunk.writeInt32BE(schemaId, start + 1);
          }
          // Keep views 8-byte aligned (cheap, and no value shares a cache line's start with the next one's header).
          this.#offset = (end + 7) & ~7;
          return chunk.subarray(start, end);
        }
      }
      // Not enough room left: a fresh chunk (the old one stays alive through the views already handed out).
      this.#chunk = Buffer.allocUnsafe(Math.max(CHUNK_SIZE, size)) as TapBuffer;
      this.#offset = 0;
      if (size > 1 << 30) throw new Error('value too large to encode');
    }
  }
}
