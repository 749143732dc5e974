/**
 * In-process sources for the embedded runner.
 *
 * - `simulatorSource`: the fleet simulator's records, framed exactly as a producer would write them to Kafka (with
 *   the in-process registry's ids), spread over partitions by device like a keyed topic, and decoded by the same
 *   decoder the Kafka worker uses: decode failures take the same dead-letter path in both modes.
 * - `fileSource`: NDJSON or Avro container files (adapters/file/), one partition in line/record order.
 * - `framedSource`: any pipeline's records (values of its sources' schemas, or raw bytes; from a list or as they arrive),
 *   framed with the in-process registry and decoded by each source's own decoder, exactly as a worker would read them
 *   from Kafka.
 */
import { createEnvelopeDecoder } from '../../adapters/avro/decoder.ts';
import { encodeFramed } from '../../adapters/avro/framing.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { type FileSourceOptions, openFileSource } from '../../adapters/file/index.ts';
import { InProcessSchemaRegistry } from '../../adapters/registry/in-process.ts';
import type { Envelope } from '../../schemas/types.ts';
import { recordBytes, type SimulateOptions, simulateFleet, type TruthSummary } from '../../simulator/simulate.ts';
import type { Clock } from '../clock.ts';
import { TOPICS } from '../endpoints.ts';
import type { SourceBatch } from '../engine.ts';
import { VigilError } from '../errors.ts';
import type { PipelineDefinition } from '../pipeline.ts';
import type { Origin } from '../record.ts';
import { decodeBatch, type RawRecord } from '../source.ts';
import { decoderOf, pipelineSchemaRepo, sourceDecoders } from './pipeline-schemas.ts';

/** FNV-1a: a stable, cheap key hash so a device always lands on the same partition. */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

export interface SimulatorSourceOptions {
  readonly simulation: SimulateOptions;
  /** Partitions of the simulated raw topic (default 6, like the real one). */
  readonly partitions?: number;
  /** Records per partition batch (default 2000). */
  readonly batchSize?: number;
  readonly clock: Clock;
  /** Receives the simulator's ground truth once the stream is exhausted. */
  readonly onTruth?: (truth: TruthSummary) => void;
}

export async function* simulatorSource(options: SimulatorSourceOptions): AsyncGenerator<SourceBatch<Envelope>> {
  const partitions = options.partitions ?? 6;
  const batchSize = options.batchSize ?? 2000;
  const registry = new InProcessSchemaRegistry();
  const envelope = loadSchemaRepo().get('envelope');
  const schemaId = registry.idOf(envelope.spec.subject, envelope.newest.schema);
  if (schemaId === null) throw new VigilError('INTERNAL', 'the in-process registry lacks the newest envelope schema');
  const decoder = createEnvelopeDecoder(registry);
  const pending: RawRecord[][] = Array.from({ length: partitions }, () => []);
  const offsets = new Array<number>(partitions).fill(0);
  let buffered = 0;

  const flush = async function* (): AsyncGenerator<SourceBatch<Envelope>> {
    for (let p = 0; p < partitions; p++) {
      const records = pending[p] as RawRecord[];
      if (records.length === 0) continue;
      pending[p] = [];
      yield await decodeBatch(records, decoder, options.clock.now());
    }
    buffered = 0;
  };

  const stream = simulateFleet({ ...options.simulation, schemaId });
  for (;;) {
    const next = stream.next();
    if (next.done) {
      options.onTruth?.(next.value);
      break;
    }
    const record = next.value;
    const partition = partitionOf(record.key, partitions);
    const offset = offsets[partition] as number;
    offsets[partition] = offset + 1;
    (pending[partition] as RawRecord[]).push({
      topic: TOPICS.raw,
      partition,
      offset,
      key: record.key,
      value: recordBytes(record, schemaId, envelope.newest.type),
      headers: [],
    });
    if (++buffered >= partitions * batchSize) yield* flush();
  }
  yield* flush();
}

export async function* fileSource(
  path: string,
  options: FileSourceOptions = {},
): AsyncGenerator<SourceBatch<Envelope>> {
  for await (const batch of openFileSource(path, options)) {
    if (batch.consumed === 0) continue;
    const origins: Origin[] = [
      ...batch.records.map((r) => r.origin),
      ...batch.rejected.map((r) => r.record.origin),
    ].sort((a, b) => a.offset - b.offset);
    const first = origins[0] as Origin;
    const last = origins.at(-1) as Origin;
    yield {
      range: { topic: first.topic, partition: first.partition, firstOffset: first.offset, lastOffset: last.offset },
      origins,
      records: batch.records,
      rejected: batch.rejected,
    };
  }
}

/** One record for `framedSource`: a value of its topic's source schema, or bytes sent as they are (a broken record). */
export interface SourceInput {
  readonly topic: string;
  readonly key: string;
  readonly value: Record<string, unknown> | Buffer;
}

/**
 * Any pipeline's input, in-process: each value is framed with the in-process registry's id of the newest version of
 * its topic's source schema, spread over `partitions` by key (like a keyed topic; co-partitioned sources share the
 * partition numbering), and decoded by that source's decoder, so decode failures take the same dead-letter path as
 * on Kafka.
 *
 * @example
 * const source = framedSource(definition, [{ topic: readings.topic, key: 'dev-1', value: { reading_id: 'r1', ... } }]);
 * await runEmbeddedSession(definition, source, store, log);
 */
export async function* framedSource<I>(
  definition: Pick<PipelineDefinition<I>, 'sources' | 'schemaDirs'>,
  records: Iterable<SourceInput> | AsyncIterable<SourceInput>,
  options: { readonly partitions?: number; readonly batchSize?: number; readonly clock: Clock },
): AsyncGenerator<SourceBatch<I>> {
  const partitions = options.partitions ?? 6;
  const batchSize = options.batchSize ?? 2000;
  const repo = pipelineSchemaRepo(definition);
  const registry = new InProcessSchemaRegistry(repo);
  const decoders = sourceDecoders(definition, registry, repo);
  const writers = new Map(
    definition.sources.map((source) => {
      const subject = repo.get(source.schema);
      const id = registry.idOf(subject.spec.subject, subject.newest.schema);
      if (id === null) throw new VigilError('INTERNAL', `the in-process registry lacks ${source.schema}`);
      return [source.topic, { id, type: subject.newest.type }] as const;
    }),
  );
  const pending = new Map<string, RawRecord[]>();
  const offsets = new Map<string, number>();
  const flush = async function* (all: boolean): AsyncGenerator<SourceBatch<I>> {
    for (const [k, group] of pending) {
      if (group.length === 0 || (!all && group.length < batchSize)) continue;
      pending.set(k, []);
      yield await decodeBatch(group, decoderOf(decoders, (group[0] as RawRecord).topic), options.clock.now());
    }
  };
  for await (const record of records) {
    const writer = decoderOf(writers, record.topic);
    const partition = partitionOf(record.key, partitions);
    const k = `${record.topic}\0${partition}`;
    const offset = offsets.get(k) ?? 0;
    offsets.set(k, offset + 1);
    const value = Buffer.isBuffer(record.value) ? record.value : encodeFramed(writer.id, writer.type, record.value);
    const group = pending.get(k) ?? [];
    group.push({ topic: record.topic, partition, offset, key: record.key, value, headers: [] });
    pending.set(k, group);
    if (group.length >= batchSize) yield* flush(false);
  }
  yield* flush(true);
}
