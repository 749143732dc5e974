/**
 * One embedded run as `vigil run --embedded` and `vigil demo` start it: the input (the fleet simulator, or an NDJSON /
 * Avro container file) for a pipeline that reads telemetry envelopes, a fresh or kept embedded ClickHouse, the model
 * rollouts when the run follows a registry (./model-rollouts.ts), the session (./embedded-session.ts), then the caller's
 * report while the store is still open. The CLI parses flags and prints.
 */
import { resolve } from 'node:path';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import type { SimulateOptions, TruthSummary } from '../../simulator/simulate.ts';
import { systemClock } from '../clock.ts';
import { VigilError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { EmittedBatch } from '../outputs.ts';
import type { PipelineDefinition } from '../pipeline.ts';
import { chainedSource, TopicTap } from './embedded-chain.ts';
import { type EmbeddedSessionResult, runEmbeddedSession, withEmbeddedStore } from './embedded-session.ts';
import { fileSource, type SourceInput, simulatorSource } from './embedded-sources.ts';
import {
  type GatewayRunOptions,
  type GatewayRunReport,
  gatewaySource,
  landGatewayRejections,
} from './gateway-source.ts';
import { followModelRollouts, type ModelRolloutsSource } from './model-rollouts.ts';

/**
 * Records per partition micro-batch of an embedded run unless told otherwise. Each batch lands as one insert per table,
 * and chdb's cost per row falls by half from 2,000-row to 10,000-row inserts (a part written and merged per insert:
 * bench/README.md, issue 14), so the embedded default is larger than a distributed worker's per-partition share.
 */
export const DEFAULT_EMBEDDED_BATCH_SIZE = 10_000;

export interface EmbeddedRunOptions {
  /** An NDJSON or Avro container file of envelopes; absent: the fleet simulator. */
  readonly input?: string;
  readonly dataDir: string;
  readonly append: boolean;
  readonly batchSize: number;
  readonly simulation: SimulateOptions;
  /**
   * Send the simulated fleet through an in-process gateway over mTLS (./gateway-source.ts) instead of straight onto
   * the source: what `npm start` does; its rejection records land in `gateway_rejections` in the same store. Ignored
   * with `input`.
   */
  readonly gateway?: Omit<GatewayRunOptions, 'simulation' | 'batchSize'>;
  readonly log: Logger;
  /**
   * Pipelines chained after this one (./embedded-chain.ts): each reads the topics this run wrote that it has as
   * sources, plus its own extra records (`more`), in the same store, once this run has finished.
   */
  readonly downstream?: readonly EmbeddedLink[];
  /**
   * Where the model rollouts come from (./model-rollouts.ts): read to their end before the first batch and followed
   * during the run, for this run and its downstream ones. Absent: no registry, every model runs its pipeline default.
   */
  readonly modelRollouts?: ModelRolloutsSource;
  /** The model store's folder (`<root>/<name>/<version>/`, where `vigil models add` copies); default: models/. */
  readonly modelsRoot?: string;
}

/** A pipeline run on what the main run emitted to its source topics. */
export interface EmbeddedLink {
  readonly definition: PipelineDefinition;
  /** Records of its sources beside the chained ones (e.g. a scripted scenario), after them. */
  readonly more?: () => Iterable<SourceInput>;
}

/** A chained run's outcome: its definition, its session, and how many values it read from each tapped topic. */
export interface EmbeddedLinkReport {
  readonly definition: PipelineDefinition;
  readonly result: EmbeddedSessionResult;
  readonly chained: Record<string, number>;
}

export interface EmbeddedRunReport {
  readonly result: EmbeddedSessionResult;
  readonly store: ClickHouseStore;
  /** The simulator's ground truth (null for a file input). */
  readonly truth: TruthSummary | null;
  /** What went through the gateway, when the run went through one. */
  readonly gateway: GatewayRunReport | null;
  /** The chained runs (`downstream`), in order. */
  readonly downstream: readonly EmbeddedLinkReport[];
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
  if (definition.sources.some((s) => s.schema !== 'envelope')) {
    // The simulator and the file readers make telemetry envelopes, fed to the first source (a pipeline that also
    // reads the alarm lane gets everything on raw); other inputs come through `framedSource`.
    throw new VigilError(
      'CONFIG_INVALID',
      `${definition.name} reads ${definition.sources.map((s) => `${s.topic} (${s.schema})`).join(', ')}: ` +
        '`vigil run --embedded` feeds envelopes only (the simulator, --input); run it distributed, chained after a ' +
        'pipeline that writes its topics (`downstream`, runtime/runners/embedded-chain.ts: `vigil demo` does so), or ' +
        'embedded from code with runtime/runners/embedded-sources.ts framedSource',
    );
  }
  let truth: TruthSummary | null = null;
  let gateway: GatewayRunReport | null = null;
  const source = options.input
    ? fileSource(resolve(options.input), { batchSize: options.batchSize })
    : options.gateway
      ? gatewaySource(
          definition,
          { ...options.gateway, simulation: options.simulation, batchSize: options.batchSize },
          (report) => {
            gateway = report;
          },
        )
      : simulatorSource({
          simulation: options.simulation,
          batchSize: options.batchSize,
          clock: systemClock,
          onTruth: (t) => {
            truth = t;
          },
        });
  const links = (options.downstream ?? []).map((link) => ({
    link,
    tap: TopicTap.between(definition, link.definition),
  }));
  const observe =
    links.length > 0
      ? (batch: EmittedBatch) => {
          for (const { tap } of links) tap.observe(batch);
        }
      : undefined;
  const followed = await followModelRollouts(options.modelRollouts ?? { kind: 'none' }, { log: options.log });
  const extras = {
    ...(followed.rollouts ? { rollouts: followed.rollouts } : {}),
    ...(options.modelsRoot ? { modelsRoot: options.modelsRoot } : {}),
  };
  try {
    await withEmbeddedStore({ dataDir: options.dataDir, append: options.append, log: options.log }, async (store) => {
      const result = await runEmbeddedSession(definition, source, store, options.log, {
        ...extras,
        ...(observe ? { onEmitted: observe } : {}),
      });
      const through = gateway as GatewayRunReport | null; // set by the source once the fleet is done
      if (through) await landGatewayRejections(store, through.rejections);
      const downstream: EmbeddedLinkReport[] = [];
      for (const { link, tap } of links) {
        const input = chainedSource(link.definition, [tap], {
          clock: systemClock,
          batchSize: options.batchSize,
          ...(link.more ? { more: link.more() } : {}),
        });
        const chained = await runEmbeddedSession(link.definition, input, store, options.log, extras);
        downstream.push({ definition: link.definition, result: chained, chained: tap.counts() });
      }
      await report({ result, store, truth, gateway, downstream });
    });
  } finally {
    await followed.close();
  }
}
