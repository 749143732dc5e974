/**
 * Avro object container files: a streaming reader that yields every record with its exact bytes, decoded with the
 * file's writer schema resolved to the newest envelope, and a writer (avsc's BlockEncoder).
 *
 * The reader walks the container format itself (header, then blocks of count, size, data, sync marker) rather than
 * using avsc's BlockDecoder, because a dead letter must carry each record's own bytes and one bad record must not end
 * the file: a record that does not decode is rejected (AVRO_DECODE_FAILED; TRUNCATED_FRAME when it runs past its
 * block; ENVELOPE_INVALID when it decodes to a value beyond the envelope's limits, adapters/avro/limits.ts), and since record boundaries inside a block are only known by decoding, the block's remaining records are
 * rejected with it. A file whose writer schema cannot be read as an envelope yields every record as
 * SCHEMA_NOT_ENVELOPE. A broken container (bad magic, sync marker mismatch, cut mid-block, unknown codec) is not a
 * bad record but a bad input: it throws VigilError CONFIG_INVALID.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { inflateRawSync } from 'node:zlib';
import avro from 'avsc';
import { type ReasonCode, VigilError } from '../../runtime/errors.ts';
import type { Envelope } from '../../schemas/types.ts';
import { envelopeLimits } from '../avro/limits.ts';
import { parseAvroSchema } from '../avro/schemas.ts';
import { envelopeSchema } from './envelope-schema.ts';

export const AVRO_MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // 'Obj' 1

const HEADER = avro.Type.forSchema({
  type: 'record',
  name: 'org.apache.avro.file.Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
  ],
});

/** Largest block accepted (compressed or not): a bigger one means a corrupt size field. */
const MAX_BLOCK_BYTES = 512 * 1024 * 1024;

export type ContainerRecord =
  | { readonly index: number; readonly raw: Buffer; readonly ok: true; readonly envelope: Envelope }
  | {
      readonly index: number;
      readonly raw: Buffer;
      readonly ok: false;
      readonly code: Extract<
        ReasonCode,
        'AVRO_DECODE_FAILED' | 'TRUNCATED_FRAME' | 'SCHEMA_NOT_ENVELOPE' | 'ENVELOPE_INVALID'
      >;
      readonly detail: string;
    };

function corrupt(path: string, what: string): VigilError {
  return new VigilError('CONFIG_INVALID', `${path} is not a readable Avro container file: ${what}`);
}

/** Zig-zag varint long at pos: [value, next position], or null when the buffer ends first. */
function readLong(buf: Buffer, pos: number): [number, number] | null {
  let n = 0;
  let k = 0;
  let p = pos;
  let b: number;
  do {
    if (p >= buf.length) return null;
    b = buf[p++] as number;
    n += (b & 0x7f) * 2 ** (7 * k);
    k++;
    if (k > 9) return [Number.NaN, p];
  } while (b & 0x80);
  return [n % 2 === 0 ? n / 2 : -(n + 1) / 2, p];
}

/** Every record of an Avro container file, in order, with its bytes. Streams: memory holds about one block. */
export async function* readAvroContainer(path: string): AsyncGenerator<ContainerRecord> {
  const readerType = envelopeSchema().type;
  const chunks = createReadStream(path, { highWaterMark: 1024 * 1024 })[
    Symbol.asyncIterator
  ]() as AsyncIterator<Buffer>;
  // Unread data is buf[pos..] followed by `queued` (concatenated only when a caller needs contiguous bytes).
  let buf = Buffer.alloc(0);
  let pos = 0;
  let queued: Buffer[] = [];
  let queuedBytes = 0;
  let eof = false;
  /** Makes at least n unread bytes contiguous at buf[pos..]; false when the file ends first. */
  const ensure = async (n: number): Promise<boolean> => {
    while (buf.length - pos + queuedBytes < n && !eof) {
      const next = await chunks.next();
      if (next.done) eof = true;
      else {
        queued.push(next.value);
        queuedBytes += next.value.length;
      }
    }
    if (queuedBytes > 0 && buf.length - pos < n) {
      buf = Buffer.concat([buf.subarray(pos), ...queued]);
      pos = 0;
      queued = [];
      queuedBytes = 0;
    }
    return buf.length - pos >= n;
  };

  // Header: magic, metadata map, sync marker.
  if (!(await ensure(4)) || !buf.subarray(pos, pos + 4).equals(AVRO_MAGIC)) throw corrupt(path, 'bad magic');
  let header: { meta: Record<string, Buffer>; sync: Buffer } | null = null;
  for (let want = 4096; header === null; want *= 2) {
    const complete = await ensure(want);
    let decoded: { value: unknown; offset: number };
    try {
      decoded = HEADER.decode(buf, pos);
    } catch (error) {
      throw corrupt(path, `bad header (${(error as Error).message})`);
    }
    if (decoded.offset !== -1) {
      header = decoded.value as { meta: Record<string, Buffer>; sync: Buffer };
      pos = decoded.offset;
    } else if (!complete) throw corrupt(path, 'file ends inside the header');
  }
  const codec = header.meta['avro.codec']?.toString() ?? 'null';
  if (codec !== 'null' && codec !== 'deflate')
    throw corrupt(path, `unsupported codec "${codec}" (null and deflate are)`);
  const schemaText = header.meta['avro.schema']?.toString();
  if (!schemaText) throw corrupt(path, 'no avro.schema in the header');
  let resolver: avro.Resolver | null = null;
  let notEnvelope = '';
  try {
    // Hardened like every Type Vigil builds (adapters/avro/harden.ts): writer-only arrays are skipped with the guard.
    const writerType = parseAvroSchema(JSON.parse(schemaText) as avro.Schema);
    resolver = readerType.createResolver(writerType);
  } catch (error) {
    notEnvelope =
      error instanceof SyntaxError ? 'writer schema is not JSON' : 'writer schema cannot be read as the envelope';
  }
  const sync = header.sync;

  let index = 0;
  for (let blockNumber = 0; ; blockNumber++) {
    // Block: record count and byte size (two zig-zag longs, at most 10 bytes each), data, sync marker.
    await ensure(20);
    if (buf.length - pos === 0) return;
    const count = readLong(buf, pos);
    const size = count ? readLong(buf, count[1]) : null;
    if (!count || !size) throw corrupt(path, `file ends inside block ${blockNumber}'s header`);
    const [recordCount] = count;
    const [byteSize, afterHeader] = size;
    if (!Number.isSafeInteger(recordCount) || recordCount < 0 || !Number.isSafeInteger(byteSize) || byteSize < 0) {
      throw corrupt(path, `block ${blockNumber} has an invalid count or size`);
    }
    if (byteSize > MAX_BLOCK_BYTES) throw corrupt(path, `block ${blockNumber} claims ${byteSize} bytes`);
    const headerBytes = afterHeader - pos;
    if (!(await ensure(headerBytes + byteSize + 16))) throw corrupt(path, `file ends inside block ${blockNumber}`);
    const dataStart = pos + headerBytes;
    const data = buf.subarray(dataStart, dataStart + byteSize);
    if (!buf.subarray(dataStart + byteSize, dataStart + byteSize + 16).equals(sync)) {
      throw corrupt(path, `sync marker mismatch after block ${blockNumber}`);
    }
    pos = dataStart + byteSize + 16;
    let block = data;
    if (codec === 'deflate') {
      try {
        block = inflateRawSync(data);
      } catch {
        throw corrupt(path, `block ${blockNumber} does not inflate`);
      }
    }
    for (const record of decodeBlock(block, recordCount, index, readerType, resolver, notEnvelope)) {
      index++;
      yield record;
    }
  }
}

