/**
 * `vigil run <pipeline>`: runs a pipeline definition.
 *
 *   vigil run pipelines/vitals.ts --embedded [--input FILE] [--json]   in-process, no services
 *   vigil run pipelines/vitals.ts [--group ID] [--metrics-port N]      a distributed worker on the real stack
 *
 * Model rollouts (issue 12) are applied live from the model registry's control log: a distributed worker follows the
 * Kafka topic TOPICS.modelRollouts (`--no-model-registry`: every model runs its pipeline default version as live);
 * `--control-dir DIR` follows the file log DIR/model-rollouts.jsonl instead (either mode; an embedded run follows no
 * registry without it). runtime/runners/model-rollouts.ts.
 *
 * `--accept-ungated` (either mode) turns off the pipeline's gateway-provenance check for the run (a replay of
 * pre-gateway data, the simulator straight to Kafka): one warning at start, `"ungated":true` in the JSON line.
 *
 * Embedded without --input runs the fleet simulator. `--json` prints one final line:
 * {"consumed","emitted","dead_lettered","duplicates","dlq":{"<reason>":n},"stored":{"<table>":n},...}.
 * A distributed worker's line adds what the benchmarks read (runtime/runners/run-stats.ts): `cpu_user_us`,
 * `cpu_system_us` (from the first consumed record to the last commit), `peak_rss_mb`, `first_consumed_at`,
 * `first_commit_at`, `last_commit_at` (epoch ms) and `end_to_end_ms` {count, p50, p99, max}: producer timestamp to
 * transaction commit, per record.
 *
 * This command parses flags and calls a runner: runtime/runners/embedded-run.ts or distributed.ts.
 */
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_EMBEDDED_DIR } from '../../adapters/clickhouse/index.ts';
import { VigilError } from '../../runtime/errors.ts';
import { createLogger } from '../../runtime/log.ts';
import type { PipelineDefinition } from '../../runtime/pipeline.ts';
import { runDistributedWorker } from '../../runtime/runners/distributed.ts';
import {
  DEFAULT_EMBEDDED_BATCH_SIZE,
  type EmbeddedLink,
  runEmbeddedPipeline,
} from '../../runtime/runners/embedded-run.ts';
import { loadPipeline } from '../../runtime/runners/load.ts';
import { MODEL_ROLLOUTS_FILE, type ModelRolloutsSource } from '../../runtime/runners/model-rollouts.ts';
import { acceptUngated } from '../../runtime/runners/ungated.ts';
import {
  type LinkSummary,
  linksJson,
  printEmbeddedSummary,
  runJson,
  type ScenarioTruth,
  stopSignal,
  summariseLink,
} from '../summary.ts';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

export interface SimulationFlags {
  devices: number;
  events: number;
  seed: string;
  biasedFirmware?: string;
  bias: boolean;
}

/** Flags shared by `run --embedded` (without --input) and `demo`. */
export function addSimulationOptions(command: Command, defaults: { events: number }): Command {
  return command
    .addOption(new Option('--devices <n>', 'simulated devices').argParser(positiveInt).default(1000))
    .addOption(
      new Option('--events <n>', 'simulated records (faults included)').argParser(positiveInt).default(defaults.events),
    )
    .option('--seed <seed>', 'simulation seed (same seed, same records)', '1')
    .option('--biased-firmware <version>', 'firmware whose SpO2 sensor reads low (default: the simulator’s)')
    .option('--no-bias', 'simulate no biased firmware (an unbiased run: no drift expected)');
}

export function simulationOf(flags: SimulationFlags) {
  return {
    devices: flags.devices,
    events: flags.events,
    seed: /^\d+$/.test(flags.seed) ? Number(flags.seed) : flags.seed,
    ...(flags.bias ? (flags.biasedFirmware ? { biasedFirmware: flags.biasedFirmware } : {}) : { biasedFirmware: null }),
  };
}

/** `vigil run --embedded` and `vigil demo`: runs the pipeline (runtime/runners/embedded-run.ts) and prints its summary. */
export async function embeddedRun(
  definition: PipelineDefinition,
  options: {
    input?: string;
    dataDir: string;
    append: boolean;
    batchSize: number;
    json: boolean;
    simulation: SimulationFlags;
    /** The run accepts records that did not come through a gateway (`--accept-ungated`): said in its JSON line. */
    ungated?: boolean;
    /** Pipelines chained on what this one writes (`npm start`: the alerts pipeline), each with its scenario's truth. */
    downstream?: readonly (EmbeddedLink & { readonly scenario?: ScenarioTruth })[];
    /** Where the model rollouts come from (absent: no registry, every model runs its pipeline default). */
    modelRollouts?: ModelRolloutsSource;
    /** The model store's folder (absent: the repository's models/). */
    modelsRoot?: string;
  },
): Promise<void> {
  const log = createLogger(`vigil-${definition.name}`);
  await runEmbeddedPipeline(
    definition,
    {
      ...(options.input ? { input: options.input } : {}),
      dataDir: options.dataDir,
      append: options.append,
      batchSize: options.batchSize,
      simulation: simulationOf(options.simulation),
      log,
      ...(options.downstream ? { downstream: options.downstream } : {}),
      ...(options.modelRollouts ? { modelRollouts: options.modelRollouts } : {}),
      ...(options.modelsRoot ? { modelsRoot: options.modelsRoot } : {}),
    },
    async ({ result, store, truth, downstream }) => {
      const links: LinkSummary[] = [];
      for (const [i, report] of downstream.entries()) {
        links.push(await summariseLink(report, store, options.downstream?.[i]?.scenario ?? null));
      }
      if (options.json) {
        const line = {
          ...linksJson(runJson(definition, result, store.location), links),
          ...(options.ungated ? { ungated: true } : {}),
        };
        process.stdout.write(`${JSON.stringify(line)}\n`);
      } else await printEmbeddedSummary({ definition, result, store, truth, input: options.input ?? null, links });
    },
  );
}

