/**
 * Hardening of avsc Types against hostile or corrupt bytes.
 *
 * avsc (5.7.9, pinned) trusts an array or map block count: it preallocates `new Array(count)` and loops `count` times,
 * even after the buffer is exhausted (reads past the end quietly yield zeros). A ten-byte record claiming 2^31 items
 * therefore hangs the worker and exhausts its memory. Decoders must never fail that way, so every array and map Type
 * Vigil builds (every Type parsed through ./schemas.ts `parseAvroSchema`, readers and registry writers alike) gets a
 * read and a skip that:
 * - stop as soon as the buffer is exhausted (the tap is invalidated, so the decode reports a truncated body), and
 * - refuse more than MAX_EMPTY_ITEMS consecutive items that consumed no bytes (arrays of null or of empty records).
 * Valid data decodes exactly as before (same values, same order); only the failure behaviour changes.
 *
 * Strings get the same treatment for a quieter failure: avsc decodes string bytes with Buffer#utf8Slice, which turns
 * invalid UTF-8 into U+FFFD without a word, so a record would silently change on its way to the store. The hardened
 * string read refuses bytes that are not valid UTF-8 (the Avro spec says strings are UTF-8), so such a record fails
 * to decode (AVRO_DECODE_FAILED) with its exact bytes kept in the dead letter.
 *
 * This relies on avsc internals (`_read`/`_skip` per Type class, the Tap's `buf`/`pos`/`_invalidate`, the `typeHook`
 * option) that are stable across avsc 5.x; harden.test.ts pins the behaviour, so an upgrade that changes them fails.
 */
import { isUtf8 } from 'node:buffer';
import avsc from 'avsc';

/** Most zero-byte items one array or map may hold (legitimate data has no reason to come near it). */
export const MAX_EMPTY_ITEMS = 100_000;

interface Tap {
  buf: Buffer & { utf8Slice(start: number, end: number): string };
  pos: number;
  readLong(): number;
  skipLong(): void;
  readString(): string;
  skipString(): void;
  _invalidate(): void;
}

interface Internal {
  _read(tap: Tap): unknown;
  _skip(tap: Tap): void;
}

interface ArrayInternal extends Internal {
  itemsType: Internal;
}

interface MapInternal extends Internal {
  valuesType: Internal;
}

function tooManyEmpty(): Error {
  return new Error(`array or map holds more than ${MAX_EMPTY_ITEMS} zero-byte items`);
}

function readArray(this: ArrayInternal, tap: Tap): unknown[] {
  const items = this.itemsType;
  const val: unknown[] = [];
  let empty = 0;
  for (let n = tap.readLong(); n !== 0; n = tap.readLong()) {
    if (n < 0) {
      n = -n;
      tap.skipLong(); // block size in bytes
    }
    while (n--) {
      const before = tap.pos;
      val.push(items._read(tap));
      if (tap.pos > tap.buf.length) {
        tap._invalidate();
        return val;
      }
      if (tap.pos === before && ++empty > MAX_EMPTY_ITEMS) throw tooManyEmpty();
    }
  }
  return val;
}

function skipArray(this: ArrayInternal, tap: Tap): void {
  const items = this.itemsType;
  let empty = 0;
  for (let n = tap.readLong(); n !== 0; n = tap.readLong()) {
    if (n < 0) {
      const len = tap.readLong();
      tap.pos += len;
      if (len < 0 || tap.pos > tap.buf.length) {
        tap._invalidate();
        return;
      }
      continue;
    }
    while (n--) {
      const before = tap.pos;
      items._skip(tap);
      if (tap.pos > tap.buf.length) {
        tap._invalidate();
        return;
      }
      if (tap.pos === before && ++empty > MAX_EMPTY_ITEMS) throw tooManyEmpty();
    }
  }
}

function readMap(this: MapInternal, tap: Tap): Record<string, unknown> {
  const values = this.valuesType;
  const val: Record<string, unknown> = {};
  for (let n = tap.readLong(); n !== 0; n = tap.readLong()) {
    if (n < 0) {
      n = -n;
      tap.skipLong();
    }
    while (n--) {
      const key = tap.readString();
      const item = values._read(tap);
      if (tap.pos > tap.buf.length) {
        tap._invalidate();
        return val;
      }
      // A key is never zero-sized (its length prefix takes a byte), so no zero-byte guard is needed here.
      if (key === '__proto__') Object.defineProperty(val, key, { value: item, enumerable: true, writable: true });
      else val[key] = item;
    }
  }
  return val;
}

