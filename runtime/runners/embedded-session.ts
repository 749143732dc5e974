/**
 * One embedded run, end to end: in-memory state, the local model store (and the model rollouts, when the run follows
 * a registry), a fresh embedded ClickHouse (chdb) with the migrations applied and the operators' reference data
 * loaded (again after each routing change), the engine, then what the run stored, counted from ClickHouse itself
 * (FINAL) rather than from the runner's own tally.
 */
import { rmSync } from 'node:fs';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { systemClock } from '../clock.ts';
import { Engine, type SourceBatch } from '../engine.ts';
import type { Logger } from '../log.ts';
import { PipelineMetrics } from '../metrics.ts';
import type { ModelRollouts } from '../models.ts';
import type { OperatorContext } from '../operator.ts';
import type { PipelineDefinition } from '../pipeline.ts';
import { MemoryStateBackend } from '../state/memory.ts';
import { pipelineTables } from './clickhouse-sink.ts';
import { type EmbeddedDeps, type EmbeddedRun, runEmbedded } from './embedded.ts';
import { instrumentModels } from './instrument.ts';
import { followReferenceTables } from './reference-tables.ts';

export interface EmbeddedSessionOptions {
  /** chdb data directory. */
  readonly dataDir: string;
  /** Keep what the directory already holds (default: start from an empty store). */
  readonly append?: boolean;
  readonly log: Logger;
}

export interface EmbeddedSessionResult extends EmbeddedRun {
  /** Rows per table the pipeline lands in (`pipelineTables`: from its definition) after the run, counted with FINAL. */
  readonly stored: Record<string, number>;
  /** Keyed-state entries dropped for capacity before their TTL (dedupe protection weakened when > 0). */
  readonly stateEvictions: number;
}

export async function withEmbeddedStore<T>(
  options: EmbeddedSessionOptions,
  use: (store: ClickHouseStore) => Promise<T>,
): Promise<T> {
  if (!options.append) rmSync(options.dataDir, { recursive: true, force: true });
  const store = openChdbStore({ path: options.dataDir });
  try {
    await store.migrate();
    return await use(store);
  } finally {
    await store.close();
  }
}

/** What a session may be given beside its definition, source and store. */
export interface EmbeddedSessionExtras<I, O> {
  /** Sees every batch's outputs as they go on their topics: e.g. a `TopicTap` (./embedded-chain.ts). */
  readonly onEmitted?: EmbeddedDeps<I, O>['onEmitted'];
  /** The model rollouts in force (./model-rollouts.ts); absent: every model runs its pipeline default as live. */
  readonly rollouts?: ModelRollouts;
  /** The model store's folder (`<root>/<name>/<version>/`); default: the repository's models/. */
  readonly modelsRoot?: string;
}

export async function runEmbeddedSession<I, O>(
  definition: PipelineDefinition<I, O>,
  source: AsyncIterable<SourceBatch<I>>,
  store: ClickHouseStore,
  log: Logger,
  extras: EmbeddedSessionExtras<I, O> = {},
): Promise<EmbeddedSessionResult> {
  const { onEmitted, rollouts, modelsRoot } = extras;
  const metrics = new PipelineMetrics();
  const state = new MemoryStateBackend({ clock: systemClock });
  await state.open();
  const context: OperatorContext = {
    pipeline: definition.name,
    clock: systemClock,
    state,
    log,
    models: instrumentModels(new OnnxModelStore(modelsRoot ? { root: modelsRoot } : {}), metrics),
    ...(rollouts ? { rollouts } : {}),
  };
  const engine = new Engine(definition, metrics);
  const run = await runEmbedded(
    { engine, context, store, metrics, clock: systemClock, log, ...(onEmitted ? { onEmitted } : {}) },
    withReferenceTables(source, definition, context, store),
  );
  const stateEvictions = state.evictions();
  await state.close();
  return { ...run, stored: await storedCounts(store, pipelineTables(definition)), stateEvictions };
}

/**
 * Lands the operators' reference data (e.g. drift reference bins) once the engine has opened them, and again before
 * the first batch after each routing change (a version routed mid-run gets its reference rows; ./reference-tables.ts).
 */
async function* withReferenceTables<I>(
  source: AsyncIterable<SourceBatch<I>>,
  definition: Pick<PipelineDefinition, 'operators'>,
  context: OperatorContext,
  store: ClickHouseStore,
): AsyncGenerator<SourceBatch<I>> {
  const references = followReferenceTables(definition, context, store);
  await references.land();
  for await (const batch of source) {
    await references.landIfRoutingChanged();
    yield batch;
  }
}

/** Rows per table, counted with FINAL (`tables`: a pipeline's, `pipelineTables(definition)`). */
export async function storedCounts(store: ClickHouseStore, tables: readonly string[]): Promise<Record<string, number>> {
  const stored: Record<string, number> = {};
  for (const table of tables) {
    const [row] = await store.query<{ n: number | string }>(`SELECT count() AS n FROM ${table} FINAL`);
    stored[table] = Number(row?.n ?? 0);
  }
  return stored;
}
