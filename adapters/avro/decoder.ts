/**
 * Decoding Confluent-framed Avro records (the raw topic's envelopes) into the newest reader schema.
 *
 * The writer schema comes from the registry by the framed id; avsc's `createResolver` maps it onto the reader (the
 * newest version in the repo), so data written with envelope v1 reads as v2 with v2's defaults. Everything per schema
 * id is cached (the writer Type, the resolver, and for a while even "unknown id"), so the hot path is: check the
 * header, one Map lookup, one avsc decode. Bad bytes never throw: they come back as `{ ok: false, code, detail }` with
 * a reason code from runtime/errors.ts. Only an unreachable registry throws (VigilError REGISTRY_UNAVAILABLE,
 * retriable): that is not the record's fault, so the batch is retried rather than dead-lettered.
 */
import avsc from 'avsc';
import type { Clock } from '../../runtime/clock.ts';
import { systemClock } from '../../runtime/clock.ts';
import type { ReasonCode } from '../../runtime/errors.ts';
import type { Envelope } from '../../schemas/types.ts';
import type { SchemaRegistry } from '../registry/types.ts';
import { FRAME_HEADER_SIZE, MAGIC_BYTE } from './framing.ts';
import { compileLimits, envelopeLimits, type LimitCheck } from './limits.ts';
import { envelopeReaderType, hardened } from './schemas.ts';

/** The reason codes a decode can fail with (a subset of the fixed table). */
export const DECODE_FAILURE_CODES = [
  'BAD_MAGIC_BYTE',
  'TRUNCATED_FRAME',
  'UNKNOWN_SCHEMA_ID',
  'SCHEMA_NOT_ENVELOPE',
  'AVRO_DECODE_FAILED',
  'ENVELOPE_INVALID',
] as const satisfies readonly ReasonCode[];
export type DecodeFailureCode = (typeof DECODE_FAILURE_CODES)[number];

export interface DecodeFailure {
  readonly ok: false;
  readonly code: DecodeFailureCode;
  /** What went wrong, in schema terms (ids, field and type names, byte counts): never the record's values. */
  readonly detail: string;
}

export interface DecodeSuccess<T> {
  readonly ok: true;
  readonly value: T;
  /** The registry id the record was framed with (which writer schema it was written with). */
  readonly schemaId: number;
}

export type DecodeResult<T> = DecodeSuccess<T> | DecodeFailure;

/**
 * Stands for a registry schema that exists but is not readable Avro (a JSON Schema or Protobuf subject, or text avsc
 * rejects). Registries return it from `getWriterType`; decoders classify it as SCHEMA_NOT_ENVELOPE.
 */
export const UNREADABLE_WRITER: avsc.Type = avsc.Type.forSchema({
  type: 'record',
  name: 'UnreadableSchema',
  namespace: 'vigil.registry',
  fields: [],
});

export interface FramedDecoderOptions {
  /** How long an id the registry did not know stays "unknown" before it is asked again. Default 30 s. */
  readonly unknownIdTtlMs?: number;
  /**
   * At most this many unknown ids are remembered (oldest forgotten first), so a stream of random ids cannot grow the
   * cache without bound. Default 10,000.
   */
  readonly maxUnknownIds?: number;
  readonly clock?: Clock;
  /**
   * What a decoded value must keep beyond its Avro shape (./limits.ts): a value that breaks one is ENVELOPE_INVALID.
   * `createEnvelopeDecoder` passes the envelope's limits; other readers (the sink's own outputs) have none by default.
   */
  readonly limits?: LimitCheck;
}

type Entry =
  | { readonly kind: 'readable'; readonly resolver: avsc.Resolver | undefined }
  | { readonly kind: 'failed'; readonly failure: DecodeFailure; readonly until: number };

const BAD_MAGIC: DecodeFailure = Object.freeze({
  ok: false,
  code: 'BAD_MAGIC_BYTE',
  detail: `first byte is not the wire-format magic byte ${MAGIC_BYTE}`,
});
const SHORT_FRAME: DecodeFailure = Object.freeze({
  ok: false,
  code: 'TRUNCATED_FRAME',
  detail: `fewer than ${FRAME_HEADER_SIZE} bytes (magic byte and schema id)`,
});

