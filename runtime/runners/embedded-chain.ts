/**
 * Chaining embedded pipelines by topic: what one run emits to a topic is what a pipeline reading that topic consumes,
 * in-process, as it would from Kafka. Nothing here names a pipeline: the link is the topic names alone (a downstream
 * definition's sources that are an upstream definition's outputs).
 *
 * The upstream run is tapped (`TopicTap.observe` as its `onEmitted`): every value its outputs put on a tapped topic is
 * kept, in emission order, with its Kafka key. The downstream run then reads them through `framedSource`: framed with
 * the in-process registry's id of its source schema, spread over partitions by key (co-partitioned, as on Kafka) and
 * decoded by each source's decoder, so a value that does not fit its topic's schema takes the dead-letter path there.
 * Runs are sequential (upstream to the end, then downstream): an embedded run is a batch job over a finite input, and
 * each topic's per-key order is kept, which is all a keyed consumer is promised on Kafka either.
 *
 * @example
 * const tap = TopicTap.between(vitals, alerts);
 * await runEmbeddedSession(vitals, fleet, store, log, { onEmitted: (batch) => tap.observe(batch) });
 * await runEmbeddedSession(alerts, chainedSource(alerts, [tap], { clock }), store, log);
 */
import type { Clock } from '../clock.ts';
import type { SourceBatch } from '../engine.ts';
import { VigilError } from '../errors.ts';
import type { EmittedBatch } from '../outputs.ts';
import type { PipelineDefinition } from '../pipeline.ts';
import { framedSource, type SourceInput } from './embedded-sources.ts';

/** Keeps the values a run emits to some topics, for a downstream pipeline that reads them. */
export class TopicTap {
  readonly topics: ReadonlySet<string>;
  readonly #records: SourceInput[] = [];

  constructor(topics: Iterable<string>) {
    this.topics = new Set(topics);
  }

  /** A tap on every topic `downstream` reads that `upstream` writes; refuses a pair with none in common. */
  static between(
    upstream: Pick<PipelineDefinition, 'name' | 'outputs'>,
    downstream: Pick<PipelineDefinition, 'name' | 'sources'>,
  ): TopicTap {
    const written = new Set([...upstream.outputs.records, ...Object.values(upstream.outputs.side)].map((o) => o.topic));
    const shared = downstream.sources.map((s) => s.topic).filter((t) => written.has(t));
    if (shared.length === 0) {
      throw new VigilError(
        'CONFIG_INVALID',
        `${downstream.name} reads no topic ${upstream.name} writes: nothing to chain (it reads ${downstream.sources.map((s) => s.topic).join(', ')})`,
      );
    }
    return new TopicTap(shared);
  }

  /** An upstream batch's outputs: keeps the values of tapped topics, in order. */
  observe(batch: EmittedBatch): void {
    for (const output of batch.outputs) {
      if (!this.topics.has(output.topic)) continue;
      for (const v of output.values) this.#records.push({ topic: output.topic, key: v.key, value: v.value });
    }
  }

  /** Values kept so far, per tapped topic. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = Object.fromEntries([...this.topics].map((t) => [t, 0]));
    for (const r of this.#records) counts[r.topic] = (counts[r.topic] ?? 0) + 1;
    return counts;
  }

  get records(): readonly SourceInput[] {
    return this.#records;
  }
}

/**
 * The downstream run's input: every tap's values, then `more` (records of its other sources, e.g. a scripted scenario),
 * framed and decoded as from Kafka. Each record must be on one of `downstream`'s source topics.
 */
export function chainedSource<I>(
  downstream: Pick<PipelineDefinition<I>, 'name' | 'sources' | 'schemaDirs'>,
  taps: readonly TopicTap[],
  options: { readonly clock: Clock; readonly more?: Iterable<SourceInput>; readonly batchSize?: number },
): AsyncGenerator<SourceBatch<I>> {
  const read = new Set(downstream.sources.map((s) => s.topic));
  for (const tap of taps) {
    for (const t of tap.topics) {
      if (!read.has(t)) throw new VigilError('CONFIG_INVALID', `${downstream.name} does not read tapped topic ${t}`);
    }
  }
  function* all(): Generator<SourceInput> {
    for (const tap of taps) yield* tap.records;
    if (options.more) yield* options.more;
  }
  return framedSource(downstream, all(), {
    clock: options.clock,
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
  });
}
