/**
 * The embedded run: the same vitals chain (decode, validate, dedupe, score, detect drift, outputs) with in-memory
 * state and the embedded ClickHouse (chdb), fed from an in-memory source: no broker, no Redis, no registry round
 * trips. What is left is the engine's own cost.
 *
 *   node --import tsx bench/runs/embedded.ts --events N --data-dir DIR [--stream] [--sample-every M]
 *
 * - default: the N records are simulated and framed BEFORE the timed part (held in memory, partitioned by device over
 *   6 partitions like the raw topic) and handed out in micro-batches of `--batch` per partition, round-robin;
 * - `--stream` (the `--long` RSS run): records come straight from the fleet simulator as the engine asks for them
 *   (`simulatorSource`, flat memory), so the simulator's own CPU is part of the figure; RSS is sampled every
 *   `--sample-every` records.
 *
 * Latency: from the moment the source cuts a record's micro-batch (a round of one batch per partition) to the return
 * of that batch's last ClickHouse insert (observed through the store: each insert's dedup token names its batch).
 * Prints one JSON line.
 */
import { parseArgs } from 'node:util';
import { createEnvelopeDecoder } from '../../adapters/avro/decoder.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import type { ClickHouseStore, InsertOptions } from '../../adapters/clickhouse/store.ts';
import { InProcessSchemaRegistry } from '../../adapters/registry/in-process.ts';
import vitals from '../../pipelines/vitals.ts';
import { systemClock } from '../../runtime/clock.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import type { SourceBatch } from '../../runtime/engine.ts';
import { silentLogger } from '../../runtime/log.ts';
import { runEmbeddedSession, withEmbeddedStore } from '../../runtime/runners/embedded-session.ts';
import { partitionOf, simulatorSource } from '../../runtime/runners/embedded-sources.ts';
import { peakRssMb, RunStats } from '../../runtime/runners/run-stats.ts';
import { acceptUngated } from '../../runtime/runners/ungated.ts';
import { decodeBatch, type RawRecord } from '../../runtime/source.ts';
import type { Envelope } from '../../schemas/types.ts';
import { recordBytes, simulateFleet } from '../../simulator/simulate.ts';
import { BENCH_SIMULATION } from '../lib/data.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string' },
    'data-dir': { type: 'string' },
    batch: { type: 'string', default: '2000' },
    stream: { type: 'boolean', default: false },
    'sample-every': { type: 'string', default: '1000000' },
  },
});
const events = Number(values.events);
const batchSize = Number(values.batch);
const partitions = 6;
const sampleEvery = Number(values['sample-every']);
const stats = new RunStats();
/** heap_mb: live heap after a full GC; heap_total_mb: what V8 has committed for its heap (sized from the live heap). */
const rssSamples: { events: number; rss_mb: number; heap_mb: number; heap_total_mb: number; external_mb: number }[] =
  [];

/** Pre-framed records per partition (framed with the in-process registry's id, as simulatorSource does). */
function pregenerate(): { perPartition: RawRecord[][]; decoder: ReturnType<typeof createEnvelopeDecoder> } {
  const registry = new InProcessSchemaRegistry();
  const envelope = loadSchemaRepo().get('envelope');
  const schemaId = registry.idOf(envelope.spec.subject, envelope.newest.schema) as number;
  const perPartition: RawRecord[][] = Array.from({ length: partitions }, () => []);
  for (const record of simulateFleet({ ...BENCH_SIMULATION, events, schemaId })) {
    const p = partitionOf(record.key, partitions);
    const list = perPartition[p] as RawRecord[];
    list.push({
      topic: TOPICS.raw,
      partition: p,
      offset: list.length,
      key: record.key,
      value: recordBytes(record, schemaId, envelope.newest.type),
      headers: [],
    });
  }
  return { perPartition, decoder: createEnvelopeDecoder(registry) };
}

