/**
 * The distributed worker: one member of a Kafka consumer group running a pipeline.
 *
 * Per poll: records are grouped into per-partition micro-batches (size and linger configurable), decoded with their
 * source topic's decoder, run
 * through the engine, and their outputs (record outputs, side outputs, dead letters, duplicates) are produced in ONE
 * Kafka transaction together with the consumed offsets. Offsets therefore advance only when every output is durably
 * written; a crash or kill -9 anywhere before the commit aborts the transaction, and the next owner re-reads the same
 * records. Keyed state changes go into the same transaction (a changelog, runtime/state/changelog.ts), so state
 * and outputs can never disagree after a crash; owner tokens (runtime/state.ts) make a re-read batch classify exactly
 * as before.
 *
 * Backpressure: while a transaction is in flight the next batch is already being processed; if that one is ready
 * before the commit returns, the worker pauses its partitions (librdkafka stops fetching) until the commit lands.
 */
import type { KafkaConsumerClient, TopicPartition } from '../../adapters/kafka/consumer.ts';
import type { ProducerRecord, TransactionalProducer } from '../../adapters/kafka/producer.ts';
import type { BatchDecoder, ValueEncoder } from '../codec.ts';
import { TOPICS } from '../endpoints.ts';
import { type Accounting, addAccounting, addOutcome, type Engine, emptyAccounting } from '../engine.ts';
import { VigilError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { PipelineMetrics } from '../metrics.ts';
import { type EmittedBatch, materialise, STANDARD_OUTPUTS } from '../outputs.ts';
import { byPartition, decodeBatch, type RawRecord } from '../source.ts';
import type { StateChange } from '../state/changelog.ts';
import { decoderOf } from './pipeline-schemas.ts';
import type { RunStats } from './run-stats.ts';

export interface WorkerOptions {
  /**
   * Most records taken per poll (all partitions together; the poll is cut into one batch per partition, so with P
   * partitions assigned a batch holds about maxBatch / P records: see bench/README.md for the effect of its size).
   */
  readonly maxBatch: number;
  /** Stop after this many consumed records (tests, benchmarks); default: run until stopped. */
  readonly stopAfter?: number;
  /** Stop once the source has been idle this long (tests, benchmarks). */
  readonly stopWhenIdleMs?: number;
}

export interface WorkerDeps<I, O> {
  readonly engine: Engine<I, O>;
  readonly consumer: KafkaConsumerClient;
  readonly producer: TransactionalProducer;
  /** One decoder per source topic (each source's own schema: ./pipeline-schemas.ts). */
  readonly decoders: ReadonlyMap<string, BatchDecoder<I>>;
  readonly encoder: ValueEncoder;
  readonly metrics: PipelineMetrics;
  readonly log: Logger;
  readonly now: () => number;
  /** Timing, CPU and end-to-end latency of the run (kept across in-process restarts by the caller). */
  readonly stats?: RunStats;
  /** Called after every committed transaction (ends an outage for the ride-through loop). */
  readonly onCommitted?: () => void;
  /** Where keyed state changes go, in each batch's transaction (absent: the pipeline keeps no keyed state). */
  readonly changelog?: {
    readonly topic: string;
    /** The changes the engine's last batches made, taken once per transaction. */
    takeChanges(): StateChange[];
  };
}

export class Worker<I, O> {
  readonly accounting: Accounting = emptyAccounting();
  readonly #deps: WorkerDeps<I, O>;
  readonly #options: WorkerOptions;
  #stopping = false;
  #inFlight: Promise<void> = Promise.resolve();
  /** Next offset to process per partition (for the lag gauge). */
  readonly #positions = new Map<string, number>();

  constructor(deps: WorkerDeps<I, O>, options: WorkerOptions) {
    this.#deps = deps;
    this.#options = options;
    this.#lagHistogram = deps.metrics.endToEndSeconds.labels({ pipeline: deps.engine.definition.name });
  }

  /** Asks the loop to finish its current batch, commit it and return. */
  stop(): void {
    this.#stopping = true;
  }

  async run(): Promise<Accounting> {
    const { consumer, metrics, engine } = this.#deps;
    const pipeline = engine.definition.name;
    let lastRecordAt = 0;
    let pending: Promise<void> | null = null;
    try {
      while (!this.#stopping) {
        const epoch = consumer.epoch;
        const receiveStart = process.hrtime.bigint();
        const messages = await consumer.consume(this.#options.maxBatch);
        if (messages.length === 0) {
          if (
            this.#options.stopWhenIdleMs !== undefined &&
            consumer.idleFor(lastRecordAt) >= this.#options.stopWhenIdleMs
          ) {
            break;
          }
          continue;
        }
        lastRecordAt = Date.now();
        const consumedAt = this.#deps.now();
        this.#deps.stats?.consumed(consumedAt);
        const received = process.hrtime.bigint();
        const emitted: EncodedBatch[] = [];
        const counted = emptyAccounting();
        let decoding = 0n;
        // Partition by partition: decoded, processed and encoded before the next is decoded, so only one partition's
        // object graph (envelopes, inferences, rows) is alive at a time, not the whole poll's (the scavenger copies
        // whatever is alive: with a poll's worth of records that was the largest part of the worker's GC).
        for (const group of byPartition<RawRecord>(messages)) {
          const decodeStart = process.hrtime.bigint();
          const batch = await decodeBatch(group, decoderOf(this.#deps.decoders, group[0]!.topic), consumedAt);
          decoding += process.hrtime.bigint() - decodeStart;
          const outcome = await engine.process(batch);
          addOutcome(counted, outcome);
          emitted.push(this.#encode(materialise(engine.definition, outcome, this.#deps.now())));
        }
        const changes = this.#deps.changelog?.takeChanges() ?? [];
        // The stages as before: receive = the poll and its decoding, process = the rest.
        metrics.batchSeconds.observe({ pipeline, stage: 'receive' }, Number(received - receiveStart + decoding) / 1e9);
        metrics.batchSeconds.observe(
          { pipeline, stage: 'process' },
          Number(process.hrtime.bigint() - received - decoding) / 1e9,
        );

        if (pending) await this.#awaitWithBackpressure(pending);
        if (epoch !== consumer.epoch || consumer.revoking) {
          // A rebalance began while this batch was read or processed: its records are re-read from the committed
          // offsets by their next owner (maybe this worker), so it is dropped unsent, its state changes too. Sending it
          // could commit offsets past an earlier batch that was itself dropped. The working state it changed is either
          // dropped with a revoked partition or, for a kept one, recognises the re-read records by their owner tokens
          // (which log their changes again).
          this.#deps.log.info(
            { ranges: rangesOf(emitted) },
            'rebalance while this batch was read; left to the next owner',
          );
          pending = null;
          await consumer.rewindToCommitted(
            emitted.map((b) => ({ topic: b.range.topic, partition: b.range.partition })),
          );
          continue;
        }
        pending = this.#send(emitted, counted, changes);
        this.#inFlight = pending.catch(() => undefined);
        if (
          this.#options.stopAfter !== undefined &&
          this.accounting.consumed + counted.consumed >= this.#options.stopAfter
        )
          break;
      }
      if (pending) await pending;
    } finally {
      this.#stopping = true;
    }
    return this.accounting;
  }

  /**
   * The consumer's revoke hook: the transaction in flight commits while the partitions are still ours. (Batches read
   * before the revocation are dropped by the epoch check in `run`.)
   */
  async onRevoke(): Promise<void> {
    await this.#inFlight;
  }

  /** Waits for the transaction in flight; pauses fetching while it is slower than processing (backpressure). */
  async #awaitWithBackpressure(pending: Promise<void>): Promise<void> {
    const { consumer, metrics, engine } = this.#deps;
    const pipeline = engine.definition.name;
    let done = false;
    pending.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    await Promise.resolve();
    if (done) return pending;
    consumer.pauseAll();
    metrics.pausedPartitions.set({ pipeline }, consumer.assignment.length);
    try {
      await pending;
    } finally {
      consumer.resumeAll();
      metrics.pausedPartitions.set({ pipeline }, 0);
    }
  }

  /**
   * One batch's records to produce, in the order they are sent (outputs, dead letters, duplicates), and the times its
   * latency metrics need after the commit (so nothing else of the batch is kept).
   */
  #encode(batch: EmittedBatch): EncodedBatch {
    const { encoder } = this.#deps;
    const records: ProducerRecord[] = [];
    const outputs: EncodedOutput[] = [];
    for (const output of batch.outputs) {
      for (const v of output.values)
        records.push({ topic: output.topic, key: v.key, value: encoder.encode(output.schema, v.value) });
      const eventTime = output.eventTime;
      if (eventTime === undefined || output.values.length === 0) continue;
      const eventTimes: (number | null)[] = new Array(output.values.length);
      for (let i = 0; i < output.values.length; i++) eventTimes[i] = eventTime(output.values[i]!.value);
      outputs.push({ name: output.name, topic: output.topic, eventTimes });
    }
    for (const v of batch.deadLetters) {
      records.push({
        topic: TOPICS.deadLetter,
        key: v.key || null,
        value: encoder.encode(STANDARD_OUTPUTS.deadLetters.schema, v.value),
      });
    }
    for (const v of batch.duplicates) {
      records.push({
        topic: TOPICS.duplicates,
        key: v.key || null,
        value: encoder.encode(STANDARD_OUTPUTS.duplicates.schema, v.value),
      });
    }
    const producedAt: number[] = [];
    for (const seen of batch.raw) {
      const at = seen.origin.producedAt;
      if (at !== undefined) producedAt.push(at);
    }
    return { range: batch.range, records, producedAt, receivedAt: batch.raw[0]?.origin.consumedAt, outputs };
  }

  async #send(emitted: readonly EncodedBatch[], counted: Accounting, changes: readonly StateChange[]): Promise<void> {
    const { producer, consumer, metrics, engine, log } = this.#deps;
    const pipeline = engine.definition.name;
    const started = process.hrtime.bigint();
    const records: ProducerRecord[] = [];
    const offsets: (TopicPartition & { offset: number })[] = [];
    for (const batch of emitted) {
      for (const record of batch.records) records.push(record);
      offsets.push({ topic: batch.range.topic, partition: batch.range.partition, offset: batch.range.lastOffset + 1 });
    }
    const changelog = this.#deps.changelog;
    if (changelog) {
      for (const change of changes) {
        records.push({
          topic: changelog.topic,
          partition: change.partition,
          key: Buffer.from(change.key),
          value: change.value === null ? null : Buffer.from(change.value),
        });
      }
    }
    metrics.sinkQueueDepth.set({ pipeline, sink: 'kafka' }, records.length);
    const outcome = await producer.commit(records, offsets, consumer);
    metrics.transactions.inc({ pipeline, outcome });
    if (outcome === 'committed' && changes.length > 0) metrics.stateChanges.inc({ pipeline }, changes.length);
    metrics.sinkQueueDepth.set({ pipeline, sink: 'kafka' }, 0);
    metrics.batchSeconds.observe({ pipeline, stage: 'send' }, seconds(started));
    if (outcome === 'aborted') {
      // Nothing of these batches is visible to read_committed consumers; the group hands the records out again
      // from the committed offsets once this worker rejoins (the CLI restarts it in-process on this error).
      log.warn({ batches: emitted.length }, 'transaction aborted; batches will be re-read from committed offsets');
      throw new VigilError(
        'KAFKA_TRANSACTION_ABORTED',
        'transaction aborted; rejoin and re-read from committed offsets',
      );
    }
    this.#deps.onCommitted?.();
    addAccounting(this.accounting, counted);
    this.#observeLatency(emitted);
    for (const o of offsets) this.#positions.set(`${o.topic}:${o.partition}`, o.offset);
    for (const l of consumer.lag(this.#positions)) {
      metrics.consumerLag.set({ pipeline, topic: l.topic, partition: String(l.partition) }, l.lag);
    }
    if (log.isLevelEnabled('debug')) {
      log.debug({ ranges: rangesOf(emitted), epoch: this.#deps.consumer.epoch }, 'batch committed');
    }
  }

  /** Event lag per record: producer timestamp -> this commit (records without a producer timestamp are skipped). */
  #observeLatency(emitted: readonly EncodedBatch[]): void {
    const now = this.#deps.now();
    const stats = this.#deps.stats;
    stats?.committed(now);
    const histogram = this.#lagHistogram;
    for (const batch of emitted) {
      for (const producedAt of batch.producedAt) {
        const ms = now - producedAt;
        histogram.observe(ms / 1000);
        stats?.latency.observe(ms);
      }
      this.#observeOutputs(batch, now);
    }
  }

  /**
   * Output latency per value of the outputs that declare an event time, to this commit: from the receipt of its batch
   * (every record of a poll is stamped with one `consumedAt`, so this is the receipt of the record that triggered it)
   * and from the event time the value states.
   */
  #observeOutputs(batch: EncodedBatch, now: number): void {
    const receivedAt = batch.receivedAt;
    for (const output of batch.outputs) {
      const series = this.#outputSeries(output.name);
      const sketches = this.#deps.stats?.output(output.topic);
      const fromReceipt = receivedAt === undefined ? null : now - receivedAt;
      for (const at of output.eventTimes) {
        if (fromReceipt !== null) {
          series.receipt.observe(fromReceipt / 1000);
          sketches?.receipt.observe(fromReceipt);
        }
        if (at !== null && Number.isFinite(at)) {
          series.observed.observe((now - at) / 1000);
          sketches?.observed.observe(now - at);
        }
      }
    }
  }

  /** The output-latency histogram's children for one output, resolved once. */
  #outputSeries(output: string): { receipt: Observer; observed: Observer } {
    let s = this.#outputLatency.get(output);
    if (!s) {
      const pipeline = this.#deps.engine.definition.name;
      const h = this.#deps.metrics.outputLatency;
      s = {
        receipt: h.labels({ pipeline, output, from: 'receipt' }),
        observed: h.labels({ pipeline, output, from: 'observed' }),
      };
      this.#outputLatency.set(output, s);
    }
    return s;
  }

  /** The event-lag histogram's child for this pipeline, resolved once rather than per commit. */
  readonly #lagHistogram: Observer;
  readonly #outputLatency = new Map<string, { receipt: Observer; observed: Observer }>();
}

interface Observer {
  observe(value: number): void;
}

/** One output's event times (as its `eventTime` read them when the batch was encoded), for its latency metrics. */
interface EncodedOutput {
  readonly name: string;
  readonly topic: string;
  readonly eventTimes: readonly (number | null)[];
}

/** A processed batch as the transaction needs it: its records encoded, and what the metrics read after the commit. */
interface EncodedBatch {
  readonly range: EmittedBatch['range'];
  readonly records: readonly ProducerRecord[];
  /** The producer timestamps of its consumed records that have one. */
  readonly producedAt: readonly number[];
  /** When its poll was received (undefined: an empty batch). */
  readonly receivedAt: number | undefined;
  /** Outputs with a declared event time and at least one value. */
  readonly outputs: readonly EncodedOutput[];
}

/** `partition:first-last` per batch, for log lines (positions only, never record contents). */
function rangesOf(emitted: readonly { range: EmittedBatch['range'] }[]): string[] {
  return emitted.map((b) => `${b.range.partition}:${b.range.firstOffset}-${b.range.lastOffset}`);
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}
