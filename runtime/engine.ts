/**
 * The engine: runs one source micro-batch through a pipeline's operator chain.
 *
 * It is deliberately small. It knows nothing of Kafka, Redis or ClickHouse: a runner (runtime/runners/) reads a
 * batch from a source, calls `process`, and hands the outcome to sinks. Every operator is observed by the same wrapper
 * (records in/out, batch time, dead letters by reason, duplicates), and after every operator the engine checks that
 * each input record ended in exactly one of out / rejected / duplicates, so the run's accounting
 * (consumed = emitted + dead-lettered + duplicates) holds by construction, batch by batch.
 */
import { type Stage, VigilError } from './errors.ts';
import type { PipelineMetrics } from './metrics.ts';
import type { AnyOperator, DuplicateNotice, OperatorContext, Rejection } from './operator.ts';
import type { PipelineDefinition } from './pipeline.ts';
import type { InFlight, Origin } from './record.ts';

/** Where a batch came from: exactly the records of one partition from `firstOffset` to `lastOffset`. */
export interface BatchRange {
  readonly topic: string;
  readonly partition: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
}

export interface SourceBatch<I> {
  readonly range: BatchRange;
  /** Every consumed record, in offset order (the raw plane keeps them all). */
  readonly origins: readonly Origin[];
  /** The records that decoded. */
  readonly records: readonly InFlight<I>[];
  /** The records that did not (stage `decode`). */
  readonly rejected: readonly Rejection[];
}

export interface StagedRejection extends Rejection {
  readonly stage: Stage;
  readonly operator: string;
}

export interface StagedDuplicate extends DuplicateNotice {
  readonly operator: string;
}

export interface BatchOutcome<O> {
  readonly range: BatchRange;
  readonly origins: readonly Origin[];
  readonly completed: readonly InFlight<O>[];
  readonly rejected: readonly StagedRejection[];
  readonly duplicates: readonly StagedDuplicate[];
  readonly side: Readonly<Record<string, readonly unknown[]>>;
}

export interface Accounting {
  consumed: number;
  emitted: number;
  deadLettered: number;
  duplicates: number;
}

export function emptyAccounting(): Accounting {
  return { consumed: 0, emitted: 0, deadLettered: 0, duplicates: 0 };
}

export function addOutcome(total: Accounting, outcome: BatchOutcome<unknown>): void {
  total.consumed += outcome.origins.length;
  total.emitted += outcome.completed.length;
  total.deadLettered += outcome.rejected.length;
  total.duplicates += outcome.duplicates.length;
}

/** Adds one accounting into a running total (a worker's committed batches; a run's restarted workers). */
export function addAccounting(total: Accounting, add: Accounting): void {
  total.consumed += add.consumed;
  total.emitted += add.emitted;
  total.deadLettered += add.deadLettered;
  total.duplicates += add.duplicates;
}

export function balanced(a: Accounting): boolean {
  return a.consumed === a.emitted + a.deadLettered + a.duplicates;
}

export class Engine<I, O> {
  readonly definition: PipelineDefinition<I, O>;
  readonly #metrics: PipelineMetrics;
  readonly #operators: readonly AnyOperator[];
  #opened = false;

  constructor(definition: PipelineDefinition<I, O>, metrics: PipelineMetrics) {
    this.definition = definition;
    this.#metrics = metrics;
    this.#operators = definition.operators;
  }

  /** Opens every operator in chain order; the first that cannot start stops the pipeline before any record. */
  async open(context: OperatorContext): Promise<void> {
    // Operators learn the pipeline's sources from its definition, whoever built the context.
    const withSources: OperatorContext = { ...context, sources: this.definition.sources.map((s) => s.topic) };
    for (const operator of this.#operators) {
      try {
        await operator.open?.(withSources);
      } catch (error) {
        if (error instanceof VigilError) throw error;
        throw new VigilError('CONFIG_INVALID', `operator ${operator.name} could not start: ${String(error)}`, {
          cause: error,
        });
      }
    }
    this.#opened = true;
  }

  async process(batch: SourceBatch<I>): Promise<BatchOutcome<O>> {
    if (!this.#opened) throw new VigilError('INTERNAL', 'Engine.process called before open()');
    const pipeline = this.definition.name;
    const m = this.#metrics;
    const rejected: StagedRejection[] = batch.rejected.map((r) => ({ ...r, stage: 'decode', operator: 'decode' }));
    const duplicates: StagedDuplicate[] = [];
    const side: Record<string, unknown[]> = {};

    if (batch.origins.length !== batch.records.length + batch.rejected.length) {
      throw new VigilError('INTERNAL', `source batch ${describeRange(batch.range)}: consumed != decoded + rejected`);
    }
    m.consumed.inc({ pipeline }, batch.origins.length);
    m.batchRecords.observe({ pipeline }, batch.origins.length);

    let current: readonly InFlight<unknown>[] = batch.records;
    for (const operator of this.#operators) {
      if (current.length === 0) break;
      const started = process.hrtime.bigint();
      const results = await operator.process(current);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;

      const accounted = results.out.length + results.rejected.length + results.duplicates.length;
      if (accounted !== current.length) {
        m.accountingViolations.inc({ pipeline });
        throw new VigilError(
          'INTERNAL',
          `operator ${operator.name} took ${current.length} records and accounted for ${accounted} (out + rejected + duplicates)`,
        );
      }
      m.operatorIn.inc({ pipeline, operator: operator.name }, current.length);
      m.operatorOut.inc({ pipeline, operator: operator.name }, results.out.length);
      m.operatorSeconds.observe({ pipeline, operator: operator.name }, seconds);
      for (const r of results.rejected) rejected.push({ ...r, stage: operator.stage, operator: operator.name });
      for (const d of results.duplicates) duplicates.push({ ...d, operator: operator.name });
      for (const [name, rows] of Object.entries(results.side) as [string, unknown[] | undefined][]) {
        if (!rows || rows.length === 0) continue;
        const target = side[name];
        if (target) target.push(...rows);
        else side[name] = [...rows];
      }
      current = results.out;
    }

    for (const r of rejected) m.deadLetters.inc({ pipeline, stage: r.stage, reason: r.code });
    for (const d of duplicates) m.duplicates.inc({ pipeline, kind: d.kind });
    m.emitted.inc({ pipeline }, current.length);

    return {
      range: batch.range,
      origins: batch.origins,
      completed: current as readonly InFlight<O>[],
      rejected,
      duplicates,
      side,
    };
  }

  async close(): Promise<void> {
    for (const operator of [...this.#operators].reverse()) await operator.close?.();
    this.#opened = false;
  }
}

export function describeRange(range: BatchRange): string {
  return `${range.topic}[${range.partition}] ${range.firstOffset}..${range.lastOffset}`;
}
