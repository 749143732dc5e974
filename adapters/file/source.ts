/**
 * File sources for embedded runs (`vigil run ... --embedded --input FILE`): NDJSON or Avro container files, read as
 * batches of in-flight envelopes plus rejections, in file order.
 *
 * @example
 * for await (const batch of openFileSource('fleet.ndjson', { batchSize: 500, clock })) {
 *   // batch.records: InFlight<Envelope>[] (origin topic `file:fleet.ndjson`, partition 0, offset = line number)
 *   // batch.rejected: Rejection[] (JSON_PARSE_FAILED / ENVELOPE_INVALID / AVRO_DECODE_FAILED / ...)
 *   // batch.consumed === batch.records.length + batch.rejected.length
 * }
 *
 * Every non-empty NDJSON line and every Avro record counts as consumed. A record's origin carries its exact bytes
 * (the line without terminator or BOM; the record's Avro binary) and their sha256. For NDJSON the offset is the
 * 1-based line number as an editor shows it (blank lines count as lines but are not records); for Avro it is the
 * 0-based record index. The rejection's `record.value` holds the line's claimed fields in storable form when the
 * line was a JSON object (so a dead letter can cite the claimed device id; runtime/claims.ts), else null.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { type Clock, systemClock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { Rejection } from '../../runtime/operator.ts';
import type { InFlight, Origin } from '../../runtime/record.ts';
import type { Envelope } from '../../schemas/types.ts';
import { AVRO_MAGIC, readAvroContainer } from './avro-container.ts';
import { readLines } from './lines.ts';
import { parseEnvelopeLine } from './ndjson.ts';

export type FileFormat = 'ndjson' | 'avro';

export interface FileBatch {
  readonly records: InFlight<Envelope>[];
  readonly rejected: Rejection[];
  /** records.length + rejected.length: every record the batch took from the file. */
  readonly consumed: number;
}

export interface FileSourceOptions {
  /** Records (accepted or rejected) per batch (default 1000). */
  readonly batchSize?: number;
  /** Stamps each origin's consumedAt (default: the system clock). */
  readonly clock?: Clock;
  /** NDJSON: longest line kept in memory; a longer one is rejected without its bytes (default 16 MiB). */
  readonly maxLineBytes?: number;
  /** Skip format detection (default: Avro when the file starts with the container magic `Obj\x01`, else NDJSON). */
  readonly format?: FileFormat;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Detects the format from the first bytes: Avro container magic, else NDJSON. */
export async function detectFileFormat(path: string): Promise<FileFormat> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new VigilError('CONFIG_INVALID', `cannot open input file ${path}: ${(error as NodeJS.ErrnoException).code}`, {
      cause: error,
    });
  }
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && head.equals(AVRO_MAGIC) ? 'avro' : 'ndjson';
  } finally {
    await handle.close();
  }
}

/** Batches of an NDJSON or Avro container file (format detected unless given). */
export async function* openFileSource(path: string, options: FileSourceOptions = {}): AsyncGenerator<FileBatch> {
  const format = options.format ?? (await detectFileFormat(path));
  yield* format === 'avro' ? readAvroFile(path, options) : readNdjsonFile(path, options);
}

class Batcher {
  records: InFlight<Envelope>[] = [];
  rejected: Rejection[] = [];
  constructor(readonly size: number) {}

  get full(): boolean {
    return this.records.length + this.rejected.length >= this.size;
  }

  take(): FileBatch {
    const batch = {
      records: this.records,
      rejected: this.rejected,
      consumed: this.records.length + this.rejected.length,
    };
    this.records = [];
    this.rejected = [];
    return batch;
  }
}

function batchSizeOf(options: FileSourceOptions): number {
  const size = options.batchSize ?? 1000;
  if (!Number.isInteger(size) || size < 1)
    throw new VigilError('CONFIG_INVALID', 'file source: batchSize must be a positive integer');
  return size;
}

/** The record key a rejected line claims: its device id in storable form (runtime/claims.ts), or null. */
function claimedKey(claims: Record<string, string | number | null> | null): string | null {
  const id = claims?.device_id;
  return typeof id === 'string' ? id : null;
}

/** Batches of an NDJSON file of envelopes. */
export async function* readNdjsonFile(path: string, options: FileSourceOptions = {}): AsyncGenerator<FileBatch> {
  const clock = options.clock ?? systemClock;
  const topic = `file:${basename(path)}`;
  const batcher = new Batcher(batchSizeOf(options));
  const lines = readLines(path, options.maxLineBytes === undefined ? {} : { maxLineBytes: options.maxLineBytes });
  for await (const line of wrapOpenErrors(lines, path)) {
    const origin = (raw: Buffer, rawSha256: string, key: string | null): Origin => ({
      topic,
      partition: 0,
      offset: line.number,
      consumedAt: clock.now(),
      rawSha256,
      raw,
      headers: [],
      key,
    });
    if (line.bytes === null) {
      batcher.rejected.push({
        record: { value: null, origin: origin(Buffer.alloc(0), line.sha256 ?? '', null) },
        code: 'JSON_PARSE_FAILED',
        detail: `line of ${line.length} bytes exceeds the ${options.maxLineBytes ?? 16 * 1024 * 1024}-byte limit`,
      });
    } else {
      const parsed = parseEnvelopeLine(line.bytes);
      const hash = sha256(line.bytes);
      if (parsed.ok) {
        batcher.records.push({ value: parsed.envelope, origin: origin(line.bytes, hash, parsed.envelope.device_id) });
      } else {
        batcher.rejected.push({
          record: { value: parsed.claims, origin: origin(line.bytes, hash, claimedKey(parsed.claims)) },
          code: parsed.code,
          detail: parsed.detail,
        });
      }
    }
    if (batcher.full) yield batcher.take();
  }
  if (batcher.records.length + batcher.rejected.length > 0) yield batcher.take();
}

/** Batches of an Avro container file of envelopes (any envelope schema version as writer). */
export async function* readAvroFile(path: string, options: FileSourceOptions = {}): AsyncGenerator<FileBatch> {
  const clock = options.clock ?? systemClock;
  const topic = `file:${basename(path)}`;
  const batcher = new Batcher(batchSizeOf(options));
  for await (const record of wrapOpenErrors(readAvroContainer(path), path)) {
    const hash = sha256(record.raw);
    const origin = (key: string | null): Origin => ({
      topic,
      partition: 0,
      offset: record.index,
      consumedAt: clock.now(),
      rawSha256: hash,
      raw: record.raw,
      headers: [],
      key,
    });
    if (record.ok) batcher.records.push({ value: record.envelope, origin: origin(record.envelope.device_id) });
    else
      batcher.rejected.push({
        record: { value: null, origin: origin(null) },
        code: record.code,
        detail: record.detail,
      });
    if (batcher.full) yield batcher.take();
  }
  if (batcher.records.length + batcher.rejected.length > 0) yield batcher.take();
}

/** Turns a missing or unreadable file into a VigilError that says which file. */
async function* wrapOpenErrors<T>(source: AsyncIterable<T>, path: string): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (error) {
    if (error instanceof VigilError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string') {
      throw new VigilError('CONFIG_INVALID', `cannot read input file ${path}: ${code}`, { cause: error });
    }
    throw error;
  }
}
