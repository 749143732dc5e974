/**
 * The typed pipeline DSL a data engineer writes in `pipelines/`:
 *
 * @example
 * export default definePipeline({ name: 'vitals', version: '1', source: envelopeSource(TOPICS.raw) })
 *   .pipe(validate())
 *   .pipe(dedupe())
 *   .pipe(score({ model: 'news2', version: '1.0.0' }))
 *   .pipe(detectDrift({ model: 'news2', version: '1.0.0' }))
 *   .outputs({ records: [normalisedOutput(), inferenceOutput()], side: { driftHistograms: driftHistogramSink } });
 *
 * Each `.pipe` checks at compile time that the operator accepts what the chain so far produces, and `.outputs`
 * requires a sink for every side output the chain declares, so a wrong chain fails to compile rather than at run time.
 * The definition is pure data: the runner binds it to Kafka/Redis/ClickHouse (distributed) or to in-process
 * equivalents (embedded), so the same definition runs in both modes.
 */
import type { AnyOperator, NoSideOutputs, Operator, SideOutputs } from './operator.ts';
import type { InFlight } from './record.ts';

/** Where a pipeline reads from. Decoding (Confluent framing + registry, NDJSON, Avro files) belongs to the adapter. */
export interface SourceSpec<T> {
  readonly topic: string;
  /** The schema folder (schemas/avro/<name>) records are read as: the reader schema for every writer version. */
  readonly schema: string;
  /** Phantom: the record type the source yields. */
  readonly __type?: T;
}

/** One fan-out of every record that completes the chain. */
export interface RecordOutput<O> {
  readonly name: string;
  /** Kafka topic (distributed mode); its value subject must be the newest version of `schema`. */
  readonly topic: string;
  /** The schema folder (schemas/avro/<name>) the selected value is encoded with. */
  readonly schema: string;
  /** ClickHouse table the value also lands in (see adapters/clickhouse/tables.ts for the row mapping). */
  readonly table: string;
  /** Maps a completed record to this output's value, or null when this output does not apply to it. */
  select(record: InFlight<O>, processedAt: number): OutputValue | null;
}

export interface OutputValue {
  /** Kafka record key: the device id, so consumers downstream keep per-device order. */
  readonly key: string;
  readonly value: Record<string, unknown>;
}

/** Where a side output's rows go: a topic (with its schema) and the ClickHouse table the sink lands them in. */
export interface SideOutputSink<R> {
  readonly topic: string;
  readonly schema: string;
  readonly table: string;
  /** Kafka key of a row (rows of one group share a partition downstream). */
  key(row: R): string;
}

export interface PipelineOutputs<O, S extends SideOutputs> {
  readonly records: readonly RecordOutput<O>[];
  readonly side: { readonly [K in keyof S]-?: SideOutputSink<S[K]> };
}

export interface PipelineDefinition<I = unknown, O = unknown, S extends SideOutputs = SideOutputs> {
  readonly name: string;
  /** Part of every record's transformation_version: bump it when the chain's behaviour changes. */
  readonly version: string;
  readonly source: SourceSpec<I>;
  readonly operators: readonly AnyOperator[];
  readonly outputs: PipelineOutputs<O, S>;
}

export class PipelineBuilder<I, O, S extends SideOutputs> {
  readonly #head: { name: string; version: string; source: SourceSpec<I> };
  readonly #operators: readonly AnyOperator[];
  constructor(head: { name: string; version: string; source: SourceSpec<I> }, operators: readonly AnyOperator[]) {
    this.#head = head;
    this.#operators = operators;
  }

  pipe<O2, S2 extends SideOutputs = NoSideOutputs>(operator: Operator<O, O2, S2>): PipelineBuilder<I, O2, S & S2> {
    const names = new Set(this.#operators.map((op) => op.name));
    if (names.has(operator.name)) {
      throw new Error(
        `pipeline ${this.#head.name}: operator name "${operator.name}" is used twice; names must be unique`,
      );
    }
    return new PipelineBuilder<I, O2, S & S2>(this.#head, [...this.#operators, operator]);
  }

  outputs(outputs: PipelineOutputs<O, S>): PipelineDefinition<I, O, S> {
    if (outputs.records.length === 0) throw new Error(`pipeline ${this.#head.name}: needs at least one record output`);
    return { ...this.#head, operators: this.#operators, outputs };
  }
}

export function definePipeline<I>(head: {
  name: string;
  version: string;
  source: SourceSpec<I>;
}): PipelineBuilder<I, I, NoSideOutputs> {
  if (!/^[a-z][a-z0-9-]*$/.test(head.name)) throw new Error(`pipeline name "${head.name}" must be lower-case kebab`);
  return new PipelineBuilder<I, I, NoSideOutputs>(head, []);
}

/** The transformation_version derived records carry: pipeline@version/operator/operator/... */
export function transformationVersion(definition: Pick<PipelineDefinition, 'name' | 'version' | 'operators'>): string {
  return [`${definition.name}@${definition.version}`, ...definition.operators.map((op) => op.name)].join('/');
}
