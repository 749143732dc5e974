/**
 * The Confluent wire format: `[0x00][schema id: int32 big-endian][Avro binary body]`.
 * https://docs.confluent.io/platform/current/schema-registry/fundamentals/serdes-develop/index.html#wire-format
 */
import type avsc from 'avsc';
import { VigilError } from '../../runtime/errors.ts';

export const MAGIC_BYTE = 0;
/** Magic byte plus the 4-byte schema id. */
export const FRAME_HEADER_SIZE = 5;

let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * Frames one value: encodes `value` with `type` and prefixes the magic byte and schema id. One allocation (the returned
 * Buffer); the body is encoded into a reused scratch buffer first. Throws VigilError CONFIG_INVALID when the value does
 * not match the type (a bug in the caller, never a bad input record: inputs are decoded, not encoded).
 *
 * @example
 * const bytes = encodeFramed(7, envelopeType, envelope); // bytes[0] === 0, bytes.readInt32BE(1) === 7
 */
export function encodeFramed(schemaId: number, type: avsc.Type, value: unknown): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0x7fffffff) {
    throw new VigilError('CONFIG_INVALID', `schema id must be an int32 >= 0, got ${schemaId}`);
  }
  let end: number;
  try {
    for (;;) {
      end = type.encode(value, scratch, FRAME_HEADER_SIZE);
      if (end >= 0) break;
      // Negative: that many bytes were missing. Grow (geometrically) and retry.
      scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end + FRAME_HEADER_SIZE));
    }
  } catch (error) {
    throw new VigilError('CONFIG_INVALID', `value does not match Avro type ${type.name ?? type.typeName}`, {
      cause: error,
    });
  }
  const out = Buffer.allocUnsafe(end);
  scratch.copy(out, FRAME_HEADER_SIZE, FRAME_HEADER_SIZE, end);
  out[0] = MAGIC_BYTE;
  out.writeInt32BE(schemaId, 1);
  return out;
}

/** The schema id of a frame, or null when the bytes are not a frame (too short or wrong magic byte). */
export function frameSchemaId(bytes: Uint8Array): number | null {
  if (bytes.length < FRAME_HEADER_SIZE || bytes[0] !== MAGIC_BYTE) return null;
  return (bytes[1]! << 24) | (bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]! | 0;
}
