/**
 * The embedded runner: the same operator chain, in-process, with no services. Batches come from an in-process
 * source (the fleet simulator, an NDJSON or Avro file), state lives in memory, and every batch's outputs land in the
 * embedded ClickHouse (chdb) under the same deterministic batch contract the distributed sink uses.
 */
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import type { Clock } from '../clock.ts';
import { type Accounting, addOutcome, type Engine, emptyAccounting, type SourceBatch } from '../engine.ts';
import type { Logger } from '../log.ts';
import type { PipelineMetrics } from '../metrics.ts';
import type { OperatorContext } from '../operator.ts';
import { type EmittedBatch, materialise } from '../outputs.ts';
import { ClickHouseSink } from '../sinks/clickhouse.ts';
import { withDeclaredRows } from './pipeline-schemas.ts';

export interface EmbeddedRun {
  readonly accounting: Accounting;
  /** Dead letters by reason code. */
  readonly deadLetters: Record<string, number>;
  /** Duplicates by kind. */
  readonly duplicates: Record<string, number>;
  /**
   * Rows set aside in the quarantine table by target table (ClickHouse cannot store them; runtime/sinks/clickhouse.ts).
   * Not a fourth fate: each came from a record already counted as emitted, dead-lettered or duplicate.
   */
  readonly quarantined: Record<string, number>;
  readonly batches: number;
  readonly elapsedMs: number;
}

export interface EmbeddedDeps<I, O> {
  readonly engine: Engine<I, O>;
  readonly context: OperatorContext;
  readonly store: ClickHouseStore;
  readonly metrics: PipelineMetrics;
  readonly clock: Clock;
  readonly log: Logger;
  /** Sees every batch's outputs as they go on their topics (before table mapping): e.g. a `TopicTap` (./embedded-chain.ts). */
  readonly onEmitted?: (batch: EmittedBatch) => void;
}

export async function runEmbedded<I, O>(
  deps: EmbeddedDeps<I, O>,
  source: AsyncIterable<SourceBatch<I>>,
): Promise<EmbeddedRun> {
  const { engine, store, metrics, clock } = deps;
  const definition = engine.definition;
  const sink = new ClickHouseSink(store, `${definition.name}@${definition.version}`, { metrics, log: deps.log });
  const toRows = withDeclaredRows(definition);
  const accounting = emptyAccounting();
  const deadLetters: Record<string, number> = {};
  const duplicates: Record<string, number> = {};
  const quarantined: Record<string, number> = {};
  const started = Date.now();
  let batches = 0;

  await engine.open(deps.context);
  // Batch k's inserts run in the ClickHouse engine's threads while batch k+1 is read and processed; writes stay in
  // batch order, one batch at a time, and the run ends only when the last one has returned.
  let writing: Promise<void> | null = null;
  try {
    for await (const batch of source) {
      const outcome = await engine.process(batch);
      addOutcome(accounting, outcome);
      for (const r of outcome.rejected) deadLetters[r.code] = (deadLetters[r.code] ?? 0) + 1;
      for (const d of outcome.duplicates) duplicates[d.kind] = (duplicates[d.kind] ?? 0) + 1;
      const materialised = materialise(definition, outcome, clock.now());
      deps.onEmitted?.(materialised);
      const emitted = toRows(materialised);
      if (writing) await writing;
      writing = sink.writeEmitted(emitted).then((byTable) => {
        for (const [table, n] of Object.entries(byTable)) quarantined[table] = (quarantined[table] ?? 0) + n;
      });
      writing.catch(() => undefined); // observed by the next `await writing`; handled meanwhile
      batches++;
    }
    if (writing) await writing;
  } finally {
    // A failed write must not leave its rejection unobserved while the engine closes.
    await writing?.catch(() => undefined);
    await engine.close();
  }
  deps.log.debug({ batches, ...accounting }, 'embedded run finished');
  return { accounting, deadLetters, duplicates, quarantined, batches, elapsedMs: Date.now() - started };
}
