/**
 * The typed pipeline DSL a data engineer writes in `pipelines/`. The definition is the single source of truth for
 * the runners: which topics it reads and as which schema, what it writes (topics, schemas, ClickHouse tables), which
 * extra schema trees it brings. Nothing below `pipelines/` names a pipeline.
 *
 * @example
 * // One source: `source`.
 * export default definePipeline({ name: 'vitals', version: '1', source: envelopeSource(TOPICS.raw) })
 *   .pipe(validate())
 *   .pipe(dedupe())
 *   .pipe(score({ models: [{ model: 'news2', version: '1.0.0' }] }))
 *   .pipe(detectDrift({ model: 'news2', version: '1.0.0' }))
 *   .outputs({ records: [normalisedOutput(), inferenceOutput()], side: { driftHistograms: driftHistogramSink } });
 *
 * @example
 * // Several sources, each topic with its own schema: the chain's input is the union of their record types, and
 * // `fromSource` tells an operator which source a record came from (a type guard on the record's origin topic).
 * const inferences: SourceSpec<Inference> = { topic: TOPICS.inferences, schema: 'inference' };
 * const events: SourceSpec<NormalisedEvent> = { topic: TOPICS.normalised, schema: 'normalised' };
 * export default definePipeline({ name: 'alerts', version: '1', sources: [inferences, events] })
 *   .pipe(raiseAlerts({ inferences, events })) // an Operator<Inference | NormalisedEvent, Alert>
 *   .outputs({ records: [alertOutput], side: {} }); // its select may return several values (one alert per rule)
 * // inside the operator: if (fromSource(inferences, record)) { record.value.score ... }
 *
 * Several sources must be CO-PARTITIONED: the same partition count and the same key (the device id, so a patient's
 * records share a partition number on every topic). Keyed state is kept per input partition number
 * (runtime/state/changelog.ts) and the worker's consumer uses the range assignor, which hands partition p of every
 * source topic to the same worker; partition p's state (and its changelog partition p) therefore covers partition p of
 * every source. The distributed worker refuses to start when the source topics' partition counts differ.
 *
 * Each `.pipe` checks at compile time that the operator accepts what the chain so far produces, and `.outputs`
 * requires a sink for every side output the chain declares, so a wrong chain fails to compile rather than at run time.
 * The definition is pure data: the runner binds it to Kafka (keyed state in a changelog topic) and ClickHouse
 * (distributed) or to in-process equivalents (embedded), so the same definition runs in both modes. Records of each source are decoded with that
 * source's schema (reader: the newest `schemas/avro/<schema>/v<N>.avsc`, or one of the definition's `schemaDirs`;
 * writer: the registry id in the record's frame).
 */
import type { AnyOperator, NoSideOutputs, Operator, SideOutputs } from './operator.ts';
import type { InFlight } from './record.ts';

/** The record type a source (or a union of sources) yields. */
export type SourceRecord<S> = S extends SourceSpec<infer T> ? T : never;

/** Where a pipeline reads from. Decoding (Confluent framing + registry, NDJSON, Avro files) belongs to the adapter. */
export interface SourceSpec<T> {
  readonly topic: string;
  /** The schema folder (schemas/avro/<name>) records are read as: the reader schema for every writer version. */
  readonly schema: string;
  /** Phantom: the record type the source yields. */
  readonly __type?: T;
  /**
   * Where the sink lands this source's records instead of the raw plane, for a source that is not device traffic (the
   * gateway's rejection records: pipelines/gateway-rejections.ts): rows of its own table, declared like an output's
   * (`rows`: columns checked by `npm run check`, row mapping). Absent: the raw plane (`raw_events`), as bytes.
   */
  readonly lands?: { readonly table: string; readonly rows: TableRows };
}

/**
 * How an output's values become rows of its ClickHouse table, declared beside the output (its topic and schema), so
 * a table's knowledge is in one place. The table itself comes from a reviewed migration; `npm run check`
 * (scripts/check-tables.ts) fails when `columns` and the migrated table's insertable columns differ.
 *
 * @example
 * rows: { columns: ['reading_id', 'device_id', 'celsius'], row: (v) => ({ ...v, celsius: Number(v.celsius) }) }
 */
export interface TableRows {
  /** Every column the inserts send (EPHEMERAL ones included; MATERIALIZED and ALIAS ones never). */
  readonly columns: readonly string[];
  /**
   * One output value (as on its topic: both modes land the same) -> one row. Throw a VigilError naming the field for
   * a value the table cannot hold: the row is quarantined, never a failed batch. Default: the value is the row (or,
   * for the tables adapters/clickhouse/tables.ts still maps, its mapper).
   */
  readonly row?: (value: Record<string, unknown>) => Record<string, unknown>;
}