function skipMap(this: MapInternal, tap: Tap): void {
  const values = this.valuesType;
  for (let n = tap.readLong(); n !== 0; n = tap.readLong()) {
    if (n < 0) {
      const len = tap.readLong();
      tap.pos += len;
      if (len < 0 || tap.pos > tap.buf.length) {
        tap._invalidate();
        return;
      }
      continue;
    }
    while (n--) {
      tap.skipString();
      values._skip(tap);
      if (tap.pos > tap.buf.length) {
        tap._invalidate();
        return;
      }
    }
  }
}

/** A string's bytes, refused when they are not valid UTF-8 (never replaced). A cut-short body reads as before. */
function readString(tap: Tap): string | undefined {
  const start = tap.pos;
  const len = tap.readLong();
  if (len < 0) {
    tap._invalidate();
    return '';
  }
  const from = tap.pos;
  const to = from + len;
  if (to > tap.buf.length) {
    tap.pos = to; // past the end: the decode reports a truncated body, as avsc's own read does
    return undefined;
  }
  // ASCII bytes are valid UTF-8 on their own: only the part from the first non-ASCII byte (a character boundary) needs
  // the full check, and most strings (ids, codes, versions) have none, which spares a subarray and a native call.
  const buf = tap.buf;
  let i = from;
  while (i < to && buf[i]! < 0x80) i++;
  if (i < to && !isUtf8(buf.subarray(i, to))) {
    tap.pos = start;
    throw new Error('string is not valid UTF-8');
  }
  tap.pos = to;
  return buf.utf8Slice(from, to);
}

type TypeCtor = new (schema: unknown, opts: unknown) => avsc.Type;

// avsc freezes every Type instance, so the guarded methods live on subclasses of its array and map types. Resolvers
// copy the reader's `_read` (ArrayType#_update: `resolver._read = this._read`), so they inherit the guard too.
const { ArrayType, MapType, StringType } = avsc.types as unknown as {
  ArrayType: TypeCtor;
  MapType: TypeCtor;
  StringType: TypeCtor;
};

class HardenedArrayType extends ArrayType {}
class HardenedMapType extends MapType {}
class HardenedStringType extends StringType {}
Object.assign(HardenedArrayType.prototype, { _read: readArray, _skip: skipArray });
Object.assign(HardenedMapType.prototype, { _read: readMap, _skip: skipMap });
Object.assign(HardenedStringType.prototype, { _read: readString });

/**
 * The avsc `typeHook` that builds every array, map and string of a schema as its hardened variant. (A bare "string"
 * reference reaches the hook a second time as `{ type: 'string' }`, which is where it is built.)
 */
export function hardenedTypeHook(schema: unknown, opts: unknown): avsc.Type | undefined {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return undefined;
  const type = (schema as { type?: unknown }).type;
  if (type === 'array') return new HardenedArrayType(schema, opts);
  if (type === 'map') return new HardenedMapType(schema, opts);
  if (type === 'string') return new HardenedStringType(schema, opts);
  return undefined;
}

function children(type: avsc.Type): avsc.Type[] {
  const t = type as unknown as {
    fields?: { type: avsc.Type }[];
    types?: avsc.Type[];
    itemsType?: avsc.Type;
    valuesType?: avsc.Type;
    underlyingType?: avsc.Type;
  };
  if (t.fields) return t.fields.map((f) => f.type);
  if (t.types) return t.types;
  if (t.itemsType) return [t.itemsType];
  if (t.valuesType) return [t.valuesType];
  if (t.underlyingType) return [t.underlyingType];
  return [];
}

/** True when every array, map and string in the Type tree is a hardened one. */
export function isHardened(type: avsc.Type): boolean {
  const seen = new Set<avsc.Type>();
  const stack: avsc.Type[] = [type];
  while (stack.length > 0) {
    const current = stack.pop()!;
    if (seen.has(current)) continue;
    seen.add(current);
    if (current.typeName === 'array' && !(current instanceof HardenedArrayType)) return false;
    if (current.typeName === 'map' && !(current instanceof HardenedMapType)) return false;
    if (current.typeName === 'string' && !(current instanceof HardenedStringType)) return false;
    stack.push(...children(current));
  }
  return true;
}
