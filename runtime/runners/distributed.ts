/**
 * Wires a distributed worker: Kafka (node-rdkafka consumer group + transactional producer), the schema registry,
 * Redis state and the ONNX model store, around the engine. Scale out by starting more workers with the same group id:
 * partitions (keyed by device) spread over them, and each device's records stay in order on one worker.
 *
 * Retriable failures (an aborted transaction, Kafka, Redis or the registry briefly unreachable) restart the worker's
 * Kafka clients in-process with backoff: it rejoins the group and re-reads from the committed offsets, which is always
 * safe. Non-retriable ones (a fenced producer, a broken configuration, a bug) stop the worker with a message.
 */

import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { ulid } from 'ulid';
import { createEnvelopeDecoder } from '../../adapters/avro/decoder.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { KafkaConsumerClient } from '../../adapters/kafka/consumer.ts';
import { TransactionalProducer } from '../../adapters/kafka/producer.ts';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { RedisStateBackend } from '../../adapters/redis/index.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import type { Envelope } from '../../schemas/types.ts';
import { systemClock } from '../clock.ts';
import { resolveEndpoints } from '../endpoints.ts';
import { type Accounting, Engine, emptyAccounting } from '../engine.ts';
import { describeError, isRetriable, VigilError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { PipelineMetrics } from '../metrics.ts';
import { STANDARD_OUTPUTS } from '../outputs.ts';
import type { PipelineDefinition } from '../pipeline.ts';
import { RegistryValueEncoder } from './encoder.ts';
import { instrumentModels } from './instrument.ts';
import { serveMetrics } from './metrics-server.ts';
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
}

/** A finished worker's accounting, plus its timing, CPU and latency figures (`vigil run --json`). */
export interface DistributedRunResult extends Accounting {
  readonly stats: RunStatsJson;
}

export async function runDistributedWorker(
  definition: PipelineDefinition<Envelope, unknown>,
  options: DistributedWorkerOptions,
): Promise<DistributedRunResult> {
  const endpoints = resolveEndpoints();
  const { log } = options;
  const metrics = new PipelineMetrics();
  const workerId = options.workerId ?? `${hostname()}-${process.pid}-${ulid().slice(-6)}`;
  const groupId = options.groupId ?? `vigil-${definition.name}`;

  const registry = createSchemaRegistry(endpoints.schemaRegistryUrl);
  const repo = loadSchemaRepo();
  const decoder = createEnvelopeDecoder(registry);
  const encoder = await RegistryValueEncoder.create(registry, repo, [
    ...definition.outputs.records.map((o) => o.schema),
    ...Object.values(definition.outputs.side).map((s) => s.schema),
    STANDARD_OUTPUTS.deadLetters.schema,
    STANDARD_OUTPUTS.duplicates.schema,
  ]);
  // State is scoped to the pipeline and its source topic: owner tokens are partition:offset positions in that topic.
  const state = new RedisStateBackend({
    url: endpoints.redisUrl,
    log,
    keyPrefix: `vigil:${definition.name}:${definition.source.topic}:`,
  });
  await state.open();
  const engine = new Engine(definition, metrics);
  await engine.open({
    pipeline: definition.name,
    clock: systemClock,
    state,
    log,
    models: instrumentModels(new OnnxModelStore(), metrics),
  });

  let server: Server | null = null;
  if ((options.metricsPort ?? 0) > 0) server = await serveMetrics(metrics, options.metricsPort as number);

  const total = emptyAccounting();
  const stats = new RunStats();
  let stopRequested = false;
  let current: Worker<Envelope, unknown> | null = null;
  void options.stopSignal?.then(() => {
    stopRequested = true;
    current?.stop();
  });

  try {
    for (let attempt = 0; !stopRequested; attempt++) {
      let worker: Worker<Envelope, unknown> | null = null;
      const consumer = new KafkaConsumerClient({
        brokers: endpoints.kafkaBrokers,
        groupId,
        clientId: `vigil-${definition.name}-${workerId}`,
        topics: [definition.source.topic],
        lingerMs: options.lingerMs ?? 100,
        onRevoke: () => worker?.onRevoke(),
      });
      const producer = new TransactionalProducer(endpoints.kafkaBrokers, `vigil-${definition.name}-${workerId}`);
      try {
        await producer.connect();
        await consumer.connect();
        worker = new Worker<Envelope, unknown>(
          { engine, consumer, producer, decoder, encoder, metrics, log, now: () => Date.now(), stats },
          {
            maxBatch: options.maxBatch ?? 12_000,
            ...(options.stopWhenIdleMs !== undefined ? { stopWhenIdleMs: options.stopWhenIdleMs } : {}),
            ...(options.stopAfter !== undefined ? { stopAfter: options.stopAfter - total.consumed } : {}),
          },
        );
        current = worker;
        if (stopRequested) worker.stop();
        log.info({ pipeline: definition.name, group: groupId, worker: workerId }, 'worker started');
        const done = await worker.run();
        addInto(total, done);
        break;
      } catch (error) {
        if (worker) addInto(total, worker.accounting);
        if (!isRetriable(error) || stopRequested) throw error;
        const backoff = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
        log.warn({ error: describeError(error), backoffMs: backoff }, 'worker restarting from committed offsets');
        await new Promise((r) => setTimeout(r, backoff));
      } finally {
        current = null;
        await consumer.disconnect().catch(() => undefined);
        await producer.disconnect().catch(() => undefined);
      }
    }
  } finally {
    await engine.close();
    await state.close();
    server?.close();
  }
  if (total.consumed !== total.emitted + total.deadLettered + total.duplicates) {
    throw new VigilError('INTERNAL', `accounting does not balance: ${JSON.stringify(total)}`);
  }
  return { ...total, stats: stats.json() };
}

function addInto(total: Accounting, add: Accounting): void {
  total.consumed += add.consumed;
  total.emitted += add.emitted;
  total.deadLettered += add.deadLettered;
  total.duplicates += add.duplicates;
}