export function registerRun(program: Command): void {
  const command = program
    .command('run')
    .description('Run a pipeline: embedded (in-process, no services) or as a distributed worker on the real stack')
    .argument('<pipeline>', 'pipeline definition file, e.g. pipelines/vitals.ts')
    .option('--embedded', 'run in-process: memory state, embedded ClickHouse, no Kafka or registry')
    .option('--input <file>', 'embedded: read envelopes from an NDJSON or Avro container file instead of the simulator')
    .option('--json', 'print one final JSON line with the run’s accounting and what it stored')
    .option(
      '--accept-ungated',
      'accept records that did not come through a gateway (a replay of pre-gateway data, the simulator straight to ' +
        'Kafka, drills, benchmarks): turns off the pipeline’s gateway-provenance check for this run, with a warning',
    )
    .option(
      '--control-dir <dir>',
      `apply the model rollouts of the file log <dir>/${MODEL_ROLLOUTS_FILE} (vigil models --control-dir) instead of ` +
        'the Kafka topic; embedded runs follow no registry without it',
    )
    .option(
      '--no-model-registry',
      'distributed: follow no model registry: every model runs its pipeline default version as live',
    )
    .option(
      '--models-root <dir>',
      'the model store: <dir>/<name>/<version>/ (vigil models add --models-root copies there; default: models/)',
    )
    .option('--data-dir <dir>', 'embedded: ClickHouse data directory', DEFAULT_EMBEDDED_DIR)
    .option('--append', 'embedded: keep what the data directory holds instead of starting empty')
    .addOption(
      new Option(
        '--batch-size <n>',
        `records per micro-batch: embedded, per partition (default ${DEFAULT_EMBEDDED_BATCH_SIZE}); distributed, per poll, shared by the assigned partitions (default 12000)`,
      ).argParser(positiveInt),
    )
    .option('--group <id>', 'distributed: consumer group id (default vigil-<pipeline>)')
    .option('--worker-id <id>', 'distributed: stable worker identity (names the transactional producer)')
    .addOption(
      new Option('--linger-ms <ms>', 'distributed: longest wait to fill a micro-batch')
        .argParser(nonNegativeInt)
        .default(100),
    )
    .addOption(
      new Option('--metrics-port <port>', 'distributed: serve /metrics here (0: off)')
        .argParser(nonNegativeInt)
        .default(9464),
    )
    .addOption(
      new Option('--stop-when-idle <ms>', 'distributed: stop after the source is idle this long').argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option('--max-records <n>', 'distributed: stop after about this many records').argParser(positiveInt),
    );
  addSimulationOptions(command, { events: 100_000 });
  command.action(async (file: string, flags) => {
    const loaded = await loadPipeline(file);
    const definition = flags.acceptUngated ? acceptUngated(loaded, createLogger(`vigil-${loaded.name}`)) : loaded;
    const ungated = Boolean(flags.acceptUngated);
    if (flags.controlDir && flags.modelRegistry === false)
      throw new VigilError('CONFIG_INVALID', '--control-dir names a model registry; --no-model-registry follows none');
    if (flags.embedded) {
      await embeddedRun(definition, {
        input: flags.input,
        dataDir: resolve(flags.dataDir),
        append: Boolean(flags.append),
        batchSize: flags.batchSize ?? DEFAULT_EMBEDDED_BATCH_SIZE,
        json: Boolean(flags.json),
        simulation: flags,
        ungated,
        ...(flags.controlDir ? { modelRollouts: { kind: 'file', controlDir: resolve(flags.controlDir) } } : {}),
        ...(flags.modelsRoot ? { modelsRoot: resolve(flags.modelsRoot) } : {}),
      });
      return;
    }
    if (flags.input)
      throw new VigilError('CONFIG_INVALID', '--input needs --embedded (a distributed worker reads Kafka)');
    const log = createLogger(`vigil-${definition.name}`);
    const modelRollouts: ModelRolloutsSource | undefined = flags.controlDir
      ? { kind: 'file', controlDir: resolve(flags.controlDir) }
      : flags.modelRegistry === false
        ? { kind: 'none' }
        : undefined; // the Kafka topic
    const accounting = await runDistributedWorker(definition, {
      log,
      ...(modelRollouts ? { modelRollouts } : {}),
      ...(flags.modelsRoot ? { modelsRoot: resolve(flags.modelsRoot) } : {}),
      maxBatch: flags.batchSize ?? 12_000,
      lingerMs: flags.lingerMs,
      metricsPort: flags.metricsPort,
      stopSignal: stopSignal(),
      ...(flags.group ? { groupId: flags.group } : {}),
      ...(flags.workerId ? { workerId: flags.workerId } : {}),
      ...(flags.stopWhenIdle ? { stopWhenIdleMs: flags.stopWhenIdle } : {}),
      ...(flags.maxRecords ? { stopAfter: flags.maxRecords } : {}),
    });
    if (flags.json)
      process.stdout.write(
        `${JSON.stringify({ pipeline: definition.name, mode: 'distributed', ...accountingJson(accounting), ...accounting.stats, ...(ungated ? { ungated: true } : {}) })}\n`,
      );
    else process.stderr.write(`worker stopped: ${JSON.stringify(accountingJson(accounting))}\n`);
  });
}

function accountingJson(a: { consumed: number; emitted: number; deadLettered: number; duplicates: number }) {
  return { consumed: a.consumed, emitted: a.emitted, dead_lettered: a.deadLettered, duplicates: a.duplicates };
}
