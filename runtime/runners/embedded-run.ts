/**
 * One embedded run as `vigil run --embedded` and `vigil demo` start it: the input (the fleet simulator, or an NDJSON /
 * Avro container file) for a pipeline that reads telemetry envelopes, a fresh or kept embedded ClickHouse, the session
 * (./embedded-session.ts), then the caller's report while the store is still open. The CLI parses flags and prints.
 */
import { resolve } from 'node:path';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import type { SimulateOptions, TruthSummary } from '../../simulator/simulate.ts';
import { systemClock } from '../clock.ts';
import { VigilError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { PipelineDefinition } from '../pipeline.ts';
import { type EmbeddedSessionResult, runEmbeddedSession, withEmbeddedStore } from './embedded-session.ts';
import { fileSource, simulatorSource } from './embedded-sources.ts';

export interface EmbeddedRunOptions {
  /** An NDJSON or Avro container file of envelopes; absent: the fleet simulator. */
  readonly input?: string;
  readonly dataDir: string;
  readonly append: boolean;
  readonly batchSize: number;
  readonly simulation: SimulateOptions;
  readonly log: Logger;
}

export interface EmbeddedRunReport {
  readonly result: EmbeddedSessionResult;
  readonly store: ClickHouseStore;
  /** The simulator's ground truth (null for a file input). */
  readonly truth: TruthSummary | null;
}

/**
 * @example
 * await runEmbeddedPipeline(definition, { dataDir, append: false, batchSize: 2000, simulation, log },
 *   async ({ result, store }) => console.log(result.accounting, store.location));
 */
export async function runEmbeddedPipeline(
  definition: PipelineDefinition,
  options: EmbeddedRunOptions,
  report: (run: EmbeddedRunReport) => Promise<void>,
): Promise<void> {
  const [only, ...more] = definition.sources;
  if (more.length > 0 || only?.schema !== 'envelope') {
    // The simulator and the file readers make telemetry envelopes; other inputs come through `framedSource`.
    throw new VigilError(
      'CONFIG_INVALID',
      `${definition.name} reads ${definition.sources.map((s) => `${s.topic} (${s.schema})`).join(', ')}: ` +
        '`vigil run --embedded` feeds envelopes only (the simulator, --input); run it distributed, or embedded from ' +
        'code with runtime/runners/embedded-sources.ts framedSource',
    );
  }
  let truth: TruthSummary | null = null;
  const source = options.input
    ? fileSource(resolve(options.input), { batchSize: options.batchSize })
    : simulatorSource({
        simulation: options.simulation,
        batchSize: options.batchSize,
        clock: systemClock,
        onTruth: (t) => {
          truth = t;
        },
      });
  await withEmbeddedStore({ dataDir: options.dataDir, append: options.append, log: options.log }, async (store) => {
    const result = await runEmbeddedSession(definition, source, store, options.log);
    await report({ result, store, truth });
  });
}
