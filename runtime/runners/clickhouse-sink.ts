/**
 * The distributed ClickHouse sink: a consumer group (read_committed) over the pipeline's topics that lands each topic
 * in its table, effectively once.
 *
 * Deterministic batch contract: a batch is exactly the records of one (topic, partition, first offset .. last offset)
 * and its insert carries a dedup token derived from that range and the records' hashes. Before inserting, the sink
 * records the batch's range in `sink_batches`; after a crash, the next owner of the partition re-forms exactly the
 * batches recorded past the committed offset, so a retried insert is identical and ClickHouse drops it. Offsets are
 * committed only after the inserts returned. ReplacingMergeTree keyed by the record id is the second line of defence.
 */

import { FramedDecoder } from '../../adapters/avro/decoder.ts';
import type { SchemaRepo } from '../../adapters/avro/schemas.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { rawEventRow, rawKnownOf } from '../../adapters/clickhouse/tables.ts';
import { type ConsumedMessage, KafkaConsumerClient, type TopicPartition } from '../../adapters/kafka/consumer.ts';
import type { SchemaRegistry } from '../../adapters/registry/types.ts';
import { TOPICS } from '../endpoints.ts';
import type { BatchRange } from '../engine.ts';
import { VigilError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { PipelineMetrics } from '../metrics.ts';
import { STANDARD_OUTPUTS } from '../outputs.ts';
import type { PipelineDefinition, TableRows } from '../pipeline.ts';
import type { Origin } from '../record.ts';
import { ClickHouseSink, QUARANTINE_TABLE, type RowSource, rowMapper, Unmappable } from '../sinks/clickhouse.ts';
import { byPartition, sha256Hex } from '../source.ts';
import { decoderOf, sourceDecoders } from './pipeline-schemas.ts';
import type { RunStats } from './run-stats.ts';

/**
 * One topic the sink reads, the schema its records are read as, and the table it lands in. `raw`: a source topic of
 * the pipeline, landed in the raw plane as bytes (its schema only tells the ids the record carries, when it decodes).
 */
export interface SinkRoute {
  readonly topic: string;
  readonly table: string;
  readonly schema: string;
  readonly raw: boolean;
  /** The output's declared row mapping, when it declares one. */
  readonly row?: TableRows['row'];
}

/**
 * Every topic the sink lands, from the definition: each source (raw plane, or its own table when it `lands`), each
 * output, dead letters, duplicates.
 */
export function sinkRoutes(definition: PipelineDefinition): SinkRoute[] {
  return [
    ...definition.sources.map((s) =>
      s.lands
        ? {
            topic: s.topic,
            table: s.lands.table,
            schema: s.schema,
            raw: false,
            ...(s.lands.rows.row ? { row: s.lands.rows.row } : {}),
          }
        : { topic: s.topic, table: STANDARD_OUTPUTS.raw.table, schema: s.schema, raw: true },
    ),
    ...[...definition.outputs.records, ...Object.values(definition.outputs.side)].map((o) => ({
      topic: o.topic,
      table: o.table,
      schema: o.schema,
      raw: false,
      ...(o.rows?.row ? { row: o.rows.row } : {}),
    })),
    // A landing definition runs no chain: it writes no dead letters or duplicates, so its sink does not read them.
    ...(landingOnly(definition) ? [] : standardRoutes()),
  ];
}

function standardRoutes(): SinkRoute[] {
  return [
    {
      topic: TOPICS.deadLetter,
      table: STANDARD_OUTPUTS.deadLetters.table,
      schema: STANDARD_OUTPUTS.deadLetters.schema,
      raw: false,
    },
    {
      topic: TOPICS.duplicates,
      table: STANDARD_OUTPUTS.duplicates.table,
      schema: STANDARD_OUTPUTS.duplicates.schema,
      raw: false,
    },
  ];
}

/** No operator, and every source lands in its own table (`SourceSpec.lands`): pipelines/gateway-rejections.ts. */
function landingOnly(definition: PipelineDefinition): boolean {
  return definition.operators.length === 0 && definition.sources.every((s) => s.lands !== undefined);
}

/**
 * The tables a run of this pipeline lands rows in, from its definition: the raw plane, its record outputs' tables,
 * dead letters, duplicates, its side outputs' tables, and `quarantine` (rows ClickHouse could not store); a landing
 * definition's: its sources' tables and `quarantine`.
 */
export function pipelineTables(definition: PipelineDefinition): string[] {
  if (landingOnly(definition)) {
    return [...new Set([...definition.sources.map((s) => s.lands?.table ?? ''), QUARANTINE_TABLE])];
  }
  return [
    ...new Set([
      STANDARD_OUTPUTS.raw.table,
      ...definition.outputs.records.map((o) => o.table),
      STANDARD_OUTPUTS.deadLetters.table,
      STANDARD_OUTPUTS.duplicates.table,
      ...Object.values(definition.outputs.side).map((s) => s.table),
      QUARANTINE_TABLE,
    ]),
  ];
}

export interface SinkConsumerDeps {
  readonly definition: PipelineDefinition;
  readonly store: ClickHouseStore;
  readonly registry: SchemaRegistry;
  readonly repo: SchemaRepo;
  readonly brokers: string;
  readonly groupId: string;
  readonly metrics: PipelineMetrics;
  readonly log: Logger;
  readonly maxBatch?: number;
  readonly lingerMs?: number;
  /** How partitions' records gather into bigger inserts across polls (default SINK_ACCUMULATION; null: per poll). */
  readonly accumulation?: Accumulation | null;
  readonly stopWhenIdleMs?: number;
  readonly stopSignal?: Promise<void>;
  /**
   * Timing and CPU of the run, and the landing latency of the raw plane: from each raw record's producer timestamp to
   * the commit after its insert (`vigil sink --json`, the benchmarks).
   */
  readonly stats?: RunStats;
  /** Called after every landed and committed round (ride-through.ts: ends an outage, measures its recovery). */
  readonly onCommitted?: () => void;
}

export interface SinkSummary {
  /** Records read per table. */
  readonly records: Record<string, number>;
  /** Of those, rows set aside in the quarantine table per table (ClickHouse cannot store them); absent when none. */
  readonly quarantined: Record<string, number>;
  readonly batches: number;
}

const INTENT_TABLE = 'sink_batches';

export async function runClickHouseSink(deps: SinkConsumerDeps): Promise<SinkSummary> {
  const { definition, store, log } = deps;
  const routes = new Map(sinkRoutes(definition).map((r) => [r.topic, r]));
  // Sources are read as their own schemas (with their limits, as the workers read them); outputs as theirs.
  const decoders = new Map<string, FramedDecoder<Record<string, unknown>>>([
    ...sourceDecoders<Record<string, unknown>>(
      definition as PipelineDefinition<Record<string, unknown>>,
      deps.registry,
      deps.repo,
    ),
  ]);
  for (const route of routes.values()) {
    if (!route.raw)
      decoders.set(route.topic, new FramedDecoder(deps.registry, deps.repo.get(route.schema).newest.type));
  }
  const sink = new ClickHouseSink(store, `${definition.name}@${definition.version}`, {
    metrics: deps.metrics,
    log,
  });
  const tally = new SinkTally();
  const accumulation = deps.accumulation === undefined ? SINK_ACCUMULATION : deps.accumulation;
  const planner = new BatchPlanner(routes, accumulation ?? undefined);

  const consumer = new KafkaConsumerClient({
    brokers: deps.brokers,
    groupId: deps.groupId,
    clientId: `vigil-sink-${definition.name}`,
    topics: [...routes.keys()],
    lingerMs: deps.lingerMs ?? 200,
    config: { 'isolation.level': 'read_committed' },
    onAssign: async (partitions) => {
      for (const c of await consumer.committed(partitions)) {
        planner.assigned(c, await recordedRanges(store, definition.name, c));
      }
    },
    onRevoke: async () => {
      // The round in flight inserts and commits while the partitions are still ours; then forget their state.
      await round;
      planner.clear();
    },
  });

  /** Lands a round's batches, then commits what landed and notes its latency. */
  const landAndCommit = async (planned: readonly PlannedBatch[]): Promise<void> => {
    const landed = await landRound(planned, { store, sink, pipeline: definition.name, decoders, tally });
    consumer.commit(latestPerPartition(landed));
    const stats = deps.stats;
    if (stats) {
      const now = Date.now();
      stats.committed(now);
      for (const { batch } of planned)
        for (const m of batch)
          if (sourceTopics.has(m.topic) && m.timestamp > 0) stats.latency.observe(now - m.timestamp);
    }
  };
  const sourceTopics = new Set(definition.sources.map((s) => s.topic));
  let round: Promise<void> = Promise.resolve();

  let stopping = false;
  void deps.stopSignal?.then(() => {
    stopping = true;
  });
  await consumer.connect();
  let lastRecordAt = 0;
  try {
    while (!stopping) {
      const epoch = consumer.epoch;
      const maxBatch = deps.maxBatch ?? 20_000;
      const messages = await consumer.consume(maxBatch);
      // Read across the start of a rebalance: these records come back from the committed offsets (with the batch
      // intents reloaded), so landing them now could record ranges that overlap what the next owner re-forms.
      if (epoch !== consumer.epoch || consumer.revoking) {
        await consumer.rewindToCommitted(messages);
        continue;
      }
      let planned: PlannedBatch[];
      if (messages.length === 0) {
        // Partitions that gathered records long enough land now, whether or not more arrive.
        planned = planner.due();
        if (planned.length === 0) {
          const idle = consumer.idleFor(lastRecordAt);
          if (deps.stopWhenIdleMs !== undefined && idle >= deps.stopWhenIdleMs && !planner.holding) break;
          continue;
        }
      } else {
        lastRecordAt = Date.now();
        deps.stats?.consumed(lastRecordAt);
        const backlog = messages.length >= maxBatch;
        planned = planner.plan(messages, lastRecordAt, backlog);
        planned.push(...planner.due(lastRecordAt, backlog));
        if (planned.length === 0) continue; // every partition of this poll is gathering
      }
      round = landAndCommit(planned);
      await round;
      deps.onCommitted?.();
    }
  } finally {
    await consumer.disconnect();
  }
  const summary = tally.summary();
  log.info({ batches: summary.batches }, 'clickhouse sink stopped');
  return summary;
}

/** A batch to land: the records of one (topic, partition, first..last offset), and the route of its topic. */
export interface PlannedBatch {
  readonly route: SinkRoute;
  readonly range: BatchRange;
  readonly batch: readonly ConsumedMessage[];
}

interface OffsetRange {
  readonly first: number;
  readonly last: number;
}

/**
 * How long the sink lets a partition's records gather into one insert. chdb's (and a server's) cost per row falls
 * steeply with the insert's size (a part written and merged per insert: it halves from 2,000- to 10,000-row inserts),
 * while one poll spreads over every partition of six topics (20,000 records give each of 36 partitions ~550).
 */
export interface Accumulation {
  /** A partition's records are landed once this many are in hand (the rows of one insert on a backlog). */
  readonly minRows: number;
  /** ... or once its oldest unlanded record was read this long ago (a live stream's rows wait no longer). */
  readonly maxHoldMs: number;
  /**
   * The same bound while the sink reads a backlog (its polls come back full): landing a round of a backlog takes longer
   * than `maxHoldMs`, which would otherwise cut every partition's records at what one round gathered.
   */
  readonly backlogHoldMs: number;
  /** ... or, for every partition, once this many records are held altogether (the sink's memory bound). */
  readonly maxHeldRows: number;
}

/** The sink's accumulation: 10,000-row inserts on a backlog, a live stream's rows held at most ~0.8 s past the poll. */
export const SINK_ACCUMULATION: Accumulation = {
  minRows: 10_000,
  maxHoldMs: 800,
  backlogHoldMs: 10_000,
  maxHeldRows: 250_000,
};

/**
 * Batch planning, apart from landing: which records form which batch. After a restart, the ranges recorded past a
 * partition's committed offset (`sink_batches`) must be re-formed exactly, so a retried insert is identical and
 * ClickHouse drops it; records that arrive before such a range is complete are held until it is.
 *
 * With an `Accumulation`, the records past the recorded ranges are also held across polls until the partition has
 * `minRows` of them or the oldest waited `maxHoldMs` (`due`). This stays within the contract: a held record has no
 * recorded range and no committed offset, so a crash or a revocation (`clear`) only means it is read again and batched
 * anew; the range of a batch is recorded when it is planned, before its insert, as without accumulation.
 */
export class BatchPlanner {
  readonly #routes: ReadonlyMap<string, SinkRoute>;
  readonly #accumulation: Accumulation | undefined;
  /** Ranges recorded past the committed offset of a partition, oldest first: they must be re-formed exactly. */
  readonly #pending = new Map<string, OffsetRange[]>();
  /** Records held for a partition until its pending range is complete, or until enough gathered (accumulation). */
  readonly #held = new Map<string, ConsumedMessage[]>();
  /** When the oldest record held for accumulation in a partition was read. */
  readonly #heldSince = new Map<string, number>();
  #heldRows = 0;

  constructor(routes: ReadonlyMap<string, SinkRoute>, accumulation?: Accumulation) {
    this.#routes = routes;
    this.#accumulation = accumulation;
  }

  /** A partition was assigned: the ranges recorded past its committed offset, oldest first. */
  assigned(tp: TopicPartition, ranges: readonly OffsetRange[]): void {
    const k = keyOf(tp);
    this.#pending.set(k, [...ranges]);
    this.#heldRows -= this.#held.get(k)?.length ?? 0;
    this.#held.delete(k);
    this.#heldSince.delete(k);
  }

  /** The partitions were revoked: forget what was planned for them. */
  clear(): void {
    this.#pending.clear();
    this.#held.clear();
    this.#heldSince.clear();
    this.#heldRows = 0;
  }

  /** Whether records are held (the rest of a recorded range, or gathering): the sink must not stop idle then. */
  get holding(): boolean {
    return this.#held.size > 0;
  }

  /**
   * One poll's records -> the batches to land, per partition in offset order. `backlog`: the poll came back full
   * (held records may wait `backlogHoldMs` instead of `maxHoldMs`).
   */
  plan(messages: readonly ConsumedMessage[], now = Date.now(), backlog = false): PlannedBatch[] {
    const planned: PlannedBatch[] = [];
    for (const group of byPartition(messages)) {
      const first = group[0] as ConsumedMessage;
      this.#planned(first, this.cut(first, group, now, backlog), planned);
    }
    const acc = this.#accumulation;
    if (acc && this.#heldRows >= acc.maxHeldRows) planned.push(...this.due(Number.POSITIVE_INFINITY));
    return planned;
  }

  /**
   * The batches of the partitions whose records gathered long enough (`maxHoldMs`) by `now`: called when a poll
   * brought nothing, so a stream that stopped is landed. (`plan` lands them too when their partition gets records.)
   */
  due(now = Date.now(), backlog = false): PlannedBatch[] {
    const planned: PlannedBatch[] = [];
    const acc = this.#accumulation;
    if (!acc) return planned;
    const hold = backlog ? acc.backlogHoldMs : acc.maxHoldMs;
    for (const [k, since] of [...this.#heldSince]) {
      if (now - since < hold) continue;
      const batch = this.#held.get(k);
      this.#held.delete(k);
      this.#heldSince.delete(k);
      if (!batch || batch.length === 0) continue;
      this.#heldRows -= batch.length;
      this.#planned(batch[0] as ConsumedMessage, [batch], planned);
    }
    return planned;
  }

  #planned(tp: TopicPartition, batches: readonly ConsumedMessage[][], into: PlannedBatch[]): void {
    const route = this.#routes.get(tp.topic);
    if (!route) throw new VigilError('INTERNAL', `sink got a record from unrouted topic ${tp.topic}`);
    for (const batch of batches) {
      const range: BatchRange = {
        topic: route.topic,
        partition: tp.partition,
        firstOffset: (batch[0] as ConsumedMessage).offset,
        lastOffset: (batch.at(-1) as ConsumedMessage).offset,
      };
      into.push({ route, range, batch });
    }
  }

  /**
   * Cuts a partition's records into batches: pending ranges first (exactly), then one batch of the rest (with an
   * accumulation: once it has `minRows` records or its oldest was read `maxHoldMs` before `now`; else it is held).
   */
  cut(
    tp: TopicPartition,
    incoming: readonly ConsumedMessage[],
    now = Date.now(),
    backlog = false,
  ): ConsumedMessage[][] {
    if (!this.#routes.has(tp.topic))
      throw new VigilError('INTERNAL', `sink got a record from unrouted topic ${tp.topic}`);
    const k = keyOf(tp);
    const held = this.#held.get(k);
    this.#heldRows -= held?.length ?? 0;
    let queue: ConsumedMessage[];
    if (held) {
      for (const m of incoming) held.push(m);
      queue = held;
    } else queue = [...incoming];
    this.#held.delete(k);
    const out: ConsumedMessage[][] = [];
    const ranges = this.#pending.get(k) ?? [];
    while (ranges.length > 0 && queue.length > 0) {
      const range = ranges[0] as OffsetRange;
      const lastHere = queue.at(-1) as ConsumedMessage;
      if (lastHere.offset < range.last) {
        this.#held.set(k, queue); // wait for the rest of the recorded batch
        this.#heldRows += queue.length;
        return out;
      }
      const n = queue.findIndex((m) => m.offset > range.last);
      out.push(queue.splice(0, n === -1 ? queue.length : n));
      ranges.shift();
    }
    if (queue.length === 0) {
      this.#heldSince.delete(k);
      return out;
    }
    const acc = this.#accumulation;
    const since = this.#heldSince.get(k) ?? now;
    if (acc && queue.length < acc.minRows && now - since < (backlog ? acc.backlogHoldMs : acc.maxHoldMs)) {
      this.#held.set(k, queue); // gathering into a bigger insert
      this.#heldSince.set(k, since);
      this.#heldRows += queue.length;
      return out;
    }
    this.#heldSince.delete(k);
    out.push(queue);
    return out;
  }
}

function keyOf(tp: TopicPartition): string {
  return `${tp.topic}:${tp.partition}`;
}

/** The ranges recorded for a partition from its committed offset on, oldest first. */
async function recordedRanges(
  store: ClickHouseStore,
  pipeline: string,
  committed: TopicPartition & { offset: number },
): Promise<OffsetRange[]> {
  const rows = await store.query<{ first_offset: number; last_offset: number }>(
    `SELECT first_offset, last_offset FROM ${INTENT_TABLE} FINAL
     WHERE pipeline = {pipeline:String} AND topic = {topic:String} AND partition = {partition:Int32}
       AND first_offset >= {from:Int64} ORDER BY first_offset`,
    { pipeline, topic: committed.topic, partition: committed.partition, from: Math.max(0, committed.offset) },
  );
  return rows.map((r) => ({ first: Number(r.first_offset), last: Number(r.last_offset) }));
}

/** What the sink read per table, set aside in quarantine per table, and the batches it landed. */
class SinkTally {
  readonly #records: Record<string, number> = {};
  readonly #quarantined: Record<string, number> = {};
  #batches = 0;

  landed(table: string, records: number, quarantined: number): void {
    this.#records[table] = (this.#records[table] ?? 0) + records;
    if (quarantined > 0) this.#quarantined[table] = (this.#quarantined[table] ?? 0) + quarantined;
    this.#batches++;
  }

  summary(): SinkSummary {
    return { records: { ...this.#records }, quarantined: { ...this.#quarantined }, batches: this.#batches };
  }
}

interface LandingDeps {
  readonly store: ClickHouseStore;
  readonly sink: ClickHouseSink;
  readonly pipeline: string;
  readonly decoders: ReadonlyMap<string, FramedDecoder<Record<string, unknown>>>;
  readonly tally: SinkTally;
}

/**
 * Lands a round's batches and returns the offsets to commit. ALL their ranges are recorded in one intent insert before
 * any data insert: each range is still recorded before its rows land (a restart re-forms exactly the recorded ranges),
 * at one insert per round instead of one per batch. Inserts run one at a time, in order; the next batch's rows are
 * decoded and mapped (JavaScript) while the previous insert runs in the ClickHouse engine's threads.
 */
async function landRound(
  planned: readonly PlannedBatch[],
  deps: LandingDeps,
): Promise<(TopicPartition & { offset: number })[]> {
  await recordIntents(
    deps.store,
    deps.pipeline,
    planned.map((p) => p.range),
  );
  const commits: (TopicPartition & { offset: number })[] = [];
  let inserting: Promise<void> | null = null;
  for (const { route, range, batch } of planned) {
    // Each record's sha256, once: the batch's token, the raw plane's raw_sha256, a quarantined row's record_sha256.
    const shas = batch.map((m) => sha256Hex(m.value));
    const rows = await rowsOf(route, batch, shas, decoderOf(deps.decoders, route.topic));
    // A row ClickHouse cannot store is quarantined with the consumed record's position and bytes; the rest lands.
    const sources = (i: number): RowSource | undefined => {
      const m = batch[i];
      return m
        ? { topic: m.topic, partition: m.partition, offset: m.offset, bytes: m.value, sha256: shas[i] as string }
        : undefined;
    };
    if (inserting) await inserting;
    inserting = deps.sink.insert({ table: route.table, rows, sources }, range, shas).then((landed) => {
      deps.tally.landed(route.table, batch.length, landed.quarantined);
      commits.push({ topic: range.topic, partition: range.partition, offset: range.lastOffset + 1 });
    });
    // Observed below (`await inserting`); marked handled so a failure while the next rows are prepared is not an
    // unhandled rejection.
    inserting.catch(() => undefined);
  }
  if (inserting) await inserting;
  return commits;
}

/**
 * Records the ranges of a round's batches in one insert. The table is a ReplacingMergeTree keyed by the range start
 * and read with FINAL, so a range recorded again (a retried or differently composed round) collapses.
 */
async function recordIntents(store: ClickHouseStore, pipeline: string, ranges: readonly BatchRange[]): Promise<void> {
  if (ranges.length === 0) return;
  const key = ranges.map((r) => `${r.topic}:${r.partition}:${r.firstOffset}-${r.lastOffset}`).join('|');
  await store.insert(
    INTENT_TABLE,
    ranges.map((range) => ({
      pipeline,
      topic: range.topic,
      partition: range.partition,
      first_offset: range.firstOffset,
      last_offset: range.lastOffset,
    })),
    { dedupToken: `intent:${pipeline}:${ranges.length === 1 ? key : sha256Hex(Buffer.from(key))}` },
  );
}

/**
 * A batch's rows, each record decoded and mapped in turn (its decoded value dies young, before the next is read), as
 * decoding the batch and then mapping it gave them: the same rows, and the same error for the first record of an output
 * topic that does not decode.
 */
async function rowsOf(
  route: SinkRoute,
  batch: readonly ConsumedMessage[],
  shas: readonly string[],
  decoder: FramedDecoder<Record<string, unknown>>,
): Promise<(Record<string, unknown> | Unmappable)[]> {
  const rows = new Array<Record<string, unknown> | Unmappable>(batch.length);
  if (route.raw) {
    // The raw plane keeps every consumed record's bytes, whatever it holds; the ids it names are kept when it decodes.
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i] as ConsumedMessage;
      const d = decoder.tryDecode(m.value) ?? (await decoder.decode(m.value));
      const known = d.ok ? rawKnownOf(d.value) : {};
      try {
        // originOf(m, m.timestamp), with the sha256 the batch already computed.
        const origin: Origin = {
          topic: m.topic,
          partition: m.partition,
          offset: m.offset,
          consumedAt: m.timestamp,
          rawSha256: shas[i] as string,
          raw: m.value,
          headers: m.headers,
          key: m.key,
          producedAt: m.timestamp > 0 ? m.timestamp : undefined,
        };
        rows[i] = rawEventRow(origin, known) as unknown as Record<string, unknown>;
      } catch (error) {
        // A producer timestamp DateTime64 cannot hold: the record is quarantined, never a halted partition.
        rows[i] = new Unmappable(error instanceof VigilError ? error.message : 'the record does not map to raw_events');
      }
    }
    return rows;
  }
  const map = rowMapper(route.table, route.row);
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i] as ConsumedMessage;
    const d = decoder.tryDecode(m.value) ?? (await decoder.decode(m.value));
    if (!d.ok) {
      // Our own outputs failing to decode is a bug or a foreign producer on our topic: stop rather than guess.
      throw new VigilError(
        'INTERNAL',
        `${m.topic}[${m.partition}]@${m.offset} does not decode as ${route.schema}: ${d.code}`,
      );
    }
    rows[i] = map(d.value);
  }
  return rows;
}

function latestPerPartition(
  commits: readonly (TopicPartition & { offset: number })[],
): (TopicPartition & { offset: number })[] {
  const latest = new Map<string, TopicPartition & { offset: number }>();
  for (const c of commits) {
    const k = `${c.topic}:${c.partition}`;
    const prev = latest.get(k);
    if (!prev || prev.offset < c.offset) latest.set(k, c);
  }
  return [...latest.values()];
}
