/**
 * The distributed mode's ClickHouse sink, composed: the store (embedded chdb or the server), its migrations, the
 * operators' reference data, the registry and the pipeline's schema trees, /metrics, and the ride-through loop around
 * the consumer (./clickhouse-sink.ts). `vigil sink` parses its flags and calls this.
 *
 * The sink follows the model-rollouts log as workers do (./model-rollouts.ts: the Kafka topic, `--control-dir`, or
 * none) and lands the operators' reference data again whenever the routing revision changes (checked every second),
 * so a version first routed while it runs — a canary — gets its drift reference bins, and the drift guard its
 * figures, without a restart.
 *
 * Kafka, the schema registry or ClickHouse unreachable does not stop it: it backs off, says so (log line,
 * `vigil_dependency_retries_total`, `vigil_dependency_up`) and resumes from the committed offsets.
 */
import { openClickHouseStore } from '../../adapters/clickhouse/index.ts';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { systemClock } from '../clock.ts';
import { resolveEndpoints } from '../endpoints.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { PipelineMetrics } from '../metrics.ts';
import type { PipelineDefinition } from '../pipeline.ts';
import { MemoryStateBackend } from '../state/memory.ts';
import { pipelineTables, runClickHouseSink } from './clickhouse-sink.ts';
import { storedCounts } from './embedded-session.ts';
import { serveMetrics } from './metrics-server.ts';
import { type FollowedModelRollouts, followModelRollouts, type ModelRolloutsSource } from './model-rollouts.ts';
import { pipelineSchemaRepo } from './pipeline-schemas.ts';
import { followReferenceTables, type ReferenceTablesFollower } from './reference-tables.ts';
import { rideThrough } from './ride-through.ts';
import { RunStats, type RunStatsJson } from './run-stats.ts';

export interface SinkOptions {
  /** The ClickHouse server at CLICKHOUSE_URL, or an embedded engine in `dataDir`. */
  readonly target: { readonly server: true } | { readonly server: false; readonly dataDir: string };
  readonly groupId?: string;
  readonly maxBatch: number;
  /** 0: no /metrics endpoint. */
  readonly metricsPort: number;
  readonly stopWhenIdleMs?: number;
  readonly stopSignal: Promise<void>;
  readonly log: Logger;
  /**
   * Where the model rollouts come from (absent: the Kafka topic TOPICS.modelRollouts, as a worker): the reference data
   * follows the versions routed. `{ kind: 'none' }`: the pipeline defaults only.
   */
  readonly modelRollouts?: ModelRolloutsSource;
  /** The model store the routed versions' references are read from (absent: the repository's models/). */
  readonly modelsRoot?: string;
  /** How often to look for a routing change to land references for (default 1000 ms). */
  readonly referencesEveryMs?: number;
}

/** What a finished sink reports (`vigil sink --json`). */
export type SinkRunResult = {
  readonly pipeline: string;
  /** The final attempt's reads per table: an attempt that failed and restarted reports nothing (its rows are stored). */
  readonly read: Record<string, number>;
  readonly batches: number;
  /** Rows per table of this pipeline (from its definition), counted with FINAL. */
  readonly stored: Record<string, number>;
  readonly tables: number;
} & RunStatsJson;

/**
 * @example
 * const line = await runSink(definition, { target: { server: false, dataDir }, maxBatch: 20_000, metricsPort: 0,
 *   stopSignal, log });
 */
export async function runSink(definition: PipelineDefinition, options: SinkOptions): Promise<SinkRunResult> {
  const { log } = options;
  const endpoints = resolveEndpoints();
  const store = options.target.server
    ? openClickHouseStore({ mode: 'server', url: endpoints.clickhouseUrl })
    : openClickHouseStore({ mode: 'embedded', path: options.target.dataDir });
  const metrics = new PipelineMetrics();
  const server = options.metricsPort > 0 ? await serveMetrics(metrics, options.metricsPort) : null;
  let rollouts: FollowedModelRollouts | null = null;
  let stopReferences: () => Promise<void> = async () => undefined;
  try {
    await store.migrate();
    const state = new MemoryStateBackend({ clock: systemClock });
    rollouts = await followModelRollouts(options.modelRollouts ?? { kind: 'kafka', brokers: endpoints.kafkaBrokers }, {
      log,
      metrics: metrics.registry,
    });
    const references = followReferenceTables(
      definition,
      {
        pipeline: definition.name,
        clock: systemClock,
        state,
        log,
        models: new OnnxModelStore(options.modelsRoot ? { root: options.modelsRoot } : {}),
        ...(rollouts.rollouts ? { rollouts: rollouts.rollouts } : {}),
      },
      store,
    );
    await references.land();
    stopReferences = landReferencesOnRoutingChange(references, options.referencesEveryMs ?? 1000, log);
    const stats = new RunStats();
    const registry = createSchemaRegistry(endpoints.schemaRegistryUrl);
    const repo = pipelineSchemaRepo(definition);
    let stopRequested = false;
    void options.stopSignal.then(() => {
      stopRequested = true;
    });
    // Kafka, the registry or ClickHouse gone: back off and restart from the committed offsets (ride-through.ts).
    const runs = await rideThrough(
      (onCommitted) =>
        runClickHouseSink({
          stats,
          definition,
          store,
          registry,
          repo,
          brokers: endpoints.kafkaBrokers,
          groupId: options.groupId ?? `vigil-sink-${definition.name}`,
          metrics,
          log,
          stopSignal: options.stopSignal,
          maxBatch: options.maxBatch,
          onCommitted,
          ...(options.stopWhenIdleMs !== undefined ? { stopWhenIdleMs: options.stopWhenIdleMs } : {}),
        }),
      {
        what: 'clickhouse sink',
        log,
        metrics,
        uses: ['kafka', 'schema_registry', 'clickhouse'],
        stopRequested: () => stopRequested,
      },
    );
    const summary = runs[0] ?? { records: {}, batches: 0 };
    const tables = pipelineTables(definition);
    return {
      pipeline: definition.name,
      read: summary.records,
      batches: summary.batches,
      stored: await storedCounts(store, tables),
      tables: tables.length,
      ...stats.json(),
    };
  } finally {
    await stopReferences();
    await rollouts?.close(); // its follower would keep the process alive
    server?.close();
    await store.close();
  }
}

/**
 * Every `everyMs`, lands the references again when the routing revision changed: one check at a time, a failure
 * (ClickHouse away) logged and retried at the next tick. Returns the stop, which waits for a landing under way.
 */
function landReferencesOnRoutingChange(
  references: ReferenceTablesFollower,
  everyMs: number,
  log: Logger,
): () => Promise<void> {
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (running) return;
    running = references
      .landIfRoutingChanged()
      .then((rows) => {
        if (rows !== null) log.info({ rows }, 'reference data landed again after a routing change');
      })
      .catch((error: unknown) => log.warn({ error: describeError(error) }, 'cannot land reference data yet'))
      .finally(() => {
        running = null;
      });
  }, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