/** One fan-out of every record that completes the chain. */
export interface RecordOutput<O> {
  readonly name: string;
  /** Kafka topic (distributed mode); its value subject must be the newest version of `schema`. */
  readonly topic: string;
  /** The schema folder (schemas/avro/<name>) the selected value is encoded with. */
  readonly schema: string;
  /** ClickHouse table the value also lands in. */
  readonly table: string;
  /** The table's columns and row mapping (see `TableRows`). */
  readonly rows?: TableRows;
  /**
   * Maps a completed record to this output's value, to several (a record that raises one alert per rule: each value
   * is a message on the topic and a row of the table, in order), or null / none when this output does not apply.
   */
  select(record: InFlight<O>, processedAt: number): OutputValue | readonly OutputValue[] | null;
  /**
   * The event time (epoch ms) a value states, when its latency matters: the distributed worker then measures, at each
   * commit, every value's latency from that time and from the receipt of its record (`vigil_output_latency_seconds`).
   * Outputs without it are not measured (the per-record end-to-end lag covers them).
   */
  readonly eventTime?: (value: Readonly<Record<string, unknown>>) => number | null;
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
  /** The table's columns and row mapping (see `TableRows`). */
  readonly rows?: TableRows;
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
  /** Every topic the pipeline reads, each with its schema (co-partitioned: see the header). Never empty. */
  readonly sources: readonly SourceSpec<I>[];
  /** The first of `sources` (what a single-source pipeline declared as `source`). */
  readonly source: SourceSpec<I>;
  /**
   * Schema trees beyond this checkout's `schemas/avro` (absolute paths, each with its own subjects.json), for schemas
   * a pipeline brings along (e.g. a pipeline defined outside `pipelines/`). Empty for most pipelines.
   */
  readonly schemaDirs: readonly string[];
  readonly operators: readonly AnyOperator[];
  readonly outputs: PipelineOutputs<O, S>;
}

/** What `definePipeline` normalises its head to. */
interface PipelineHead<I> {
  readonly name: string;
  readonly version: string;
  readonly sources: readonly SourceSpec<I>[];
  readonly source: SourceSpec<I>;
  readonly schemaDirs: readonly string[];
}

interface HeadCommon {
  readonly name: string;
  readonly version: string;
  /** Extra schema trees (absolute paths, each with a subjects.json): see `PipelineDefinition.schemaDirs`. */
  readonly schemaDirs?: readonly string[];
}

export class PipelineBuilder<I, O, S extends SideOutputs> {
  readonly #head: PipelineHead<I>;
  readonly #operators: readonly AnyOperator[];
  constructor(head: PipelineHead<I>, operators: readonly AnyOperator[]) {
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
    // A landing definition (every source lands in its own table, no operator) has nothing to output.
    const landingOnly = this.#operators.length === 0 && this.#head.sources.every((s) => s.lands !== undefined);
    if (outputs.records.length === 0 && !landingOnly) {
      throw new Error(`pipeline ${this.#head.name}: needs at least one record output`);
    }
    const sources = new Set(this.#head.sources.map((s) => s.topic));
    for (const o of [...outputs.records, ...Object.values(outputs.side)]) {
      if (sources.has(o.topic)) {
        throw new Error(`pipeline ${this.#head.name}: output topic ${o.topic} is also a source (a loop)`);
      }
    }
    return { ...this.#head, operators: this.#operators, outputs };
  }
}

/** Starts a pipeline on one source (`source`) or several co-partitioned ones (`sources`; see the header). */
export function definePipeline<I>(head: HeadCommon & { source: SourceSpec<I> }): PipelineBuilder<I, I, NoSideOutputs>;
export function definePipeline<const L extends readonly [SourceSpec<unknown>, ...SourceSpec<unknown>[]]>(
  head: HeadCommon & { sources: L },
): PipelineBuilder<SourceRecord<L[number]>, SourceRecord<L[number]>, NoSideOutputs>;
export function definePipeline(
  head: HeadCommon & { source?: SourceSpec<unknown>; sources?: readonly SourceSpec<unknown>[] },
): PipelineBuilder<unknown, unknown, NoSideOutputs> {
  if (!/^[a-z][a-z0-9-]*$/.test(head.name)) throw new Error(`pipeline name "${head.name}" must be lower-case kebab`);
  if (head.source && head.sources) throw new Error(`pipeline ${head.name}: give either source or sources, not both`);
  const sources = head.sources ?? (head.source ? [head.source] : []);
  const first = sources[0];
  if (!first) throw new Error(`pipeline ${head.name}: needs a source`);
  const topics = new Set(sources.map((s) => s.topic));
  if (topics.size !== sources.length) throw new Error(`pipeline ${head.name}: a source topic is listed twice`);
  return new PipelineBuilder<unknown, unknown, NoSideOutputs>(
    { name: head.name, version: head.version, sources, source: first, schemaDirs: head.schemaDirs ?? [] },
    [],
  );
}

/**
 * Whether a record came from `source` (by its origin topic): narrows a multi-source pipeline's input union.
 *
 * @example
 * for (const record of batch) if (fromSource(inferences, record)) escalate(record.value.score);
 */
export function fromSource<T>(source: SourceSpec<T>, record: InFlight<unknown>): record is InFlight<T> {
  return record.origin.topic === source.topic;
}

/** The transformation_version derived records carry: pipeline@version/operator/operator/... */
export function transformationVersion(definition: Pick<PipelineDefinition, 'name' | 'version' | 'operators'>): string {
  return [`${definition.name}@${definition.version}`, ...definition.operators.map((op) => op.name)].join('/');
}

/** Every table a definition's outputs (and landing sources, `SourceSpec.lands`) declare (`rows`), by table name. */
export function declaredTables(
  definition: Pick<PipelineDefinition, 'outputs'> & { readonly sources?: PipelineDefinition['sources'] },
): Map<string, TableRows> {
  const tables = new Map<string, TableRows>();
  for (const s of definition.sources ?? []) if (s.lands) tables.set(s.lands.table, s.lands.rows);
  for (const o of [...definition.outputs.records, ...Object.values(definition.outputs.side)]) {
    if (o.rows) tables.set(o.table, o.rows);
  }
  return tables;
}
