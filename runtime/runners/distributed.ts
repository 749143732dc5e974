/**
 * Wires a distributed worker: Kafka (node-rdkafka consumer group + transactional producer), the schema registry,
 * keyed state with its changelog (runtime/state/changelog.ts), the ONNX model store and the model rollouts followed live
 * from the model-rollouts control log (./model-rollouts.ts), around the engine. Scale out by starting more workers with
 * the same group id:
 * partitions (keyed by device) spread over them, and each device's records stay in order on one worker.
 *
 * State: each input partition's keyed state is restored from the pipeline's changelog topic when the partition is
 * assigned, before its first record, and every change is written in the batch's transaction. The changelog topic is
 * created here when missing (compacted, co-partitioned with the source, retained for twice the longest state TTL).
 *
 * Retriable failures (an aborted transaction, Kafka or the registry briefly unreachable) restart the worker's
 * Kafka clients in-process with backoff: it rejoins the group and re-reads from the committed offsets, which is always
 * safe. Non-retriable ones (a fenced producer, a broken configuration, a bug) stop the worker with a message.
 */

import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { ulid } from 'ulid';
import { ensureOwnTopic, partitionCounts } from '../../adapters/kafka/admin.ts';
import { readChangelogPartition } from '../../adapters/kafka/changelog.ts';
import { KafkaConsumerClient } from '../../adapters/kafka/consumer.ts';
import { TransactionalProducer } from '../../adapters/kafka/producer.ts';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { systemClock } from '../clock.ts';
import { resolveEndpoints, stateChangelogTopic } from '../endpoints.ts';
import { type Accounting, addAccounting, balanced, Engine, emptyAccounting } from '../engine.ts';
import { VigilError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { PipelineMetrics } from '../metrics.ts';
import type { PipelineDefinition, SourceSpec } from '../pipeline.ts';
import { ChangelogStateBackend, type RestoreCounts } from '../state/changelog.ts';
import type { StateDescriptor } from '../state.ts';
import { RegistryValueEncoder } from './encoder.ts';
import { instrumentModels } from './instrument.ts';
import { PartitionReadiness, serveMetrics } from './metrics-server.ts';
import { followModelRollouts, type ModelRolloutsSource } from './model-rollouts.ts';
import { outputSchemas, pipelineSchemaRepo, sourceDecoders } from './pipeline-schemas.ts';
import { rideThrough } from './ride-through.ts';
import { RunStats, type RunStatsJson } from './run-stats.ts';
import { Worker } from './worker.ts';

export interface DistributedWorkerOptions {
  readonly groupId?: string;
  readonly workerId?: string;
  readonly maxBatch?: number;
  readonly lingerMs?: number;
  /** 0 disables the /metrics endpoint. */
  readonly metricsPort?: number;
  readonly stopWhenIdleMs?: number;
  readonly stopAfter?: number;
  readonly log: Logger;
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT): the worker commits its batch and leaves. */
  readonly stopSignal?: Promise<void>;
  /**
   * Where the model rollouts come from, applied live (./model-rollouts.ts). Default: the Kafka topic
   * TOPICS.modelRollouts; `{ kind: 'none' }` runs every model's pipeline default version as live.
   */
  readonly modelRollouts?: ModelRolloutsSource;
  /** The model store's folder (`<root>/<name>/<version>/`); default: the repository's models/. */
  readonly modelsRoot?: string;
}

/** A finished worker's accounting, plus its timing, CPU and latency figures (`vigil run --json`). */
export interface DistributedRunResult extends Accounting {
  readonly stats: RunStatsJson;
}