const NOT_A_REGISTRY_ID: DecodeFailure = Object.freeze({
  ok: false,
  code: 'UNKNOWN_SCHEMA_ID',
  detail: 'the schema id is 0 or negative: not a registry id',
});

const MAX_DETAIL = 300;

function failure(code: DecodeFailureCode, detail: string): DecodeFailure {
  return { ok: false, code, detail: detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL)}...` : detail };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Decodes framed records into one reader Type. One instance per reader, long-lived (its caches are the point).
 *
 * @example
 * const decoder = createEnvelopeDecoder(registry);
 * const results = await decoder.decodeBatch(messages.map((m) => m.value));
 * for (const r of results) if (!r.ok) deadLetter(r.code, r.detail);
 */
export class FramedDecoder<T> {
  readonly reader: avsc.Type;
  readonly #registry: SchemaRegistry;
  readonly #entries = new Map<number, Entry>();
  readonly #inflight = new Map<number, Promise<void>>();
  readonly #clock: Clock;
  readonly #unknownTtl: number;
  readonly #maxUnknown: number;
  #unknownCount = 0;
  readonly #readerName: string;
  readonly #limits: LimitCheck | null;

  constructor(registry: SchemaRegistry, reader: avsc.Type, options: FramedDecoderOptions = {}) {
    this.#registry = registry;
    this.reader = hardened(reader);
    this.#clock = options.clock ?? systemClock;
    this.#unknownTtl = options.unknownIdTtlMs ?? 30_000;
    this.#maxUnknown = options.maxUnknownIds ?? 10_000;
    this.#readerName = reader.name ?? reader.typeName;
    this.#limits = options.limits ?? null;
  }

  /**
   * Decodes synchronously when the frame's schema id is already known (the steady state), otherwise returns undefined:
   * call `decode` or `decodeBatch`, which ask the registry first.
   */
  tryDecode(bytes: Buffer): DecodeResult<T> | undefined {
    if (bytes.length > 0 && bytes[0] !== MAGIC_BYTE) return BAD_MAGIC;
    if (bytes.length < FRAME_HEADER_SIZE) return SHORT_FRAME;
    const id = bytes.readInt32BE(1);
    // Registries number schemas from 1: never ask about 0 or a negative id (a registry may answer those with an error
    // that looks like an outage, stalling the partition on one bad record), and never cache them (unbounded).
    if (id <= 0) return NOT_A_REGISTRY_ID;
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.kind === 'failed') {
      if (entry.until > this.#clock.now()) return entry.failure;
      this.#forget(id);
      return undefined;
    }
    let decoded: { value: unknown; offset: number };
    try {
      decoded = this.reader.decode(bytes, FRAME_HEADER_SIZE, entry.resolver);
    } catch (error) {
      return failure('AVRO_DECODE_FAILED', `schema id ${id}: ${message(error)}`);
    }
    if (decoded.offset < 0) return failure('TRUNCATED_FRAME', `schema id ${id}: the Avro body ends early`);
    if (decoded.offset !== bytes.length) {
      return failure('AVRO_DECODE_FAILED', `schema id ${id}: ${bytes.length - decoded.offset} trailing bytes`);
    }
    if (this.#limits !== null) {
      const problem = this.#limits(decoded.value);
      if (problem !== null) return failure('ENVELOPE_INVALID', problem);
    }
    return { ok: true, value: decoded.value as T, schemaId: id };
  }

  /** Decodes one record, asking the registry about its schema id first when needed. */
  async decode(bytes: Buffer): Promise<DecodeResult<T>> {
    for (let attempt = 0; ; attempt++) {
      const result = this.tryDecode(bytes);
      if (result !== undefined) return result;
      if (attempt > 2) return failure('UNKNOWN_SCHEMA_ID', `schema id ${bytes.readInt32BE(1)} could not be resolved`);
      await this.#load(bytes.readInt32BE(1));
    }
  }

  /** Decodes a batch: one registry round trip per distinct unknown id (in parallel), then a synchronous pass. */
  async decodeBatch(batch: readonly Buffer[]): Promise<DecodeResult<T>[]> {
    const missing = new Set<number>();
    for (const bytes of batch) {
      const id = this.#pendingId(bytes);
      if (id !== null) missing.add(id);
    }
    if (missing.size > 0) await Promise.all(Array.from(missing, (id) => this.#load(id)));
    const out = new Array<DecodeResult<T>>(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const bytes = batch[i]!;
      out[i] = this.tryDecode(bytes) ?? (await this.decode(bytes));
    }
    return out;
  }

  /** Warms the caches for these ids (e.g. the ids a producer is about to write). */
  async prefetch(ids: Iterable<number>): Promise<void> {
    await Promise.all(Array.from(new Set(ids), (id) => this.#load(id)));
  }

  /** The schema id of a frame whose id has no (live) cache entry; null otherwise. */
  #pendingId(bytes: Buffer): number | null {
    if (bytes.length < FRAME_HEADER_SIZE || bytes[0] !== MAGIC_BYTE) return null;
    const id = bytes.readInt32BE(1);
    return id > 0 && !this.#live(id) ? id : null;
  }

  #forget(id: number): void {
    const entry = this.#entries.get(id);
    if (entry?.kind === 'failed' && Number.isFinite(entry.until)) this.#unknownCount--;
    this.#entries.delete(id);
  }

  /** Maps iterate in insertion order: the first expiring entry found is the oldest unknown id. */
  #forgetOldestUnknown(): void {
    for (const [id, entry] of this.#entries) {
      if (entry.kind === 'failed' && Number.isFinite(entry.until)) {
        this.#forget(id);
        return;
      }
    }
  }

  /** Whether the id has a cache entry that still holds (readable, or failed and not expired). */
  #live(id: number): boolean {
    const entry = this.#entries.get(id);
    return entry !== undefined && (entry.kind === 'readable' || entry.until > this.#clock.now());
  }

  #load(id: number): Promise<void> {
    if (id <= 0 || this.#live(id)) return Promise.resolve();
    const running = this.#inflight.get(id);
    if (running) return running;
    const promise = this.#resolve(id).finally(() => this.#inflight.delete(id));
    this.#inflight.set(id, promise);
    return promise;
  }

  async #resolve(id: number): Promise<void> {
    this.#forget(id); // an expired "unknown" entry is being replaced
    if (id <= 0) return; // answered by tryDecode without a lookup
    const writer = await this.#registry.getWriterType(id); // throws REGISTRY_UNAVAILABLE: not cached, retried
    if (writer === null) {
      if (this.#unknownCount >= this.#maxUnknown) this.#forgetOldestUnknown();
      this.#entries.set(id, {
        kind: 'failed',
        failure: failure('UNKNOWN_SCHEMA_ID', `schema id ${id} is not in the registry (${this.#registry.location})`),
        until: this.#clock.now() + this.#unknownTtl,
      });
      this.#unknownCount++;
      return;
    }
    if (writer === UNREADABLE_WRITER) {
      this.#entries.set(id, {
        kind: 'failed',
        failure: failure('SCHEMA_NOT_ENVELOPE', `schema id ${id} is not an Avro schema`),
        until: Number.POSITIVE_INFINITY,
      });
      return;
    }
    try {
      const resolver = this.reader.equals(writer) ? undefined : this.reader.createResolver(hardened(writer));
      this.#entries.set(id, { kind: 'readable', resolver });
    } catch (error) {
      this.#entries.set(id, {
        kind: 'failed',
        failure: failure(
          'SCHEMA_NOT_ENVELOPE',
          `schema id ${id} (${writer.name ?? writer.typeName}) cannot be read as ${this.#readerName}: ${message(error)}`,
        ),
        until: Number.POSITIVE_INFINITY,
      });
    }
  }
}

/**
 * The raw topic's decoder: framed records resolved to the newest telemetry envelope of this checkout.
 *
 * @example
 * const decoder = createEnvelopeDecoder(createSchemaRegistry());
 * const result = await decoder.decode(message.value);
 * if (result.ok) handle(result.value); else deadLetter(result.code, result.detail);
 */
export function createEnvelopeDecoder(
  registry: SchemaRegistry,
  options: FramedDecoderOptions & { readonly reader?: avsc.Type } = {},
): FramedDecoder<Envelope> {
  const limits = options.limits ?? (options.reader ? compileLimits(options.reader.schema()) : envelopeLimits());
  return new FramedDecoder<Envelope>(registry, options.reader ?? envelopeReaderType(), { ...options, limits });
}
