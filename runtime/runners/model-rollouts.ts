/**
 * The model rollouts a running pipeline applies live (issue 12): the registry folded from the model-rollouts control
 * log (`vigil.control.model-rollouts` on Kafka, or the file `<dir>/model-rollouts.jsonl` in the no-services mode),
 * followed for as long as the process runs, so `vigil models rollout|rollback|promote` reaches every worker within
 * about a second without a restart (Flink's broadcast state). The scoring operators read it through
 * `OperatorContext.rollouts` once per batch.
 *
 * Start-up waits until the log has been read to its end as it stood (`caughtUp`): a worker that has not read a
 * rollback must not score a batch by the version it withdrew. The wait is bounded: a log that does not catch up in
 * time stops the start with a message. A Kafka topic that does not exist is a deployment without the registry: the
 * worker starts on its pipeline's default versions, says so once, and keeps looking for the topic in the background.
 *
 * Metrics (no labels beyond the change kind, a fixed set; never a patient or device): `vigil_model_rollout_revision`
 * (changes applied so far: equal on every worker that is current), `vigil_model_rollout_changes_total{kind}` and
 * `vigil_model_rollout_invalid_records` (records skipped: malformed, or refused by the registry's rules).
 */
import { join } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { FileControlLog } from '../../adapters/file/control-log.ts';
import { KafkaControlLog } from '../../adapters/kafka/control-log.ts';
import { parseModelChange } from '../../governance/changes.ts';
import { type OpenModelDirectory, openModelDirectory } from '../../governance/directory.ts';
import { staticRollouts } from '../../governance/routing.ts';
import type { ModelChange, ModelChangeKind } from '../../governance/types.ts';
import type { ControlLog } from '../../identity/types.ts';
import { TOPICS } from '../endpoints.ts';
import { describeError, VigilError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ModelRollouts, RoutingTable } from '../models.ts';

/** The file log's name under a control directory (`vigil models --control-dir DIR`, `vigil run --control-dir DIR`). */
export const MODEL_ROLLOUTS_FILE = 'model-rollouts.jsonl';

/** Where a process reads the model rollouts from. */
export type ModelRolloutsSource =
  | {
      readonly kind: 'kafka';
      readonly brokers: string;
      readonly topic?: string;
      /** Gives up connecting or reading watermarks after this long (KafkaControlLog's default: 15 s). */
      readonly timeoutMs?: number;
    }
  | { readonly kind: 'file'; readonly controlDir: string }
  /** No registry: every scoring operator runs its pipeline's default versions as live. */
  | { readonly kind: 'none' };

export interface ModelRolloutsOptions {
  readonly log: Logger;
  /** Where `vigil_model_rollout_*` are registered (a worker's /metrics); absent: none. */
  readonly metrics?: Registry;
  /** Longest wait for the log to be read to its end before the first batch. Default 30 s. */
  readonly caughtUpWithinMs?: number;
  /** How often to look again for a Kafka topic that did not exist at start. Default 30 s. */
  readonly retryMissingMs?: number;
}

/** The rollouts a runner hands its operators, and the follower behind them. */
export interface FollowedModelRollouts {
  /** For `OperatorContext.rollouts`: undefined with no registry (the pipeline's defaults run as live). */
  readonly rollouts: ModelRollouts | undefined;
  /** The routing table in force now (revision 0 and no routes before any change). */
  table(): RoutingTable;
  /** Records of the log skipped because they were not valid changes, or broke the registry's rules. */
  invalidRecords(): number;
  /** Stops following and closes the log. */
  close(): Promise<void>;
}

const CHANGE_KINDS: readonly ModelChangeKind[] = ['added', 'approved', 'rollout', 'rollback', 'promoted'];

/** The control log for `source` (null for no registry). */
export function modelRolloutsLog(source: ModelRolloutsSource): ControlLog<ModelChange> | null {
  switch (source.kind) {
    case 'none':
      return null;
    case 'file':
      return new FileControlLog(join(source.controlDir, MODEL_ROLLOUTS_FILE), { parse: parseModelChange });
    case 'kafka':
      return new KafkaControlLog({
        brokers: source.brokers,
        topic: source.topic ?? TOPICS.modelRollouts,
        parse: parseModelChange,
        ...(source.timeoutMs !== undefined ? { timeoutMs: source.timeoutMs } : {}),
      });
  }
}

/**
 * Opens the model rollouts of `source`, waits until they are current (bounded), and keeps them current until closed.
 *
 * @example
 * const followed = await followModelRollouts({ kind: 'kafka', brokers }, { log, metrics: metrics.registry });
 * await engine.open({ ...context, rollouts: followed.rollouts });
 * // ... on shutdown:
 * await followed.close();
 */
export async function followModelRollouts(
  source: ModelRolloutsSource,
  options: ModelRolloutsOptions,
): Promise<FollowedModelRollouts> {
  const controlLog = modelRolloutsLog(source);
  if (controlLog === null) {
    options.log.info('no model registry: every model runs its pipeline default version as live');
    const none = staticRollouts();
    return { rollouts: undefined, table: () => none.current(), invalidRecords: () => 0, close: async () => undefined };
  }
  return followModelRolloutsLog(controlLog, options);
}