export async function runDistributedWorker<I>(
  definition: PipelineDefinition<I, unknown>,
  options: DistributedWorkerOptions,
): Promise<DistributedRunResult> {
  const endpoints = resolveEndpoints();
  const { log } = options;
  const metrics = new PipelineMetrics();
  const workerId = options.workerId ?? `${hostname()}-${process.pid}-${ulid().slice(-6)}`;
  const groupId = options.groupId ?? `vigil-${definition.name}`;

  const registry = createSchemaRegistry(endpoints.schemaRegistryUrl);
  const repo = pipelineSchemaRepo(definition);
  // Each source topic's records are decoded as that source's schema.
  const decoders = sourceDecoders(definition, registry, repo);
  const encoder = await RegistryValueEncoder.create(registry, repo, outputSchemas(definition));
  // State is scoped to the consumer group (its changelog topic) and kept per input partition NUMBER: with several
  // sources, partition p of each (co-partitioned, range-assigned to one worker) shares partition p's state.
  const states = definition.operators.flatMap((o) => o.states ?? []);
  const state = new ChangelogStateBackend({ clock: systemClock, states });
  const changelogTopic = states.length > 0 ? stateChangelogTopic(groupId) : null;
  let changelogReady = changelogTopic === null;
  // Read to the end before the first batch (a rollback must not be missed), then followed for as long as we run.
  const rollouts = await followModelRollouts(
    options.modelRollouts ?? { kind: 'kafka', brokers: endpoints.kafkaBrokers },
    { log, metrics: metrics.registry },
  );
  const engine = new Engine(definition, metrics);
  try {
    await state.open();
    await engine.open({
      pipeline: definition.name,
      clock: systemClock,
      state,
      log,
      models: instrumentModels(new OnnxModelStore(options.modelsRoot ? { root: options.modelsRoot } : {}), metrics),
      ...(rollouts.rollouts ? { rollouts: rollouts.rollouts } : {}),
    });
  } catch (error) {
    await rollouts.close(); // its follower would keep the process alive
    throw error;
  }

  // /readyz: 503 until the state of every assigned partition is restored (a rolling update waits for it).
  const readiness = new PartitionReadiness();
  let server: Server | null = null;
  if ((options.metricsPort ?? 0) > 0)
    server = await serveMetrics(metrics, options.metricsPort as number, undefined, readiness);

  const total = emptyAccounting();
  const stats = new RunStats();
  let stopRequested = false;
  let current: Worker<I, unknown> | null = null;
  void options.stopSignal?.then(() => {
    stopRequested = true;
    current?.stop();
  });

  // Each (re)start of the Kafka clients is a generation. Hooks of an older generation's consumer (a restore still
  // running when its attempt failed, a late revocation) must not touch the state a newer generation works on.
  let generation = 0;
  const attempt = async (progressed: () => void): Promise<void> => {
    const mine = ++generation;
    const live = () => mine === generation;
    let worker: Worker<I, unknown> | null = null;
    // A (re)start reads from committed offsets: no working state may survive from before it.
    state.dropAll();
    readiness.reset();
    const consumer: KafkaConsumerClient = new KafkaConsumerClient({
      brokers: endpoints.kafkaBrokers,
      groupId,
      clientId: `vigil-${definition.name}-${workerId}`,
      topics: definition.sources.map((s) => s.topic),
      lingerMs: options.lingerMs ?? 100,
      onAssign: async (partitions) => {
        if (!live()) return;
        readiness.restoring();
        if (changelogTopic === null) {
          readiness.restored();
          return;
        }
        // Stable committed offsets: the partitions' previous owners have committed or aborted, so their changelog
        // partitions hold exactly the state their committed outputs imply.
        await consumer.committed(partitions, 120_000);
        // Co-partitioned sources: partition p of every source topic comes together and shares one state partition.
        for (const partition of new Set(partitions.map((p) => p.partition))) {
          if (!live()) return;
          state.drop(partition);
          const counts: RestoreCounts = { applied: 0, skipped: 0 };
          const report = await readChangelogPartition(
            { brokers: endpoints.kafkaBrokers, topic: changelogTopic, partition },
            (key, value) => {
              if (live()) state.restore(partition, key, value, counts);
            },
          );
          if (!live()) return;
          metrics.stateRestoreSeconds.observe({ pipeline: definition.name }, report.ms / 1000);
          metrics.stateRestoredRecords.inc({ pipeline: definition.name }, report.records);
          log.info(
            { partition, records: report.records, applied: counts.applied, skipped: counts.skipped, ms: report.ms },
            'partition state restored from changelog',
          );
        }
        if (live()) readiness.restored();
      },
      onRevoke: async (partitions) => {
        await worker?.onRevoke();
        if (!live()) return;
        for (const partition of new Set(partitions.map((p) => p.partition))) state.drop(partition);
      },
    });
    const producer = new TransactionalProducer(endpoints.kafkaBrokers, `vigil-${definition.name}-${workerId}`);
    try {
      if (!changelogReady && changelogTopic !== null) {
        await ensureChangelogTopic(endpoints.kafkaBrokers, definition.sources, changelogTopic, states);
        changelogReady = true;
      }
      await producer.connect();
      await consumer.connect();
      worker = new Worker<I, unknown>(
        {
          engine,
          consumer,
          producer,
          decoders,
          encoder,
          metrics,
          log,
          now: () => Date.now(),
          stats,
          onCommitted: () => {
            progressed();
            // Evictions weaken duplicate protection: on-call sees them (a partition's count leaves with it).
            for (const [name, { evictions }] of state.stats()) metrics.stateEvictions.set({ state: name }, evictions);
          },
          ...(changelogTopic !== null
            ? { changelog: { topic: changelogTopic, takeChanges: () => state.takeChanges() } }
            : {}),
        },
        {
          maxBatch: options.maxBatch ?? 12_000,
          ...(options.stopWhenIdleMs !== undefined ? { stopWhenIdleMs: options.stopWhenIdleMs } : {}),
          ...(options.stopAfter !== undefined ? { stopAfter: options.stopAfter - total.consumed } : {}),
        },
      );
      current = worker;
      if (stopRequested) worker.stop();
      log.info({ pipeline: definition.name, group: groupId, worker: workerId }, 'worker started');
      await worker.run();
    } finally {
      // What this attempt committed counts, whether it ended cleanly or not.
      if (worker) addAccounting(total, worker.accounting);
      current = null;
      await consumer.disconnect().catch(() => undefined);
      await producer.disconnect().catch(() => undefined);
    }
  };

  try {
    // Kafka or the registry gone, or a transaction aborted: back off and restart the clients from the committed
    // offsets, saying so on /metrics and in a log line (ride-through.ts).
    await rideThrough(attempt, {
      what: 'worker',
      log,
      metrics,
      uses: ['kafka', 'schema_registry'],
      stopRequested: () => stopRequested,
    });
  } finally {
    await engine.close();
    await state.close();
    await rollouts.close();
    server?.close();
  }
  if (!balanced(total)) {
    throw new VigilError('INTERNAL', `accounting does not balance: ${JSON.stringify(total)}`);
  }
  return { ...total, stats: stats.json() };
}