function* decodeBlock(
  block: Buffer,
  recordCount: number,
  firstIndex: number,
  readerType: avro.Type,
  resolver: avro.Resolver | null,
  notEnvelope: string,
): Generator<ContainerRecord> {
  let p = 0;
  for (let i = 0; i < recordCount; i++) {
    const index = firstIndex + i;
    if (resolver === null) {
      // Without a readable writer schema record boundaries are unknown: the block's bytes go with its first record.
      const raw = i === 0 ? Buffer.from(block) : Buffer.alloc(0);
      yield { index, raw, ok: false, code: 'SCHEMA_NOT_ENVELOPE', detail: notEnvelope };
      continue;
    }
    let offset: number;
    let value: unknown;
    let why = '';
    try {
      ({ value, offset } = readerType.decode(block, p, resolver));
    } catch (error) {
      offset = -2;
      // avsc's words name types, indexes and lengths (e.g. "potential precision loss"), never a value.
      why = ` (${String((error as Error).message).slice(0, 200)})`;
    }
    if (offset < 0) {
      const truncated = offset === -1;
      yield {
        index,
        raw: Buffer.from(block.subarray(p)),
        ok: false,
        code: truncated ? 'TRUNCATED_FRAME' : 'AVRO_DECODE_FAILED',
        detail: truncated
          ? 'record runs past the end of its block'
          : `record does not decode with the writer schema${why}`,
      };
      for (let j = i + 1; j < recordCount; j++) {
        yield {
          index: firstIndex + j,
          raw: Buffer.alloc(0),
          ok: false,
          code: 'AVRO_DECODE_FAILED',
          detail: 'an earlier record of its block does not decode, so this one cannot be located',
        };
      }
      return;
    }
    const raw = Buffer.from(block.subarray(p, offset));
    p = offset;
    // Decoded, so its boundaries are known: a value beyond the envelope's limits costs only this record.
    const problem = envelopeLimits()(value);
    if (problem !== null) yield { index, raw, ok: false, code: 'ENVELOPE_INVALID', detail: problem };
    else yield { index, raw, ok: true, envelope: value as Envelope };
  }
}

export interface AvroWriteOptions {
  /** 16-byte sync marker; pass one for byte-identical files from identical input (avsc draws a random one). */
  readonly syncMarker?: Buffer;
  readonly codec?: 'null' | 'deflate';
  /** Target block size in bytes (default 64 KiB). */
  readonly blockSize?: number;
}

/** Writes envelopes to an Avro container file with the newest envelope schema. Resolves when the file is closed. */
export async function writeAvroContainer(
  path: string,
  envelopes: Iterable<Envelope> | AsyncIterable<Envelope>,
  options: AvroWriteOptions = {},
): Promise<void> {
  const encoder = new avro.streams.BlockEncoder(envelopeSchema().type, {
    codec: options.codec ?? 'null',
    blockSize: options.blockSize ?? 64 * 1024,
    ...(options.syncMarker ? { syncMarker: options.syncMarker } : {}),
  });
  await pipeline(Readable.from(envelopes, { objectMode: true }), encoder, createWriteStream(path));
}