/**
 * Follows an open model-rollouts log (closed with the result): what `followModelRollouts` does once it has the log.
 *
 * @example
 * const followed = await followModelRolloutsLog(new FileControlLog(path, { parse: parseModelChange }), { log });
 */
export function followModelRolloutsLog(
  log: ControlLog<ModelChange>,
  options: ModelRolloutsOptions,
): Promise<FollowedModelRollouts> {
  return new FollowedLog(log, options).start();
}

/** One followed log: the directory once open, the pipeline defaults until then (only while the topic is missing). */
class FollowedLog implements FollowedModelRollouts {
  readonly #log: ControlLog<ModelChange>;
  readonly #options: ModelRolloutsOptions;
  readonly #defaults = staticRollouts();
  #directory: OpenModelDirectory | null = null;
  #retry: NodeJS.Timeout | null = null;
  #closed = false;
  #stopListening: () => void = () => undefined;
  #changes: Counter<'kind'> | null = null;

  readonly rollouts: ModelRollouts = { current: () => this.table() };

  constructor(log: ControlLog<ModelChange>, options: ModelRolloutsOptions) {
    this.#log = log;
    this.#options = options;
  }

  table(): RoutingTable {
    return (this.#directory?.rollouts ?? this.#defaults).current();
  }

  invalidRecords(): number {
    return this.#directory?.invalidRecords() ?? 0;
  }

  async start(): Promise<this> {
    this.#registerMetrics();
    try {
      const opened = await this.#tryOpen();
      if (!opened) {
        this.#options.log.warn(
          'the model-rollouts topic does not exist: every model runs its pipeline default version as live until it does',
        );
        this.#scheduleRetry();
        return this;
      }
      this.#directory = opened;
      await this.#awaitCaughtUp(opened);
      this.#adopt(opened);
      return this;
    } catch (error) {
      await this.close().catch(() => undefined);
      throw error;
    }
  }

  /** The directory, or null when the topic does not exist (any other failure is thrown). */
  async #tryOpen(): Promise<OpenModelDirectory | null> {
    try {
      return await openModelDirectory(this.#log);
    } catch (error) {
      // KafkaControlLog refuses a topic that does not exist with CONFIG_INVALID (the only CONFIG_INVALID it raises).
      if (error instanceof VigilError && error.code === 'CONFIG_INVALID') return null;
      throw error;
    }
  }

  async #awaitCaughtUp(directory: OpenModelDirectory): Promise<void> {
    const within = this.#options.caughtUpWithinMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), within);
    });
    try {
      if ((await Promise.race([directory.caughtUp.then(() => 'current' as const), late])) === 'late') {
        throw new VigilError(
          'KAFKA_UNAVAILABLE',
          `the model-rollouts log was not read to its end within ${within} ms: not scoring by a routing table that ` +
            'may miss a rollback',
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }

  #adopt(directory: OpenModelDirectory): void {
    this.#directory = directory;
    const registry = directory.registry;
    const table = registry.routingTable();
    this.#options.log.info(
      { revision: table.revision, models: registry.models().length, invalid: directory.invalidRecords() },
      'model rollouts current',
    );
    this.#stopListening = registry.onChange((change: ModelChange) => {
      this.#changes?.inc({ kind: change.kind });
      // Model names, versions and kinds only: an actor's reason may be free text.
      this.#options.log.info(
        { model: change.model, version: change.version, kind: change.kind, revision: registry.routingTable().revision },
        'model rollout change applied',
      );
    });
  }

  #scheduleRetry(): void {
    if (this.#closed) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      void this.#retryOpen();
    }, this.#options.retryMissingMs ?? 30_000);
    this.#retry.unref();
  }

  async #retryOpen(): Promise<void> {
    let opened: OpenModelDirectory | null = null;
    try {
      opened = await this.#tryOpen();
      if (opened === null) return this.#scheduleRetry();
      await opened.caughtUp;
      if (this.#closed) {
        await opened.close();
        return;
      }
      this.#adopt(opened);
    } catch (error) {
      // A follower that failed while catching up is closed: the next attempt opens its own.
      await opened?.close().catch(() => undefined);
      this.#options.log.warn({ error: describeError(error) }, 'cannot follow the model-rollouts log yet');
      this.#scheduleRetry();
    }
  }

  #registerMetrics(): void {
    const registry = this.#options.metrics;
    if (!registry) return;
    const followed = this;
    new Gauge({
      name: 'vigil_model_rollout_revision',
      help: 'Revision of the model routing table in force (changes applied from the model-rollouts log)',
      registers: [registry],
      collect() {
        this.set(followed.table().revision);
      },
    });
    new Gauge({
      name: 'vigil_model_rollout_invalid_records',
      help: 'Records of the model-rollouts log skipped: not valid changes, or refused by the registry rules',
      registers: [registry],
      collect() {
        this.set(followed.invalidRecords());
      },
    });
    this.#changes = new Counter({
      name: 'vigil_model_rollout_changes_total',
      help: 'Model registry changes applied from the model-rollouts log since start, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    });
    for (const kind of CHANGE_KINDS) this.#changes.inc({ kind }, 0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#stopListening();
    await this.#directory?.close();
    await this.#log.close();
  }
}
