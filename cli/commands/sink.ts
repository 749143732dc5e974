/**
 * `vigil sink <pipeline>`: the distributed ClickHouse sink. Reads the pipeline's topics (its sources into the raw
 * plane, its record and side outputs, dead letters, duplicates: all from the definition, runtime/runners/
 * clickhouse-sink.ts `sinkRoutes`) with read_committed and lands each in its table, effectively once.
 *
 *   vigil sink pipelines/vitals.ts                      embedded ClickHouse (chdb) in --data-dir: one sink process
 *   vigil sink pipelines/vitals.ts --server             the ClickHouse server at CLICKHOUSE_URL (production)
 *
 * Like `vigil run`, it follows the model registry (the Kafka topic; `--control-dir DIR` the file log
 * DIR/model-rollouts.jsonl; `--no-model-registry` none) so the reference data of a version routed while it runs (a
 * canary's drift reference bins) is landed too (`--models-root` where the routed versions are stored).
 *
 * This command parses flags; runtime/runners/sink.ts composes and runs the sink (and rides through outages).
 */
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { VigilError } from '../../runtime/errors.ts';
import { createLogger } from '../../runtime/log.ts';
import { loadPipeline } from '../../runtime/runners/load.ts';
import { MODEL_ROLLOUTS_FILE, type ModelRolloutsSource } from '../../runtime/runners/model-rollouts.ts';
import { runSink } from '../../runtime/runners/sink.ts';
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
    .option(
      '--control-dir <dir>',
      `follow the model rollouts of the file log <dir>/${MODEL_ROLLOUTS_FILE} (vigil models --control-dir) instead of ` +
        'the Kafka topic: the reference data of every routed version is landed',
    )
    .option('--no-model-registry', 'follow no model registry: land the pipeline default versions’ reference data only')
    .option(
      '--models-root <dir>',
      'the model store routed versions are read from: <dir>/<name>/<version>/ (default: models/)',
    )
    .option('--json', 'print one final JSON line with what the sink read and what the tables hold')
    .action(async (file: string, flags) => {
      if (flags.controlDir && flags.modelRegistry === false)
        throw new VigilError(
          'CONFIG_INVALID',
          '--control-dir names a model registry; --no-model-registry follows none',
        );
      const modelRollouts: ModelRolloutsSource | undefined = flags.controlDir
        ? { kind: 'file', controlDir: resolve(flags.controlDir) }
        : flags.modelRegistry === false
          ? { kind: 'none' }
          : undefined; // the Kafka topic
      const definition = await loadPipeline(file);
      const line = await runSink(definition, {
        target: flags.server ? { server: true } : { server: false, dataDir: resolve(flags.dataDir) },
        maxBatch: flags.batchSize,
        metricsPort: flags.metricsPort,
        stopSignal: stopSignal(),
        log: createLogger(`vigil-sink-${definition.name}`),
        ...(modelRollouts ? { modelRollouts } : {}),
        ...(flags.modelsRoot ? { modelsRoot: resolve(flags.modelsRoot) } : {}),
        ...(flags.group ? { groupId: flags.group } : {}),
        ...(flags.stopWhenIdle ? { stopWhenIdleMs: flags.stopWhenIdle } : {}),
      });
      if (flags.json) process.stdout.write(`${JSON.stringify(line)}\n`);
      else process.stderr.write(`sink stopped: ${JSON.stringify(line)}\n`);
    });
}
