import { describe, expect, it } from 'vitest';
import { VigilError } from '../../runtime/errors.ts';
import { encodeFramed, FRAME_HEADER_SIZE, frameSchemaId, MAGIC_BYTE } from './framing.ts';
import { parseAvroSchema } from './schemas.ts';

const type = parseAvroSchema({
  type: 'record',
  name: 'Sample',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'n', type: 'long' },
  ],
} as never);

describe('Confluent framing', () => {
  it('writes magic byte 0, the big-endian schema id, then exactly the Avro body', () => {
    const value = { id: 'abc', n: 300 };
    const framed = encodeFramed(0x01020304, type, value);
    expect(framed[0]).toBe(MAGIC_BYTE);
    expect([...framed.subarray(1, FRAME_HEADER_SIZE)]).toEqual([1, 2, 3, 4]);
    expect(framed.subarray(FRAME_HEADER_SIZE).equals(type.toBuffer(value))).toBe(true);
    expect(frameSchemaId(framed)).toBe(0x01020304);
  });

  it('returns independent buffers (the scratch space is reused, the results are not)', () => {
    const a = encodeFramed(1, type, { id: 'first', n: 1 });
    const b = encodeFramed(2, type, { id: 'second', n: 2 });
    expect(type.fromBuffer(a.subarray(5))).toEqual({ id: 'first', n: 1 });
    expect(type.fromBuffer(b.subarray(5))).toEqual({ id: 'second', n: 2 });
  });

  it('grows past the scratch size for large values', () => {
    const big = { id: 'x'.repeat(200_000), n: 7 };
    const framed = encodeFramed(9, type, big);
    expect(framed.length).toBe(FRAME_HEADER_SIZE + type.toBuffer(big).length);
    expect(type.fromBuffer(framed.subarray(5))).toEqual(big);
  });

  it('refuses a value that does not match the type, and an id outside int32, with CONFIG_INVALID', () => {
    expect(() => encodeFramed(1, type, { id: 5, n: 1 })).toThrow(VigilError);
    expect(() => encodeFramed(1, type, { id: 'a' })).toThrow(/does not match Avro type Sample/);
    expect(() => encodeFramed(2 ** 31, type, { id: 'a', n: 1 })).toThrow(/int32/);
    expect(() => encodeFramed(-1, type, { id: 'a', n: 1 })).toThrow(/int32/);
  });

  it('frameSchemaId: null for short input or a wrong magic byte', () => {
    expect(frameSchemaId(Buffer.from([0, 0, 0, 1]))).toBeNull();
    expect(frameSchemaId(Buffer.from([1, 0, 0, 0, 1]))).toBeNull();
    expect(frameSchemaId(Buffer.from([0, 0xff, 0xff, 0xff, 0xff]))).toBe(-1);
  });
});
