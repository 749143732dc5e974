/**
 * `vigil sink <pipeline>`: the distributed ClickHouse sink. Reads the pipeline's topics (its sources into the raw
 * plane, its record and side outputs, dead letters, duplicates: all from the definition, runtime/runners/
 * clickhouse-sink.ts `sinkRoutes`) with read_committed and lands each in its table, effectively once.
 *
 *   vigil sink pipelines/vitals.ts                      embedded ClickHouse (chdb) in --data-dir: one sink process
 *   vigil sink pipelines/vitals.ts --server             the ClickHouse server at CLICKHOUSE_URL (production)
 *
 * Kafka, the schema registry or ClickHouse unreachable does not stop it: it backs off, says so (log line,
 * `vigil_dependency_retries_total`, `vigil_dependency_up`) and resumes from the committed offsets.
 */
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { openClickHouseStore } from '../../adapters/clickhouse/index.ts';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { createLogger } from '../../runtime/log.ts';
import { PipelineMetrics } from '../../runtime/metrics.ts';
import { pipelineTables, runClickHouseSink } from '../../runtime/runners/clickhouse-sink.ts';
import { storedCounts } from '../../runtime/runners/embedded-session.ts';
import { loadPipeline } from '../../runtime/runners/load.ts';
import { serveMetrics } from '../../runtime/runners/metrics-server.ts';
import { pipelineSchemaRepo } from '../../runtime/runners/pipeline-schemas.ts';
import { loadReferenceTables } from '../../runtime/runners/reference-tables.ts';
import { rideThrough } from '../../runtime/runners/ride-through.ts';
import { RunStats } from '../../runtime/runners/run-stats.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import { stopSignal } from '../summary.ts';
import { nonNegativeInt, positiveInt } from './run.ts';

export const DEFAULT_SINK_DIR = resolve('.vigil/distributed/clickhouse');

export function registerSink(program: Command): void {
  program
    .command('sink')
    .description('Land a pipeline’s topics in ClickHouse (the distributed mode’s sink)')
    .argument('<pipeline>', 'pipeline definition file, e.g. pipelines/vitals.ts')
    .option('--server', 'write to the ClickHouse server at CLICKHOUSE_URL instead of the embedded engine')
    .option('--data-dir <dir>', 'embedded ClickHouse data directory', DEFAULT_SINK_DIR)
    .option('--group <id>', 'consumer group id (default vigil-sink-<pipeline>)')
    .addOption(new Option('--stop-when-idle <ms>', 'stop after the topics are idle this long').argParser(positiveInt))
    .addOption(
      new Option('--batch-size <n>', 'most records per poll, all topics and partitions together')
        .argParser(positiveInt)
        .default(20_000),
    )
    .addOption(
      new Option('--metrics-port <port>', 'serve /metrics here (0: off)').argParser(nonNegativeInt).default(9465),
    )
    .option('--json', 'print one final JSON line with what the sink read and what the tables hold')
    .action(async (file: string, flags) => {
      const definition = await loadPipeline(file);
      const log = createLogger(`vigil-sink-${definition.name}`);
      const endpoints = resolveEndpoints();
      const store = flags.server
        ? openClickHouseStore({ mode: 'server', url: endpoints.clickhouseUrl })
        : openClickHouseStore({ mode: 'embedded', path: resolve(flags.dataDir) });
      const metrics = new PipelineMetrics();
      const server = flags.metricsPort > 0 ? await serveMetrics(metrics, flags.metricsPort) : null;
      try {
        await store.migrate();
        const state = new MemoryStateBackend({ clock: systemClock });
        await loadReferenceTables(
          definition,
          { pipeline: definition.name, clock: systemClock, state, log, models: new OnnxModelStore() },
          store,
        );
        const stats = new RunStats();
        const registry = createSchemaRegistry(endpoints.schemaRegistryUrl);
        const repo = pipelineSchemaRepo(definition);
        const stop = stopSignal();
        let stopRequested = false;
        void stop.then(() => {
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
              groupId: flags.group ?? `vigil-sink-${definition.name}`,
              metrics,
              log,
              stopSignal: stop,
              maxBatch: flags.batchSize,
              onCommitted,
              ...(flags.stopWhenIdle ? { stopWhenIdleMs: flags.stopWhenIdle } : {}),
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
        const stored = await storedCounts(store, tables);
        const line = {
          pipeline: definition.name,
          // The final attempt's reads: an attempt that failed and restarted reports nothing (its rows are in `stored`).
          read: summary.records,
          batches: summary.batches,
          stored,
          tables: tables.length,
          ...stats.json(),
        };
        if (flags.json) process.stdout.write(`${JSON.stringify(line)}\n`);
        else process.stderr.write(`sink stopped: ${JSON.stringify(line)}\n`);
      } finally {
        server?.close();
        await store.close();
      }
    });
}
