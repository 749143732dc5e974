/**
 * `vigil bench` (`npm run bench`): the benchmark suite of issue 4, on the local stack (`vigil stack up`).
 *
 *   vigil bench [--events N] [--rate R] [--latency-seconds S] [--long] [--json]   full chain vs ceiling vs naive
 *   vigil bench micro [--only NAME,...] [--json]                                   per-operator micro-benchmarks
 *
 * Results land in bench/results/ (latest.json, latest.md); see bench/README.md. Flags and JSON keys are a contract.
 * The harness is imported when the command runs, so other commands never load it (or kafkajs).
 */
import { type Command, Option } from 'commander';
import { DEFAULT_EMBEDDED_BATCH_SIZE } from '../../runtime/runners/embedded-run.ts';
import { nonNegativeInt, positiveInt } from './run.ts';

export const BENCH_DEFAULTS = {
  events: 200_000,
  rate: 20_000,
  latencySeconds: 10,
  naiveEvents: 3_000,
  batch: 2_000,
  embeddedBatch: DEFAULT_EMBEDDED_BATCH_SIZE,
  longEvents: 10_000_000,
} as const;

const log = (line: string) => process.stderr.write(`${line}\n`);

export function registerBench(program: Command): void {
  const bench = program
    .command('bench')
    .description('Benchmark the full chain against a transport ceiling and a naive peer (needs `vigil stack up`)')
    .addOption(
      new Option('--events <n>', 'envelopes pre-loaded and read by every run')
        .argParser(positiveInt)
        .default(BENCH_DEFAULTS.events),
    )
    .addOption(
      new Option('--rate <events/s>', 'paced producer rate of the latency runs (0: skip them)')
        .argParser(nonNegativeInt)
        .default(BENCH_DEFAULTS.rate),
    )
    .addOption(
      new Option('--latency-seconds <s>', 'length of each paced latency run')
        .argParser(positiveInt)
        .default(BENCH_DEFAULTS.latencySeconds),
    )
    .addOption(
      new Option('--naive-events <n>', 'records the naive peer is measured over (it is ~100x slower)')
        .argParser(positiveInt)
        .default(BENCH_DEFAULTS.naiveEvents),
    )
    .addOption(
      new Option('--batch-size <n>', 'records per raw-topic partition per poll, the same for every Kafka run')
        .argParser(positiveInt)
        .default(BENCH_DEFAULTS.batch),
    )
    .addOption(
      new Option('--embedded-batch-size <n>', 'records per partition micro-batch of the embedded runs (their default)')
        .argParser(positiveInt)
        .default(BENCH_DEFAULTS.embeddedBatch),
    )
    .option('--long', `also the embedded RSS run: ${BENCH_DEFAULTS.longEvents.toLocaleString('en')} events streamed`)
    .addOption(new Option('--long-events <n>', 'events of the --long run').argParser(positiveInt))
    .option('--json', 'print the results as one JSON line instead of the table')
    .option('--no-write', 'do not write bench/results/')
    .action(async (flags) => {
      const { runBench } = await import('../../bench/harness.ts');
      await runBench({
        events: flags.events,
        rate: flags.rate,
        latencySeconds: flags.latencySeconds,
        naiveEvents: flags.naiveEvents,
        batch: flags.batchSize,
        embeddedBatch: flags.embeddedBatchSize,
        longEvents: flags.long || flags.longEvents ? (flags.longEvents ?? BENCH_DEFAULTS.longEvents) : 0,
        json: Boolean(flags.json),
        write: flags.write !== false,
        log,
      });
    });

  bench
    .command('micro')
    .description(
      'Per-operator micro-benchmarks: decode, validate, dedupe-memory, dedupe-redis, redis-state, score, drift, ' +
        'outputs, clickhouse, clickhouse-parse, simulate',
    )
    .option('--only <names>', 'comma-separated subset')
    .option('--json', 'one JSON line per benchmark')
    .action(async (flags) => {
      const only = flags.only ? String(flags.only).split(',') : null;
      const { runMicro } = await import('../../bench/micro/index.ts');
      await runMicro({ only, json: Boolean(flags.json), log });
    });
}