async function* inMemory(
  perPartition: RawRecord[][],
  decoder: ReturnType<typeof createEnvelopeDecoder>,
): AsyncGenerator<SourceBatch<Envelope>> {
  for (let from = 0; ; from += batchSize) {
    let any = false;
    for (const list of perPartition) {
      const slice = list.slice(from, from + batchSize);
      if (slice.length === 0) continue;
      any = true;
      yield await decodeBatch(slice, decoder, Date.now());
    }
    if (!any) return;
  }
}

/** When each batch (by `partition:firstOffset`) was cut, and how many records it holds. */
const cuts = new Map<string, { at: number; records: number }>();
/** When each batch's last insert returned (the runner writes a batch's tables in order, one batch at a time). */
const landed = new Map<string, number>();

/** Wraps the store: an insert's dedup token names its batch (`pipeline|topic|partition|first-last|digest`). */
function observed(store: ClickHouseStore): ClickHouseStore {
  const insert = async (table: string, rows: readonly Record<string, unknown>[], options: InsertOptions) => {
    const result = await store.insert(table, rows, options);
    const [, , partition, span] = options.dedupToken.split('|');
    const at = Date.now();
    if (partition !== undefined && span !== undefined) {
      landed.set(`${partition}:${span.split('-')[0]}`, at);
      stats.committed(at);
    }
    return result;
  };
  return {
    kind: store.kind,
    location: store.location,
    migrate: (options) => store.migrate(options),
    insert: insert as ClickHouseStore['insert'],
    query: (sql, params) => store.query(sql, params),
    command: (sql, params) => store.command(sql, params),
    close: () => store.close(),
  };
}

/** Notes when the source cuts each batch (a round of one batch per partition is cut at once). */
async function* timed(source: AsyncIterable<SourceBatch<Envelope>>): AsyncGenerator<SourceBatch<Envelope>> {
  let consumed = 0;
  let nextSample = sampleEvery;
  let roundCut = Date.now();
  let inRound = 0;
  for await (const batch of source) {
    const now = Date.now();
    stats.consumed(now);
    if (inRound === 0) roundCut = now;
    inRound = (inRound + 1) % partitions;
    cuts.set(`${batch.range.partition}:${batch.range.firstOffset}`, { at: roundCut, records: batch.origins.length });
    yield batch;
    consumed += batch.origins.length;
    if (consumed >= nextSample) {
      // After a full collection (the child runs with --expose-gc in stream mode): the live heap, not the garbage.
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      rssSamples.push({
        events: consumed,
        rss_mb: round(m.rss / 1048576),
        heap_mb: round(m.heapUsed / 1048576),
        heap_total_mb: round(m.heapTotal / 1048576),
        external_mb: round(m.external / 1048576),
      });
      nextSample += sampleEvery;
    }
  }
}

const round = (x: number) => Math.round(x * 10) / 10;
let baselineRssMb = 0;
const result = await withEmbeddedStore({ dataDir: values['data-dir'] as string, log: silentLogger }, async (store) => {
  let source: AsyncIterable<SourceBatch<Envelope>>;
  if (values.stream) {
    source = simulatorSource({
      simulation: { ...BENCH_SIMULATION, events },
      batchSize,
      partitions,
      clock: systemClock,
    });
  } else {
    const { perPartition, decoder } = pregenerate();
    source = inMemory(perPartition, decoder);
  }
  baselineRssMb = round(process.memoryUsage().rss / 1048576);
  // The simulator's records did not come through a gateway (bench/runs/gateway.ts measures that path).
  return runEmbeddedSession(acceptUngated(vitals), timed(source), observed(store), silentLogger);
});
for (const [batch, cut] of cuts) {
  const at = landed.get(batch);
  if (at !== undefined) for (let i = 0; i < cut.records; i++) stats.latency.observe(at - cut.at);
}
const a = result.accounting;
process.stdout.write(
  `${JSON.stringify({
    consumed: a.consumed,
    emitted: a.emitted,
    dead_lettered: a.deadLettered,
    duplicates: a.duplicates,
    stored: result.stored,
    baseline_rss_mb: baselineRssMb,
    rss_samples: rssSamples,
    ...stats.json(),
    peak_rss_mb: peakRssMb(),
  })}\n`,
);
process.exit(0);