const DAY_MS = 86_400_000;

/**
 * Creates the pipeline's changelog when missing: as many partitions as the source (partition p's state is logged to
 * partition p), compacted (the latest change per key) and deleted past twice the longest state TTL (expired entries
 * are skipped at restore anyway). Several sources must be co-partitioned (runtime/pipeline.ts): a different partition
 * count on any source is refused before the first record.
 */
async function ensureChangelogTopic(
  brokers: string,
  sources: readonly SourceSpec<unknown>[],
  topic: string,
  states: readonly StateDescriptor[],
): Promise<void> {
  const known = await partitionCounts(
    brokers,
    sources.map((s) => s.topic),
  );
  const counts = sources.map((s) => ({ topic: s.topic, n: known.get(s.topic) ?? 0 }));
  for (const c of counts) {
    if (c.n === 0) throw new VigilError('KAFKA_UNAVAILABLE', `source topic ${c.topic} does not exist (yet)`);
  }
  const sourceTopic = (counts[0] as { topic: string }).topic;
  const sourcePartitions = (counts[0] as { n: number }).n;
  const odd = counts.find((c) => c.n !== sourcePartitions);
  if (odd) {
    throw new VigilError(
      'CONFIG_INVALID',
      `source topics ${sourceTopic} (${sourcePartitions} partitions) and ${odd.topic} (${odd.n}) are not ` +
        'co-partitioned: a pipeline with keyed state needs the same partition count (and key) on every source',
    );
  }
  const longestTtl = Math.max(...states.map((s) => s.ttlMs));
  const partitions = await ensureOwnTopic(brokers, {
    name: topic,
    partitions: sourcePartitions,
    config: {
      'cleanup.policy': 'compact,delete',
      'retention.ms': String(2 * longestTtl),
      'min.compaction.lag.ms': '0',
      'segment.ms': String(Math.min(DAY_MS, longestTtl)),
    },
  });
  if (partitions !== sourcePartitions) {
    throw new VigilError(
      'CONFIG_INVALID',
      `state changelog ${topic} has ${partitions} partitions, its source ${sourceTopic} has ${sourcePartitions}: ` +
        'they must match (partition p of the source logs its state to partition p); recreate the changelog',
    );
  }
}
