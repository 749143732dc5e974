/**
 * Riding through a dependency outage: a long-running process (the distributed worker, runners/distributed.ts; the
 * ClickHouse sink, runners/sink.ts) that meets Kafka, the schema registry, Redis or ClickHouse gone does not exit. It
 * says so (a warn line naming the dependency and the error code, `vigil_dependency_retries_total{dependency}` +1,
 * `vigil_dependency_up{dependency}` 0), backs off (0.5 s doubling to 30 s), restarts its clients from the committed
 * offsets — always safe: every runner is built to survive a `kill -9` at any point — and, at its first committed
 * batch after the failure, logs how long the recovery took and sets the gauge back to 1.
 *
 * Only transient failures are ridden through: a retriable VigilError, or a non-fatal error straight from librdkafka
 * (some client calls, like a synchronous offset commit, throw those unwrapped). A broken configuration, a fenced
 * producer or a bug still stops the process with its message.
 */
import { isRetriable, VigilError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { PipelineMetrics } from '../metrics.ts';

/** The fixed label set of `vigil_dependency_*`. */
export const DEPENDENCIES = ['kafka', 'schema_registry', 'redis', 'clickhouse'] as const;
export type Dependency = (typeof DEPENDENCIES)[number];

const DEPENDENCY_OF_CODE: Partial<Record<string, Dependency>> = {
  KAFKA_UNAVAILABLE: 'kafka',
  KAFKA_TRANSACTION_ABORTED: 'kafka',
  REGISTRY_UNAVAILABLE: 'schema_registry',
  STATE_UNAVAILABLE: 'redis',
  CLICKHOUSE_UNAVAILABLE: 'clickhouse',
};

interface LibrdKafkaErrorLike {
  readonly code: number;
  readonly origin: string;
  readonly isFatal?: boolean;
}

function isLibrdKafkaError(error: unknown): error is LibrdKafkaErrorLike {
  const e = error as Partial<LibrdKafkaErrorLike> | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.code === 'number' &&
    typeof e.origin === 'string' &&
    (error as object).constructor?.name === 'LibrdKafkaError'
  );
}

/** Which dependency a failure points at (null: not a dependency's failure). */
export function dependencyOf(error: unknown): Dependency | null {
  if (error instanceof VigilError) return DEPENDENCY_OF_CODE[error.code] ?? null;
  if (isLibrdKafkaError(error)) return 'kafka';
  return null;
}

/** Whether to back off and restart rather than exit. */
export function isTransient(error: unknown): boolean {
  if (error instanceof VigilError) return isRetriable(error);
  return isLibrdKafkaError(error) && error.isFatal !== true;
}

/** 0.5 s, 1 s, 2 s, ... capped at `maxMs`. */
export function backoffMs(attempt: number, baseMs = 500, maxMs = 30_000): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempt), 16));
}

/** A failure's machine-readable code (never a message: messages may carry values). */
function codeOf(error: unknown): string {
  if (error instanceof VigilError) return error.code;
  if (isLibrdKafkaError(error)) return `librdkafka:${error.code}`;
  return 'unknown';
}

export interface RideThroughOptions {
  /** What is restarting, for the log line (e.g. 'clickhouse sink'). */
  readonly what: string;
  readonly log: Logger;
  readonly metrics: PipelineMetrics;
  /** The dependencies this process uses: their gauges are set to 1 at its first progress. */
  readonly uses: readonly Dependency[];
  /** True once the process was asked to stop: no further restart. */
  readonly stopRequested: () => boolean;
  readonly maxBackoffMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

/**
 * Runs `attempt` until it returns, restarting it after transient failures. `attempt` gets a `progressed` callback to
 * call after every committed batch (it ends the outage: recovery time logged, gauges back to 1). Returns what each
 * successful attempt returned (one element unless a stop arrived during a backoff: then none).
 *
 * @example
 * const [summary] = await rideThrough((progressed) => runClickHouseSink({ ...deps, onCommitted: progressed }), {
 *   what: 'clickhouse sink', log, metrics, uses: ['kafka', 'schema_registry', 'clickhouse'], stopRequested,
 * });
 */
export async function rideThrough<T>(
  attempt: (progressed: () => void) => Promise<T>,
  options: RideThroughOptions,
): Promise<T[]> {
  const { log, metrics } = options;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let outage: { since: number; dependency: Dependency | null; restarts: number } | null = null;
  let everProgressed = false;
  const progressed = (): void => {
    if (!everProgressed) {
      everProgressed = true;
      for (const d of options.uses) metrics.dependencyUp.set({ dependency: d }, 1);
    }
    if (outage === null) return;
    const recoveryMs = now() - outage.since;
    if (outage.dependency) metrics.dependencyUp.set({ dependency: outage.dependency }, 1);
    log.info(
      { dependency: outage.dependency ?? 'unknown', recoveryMs, restarts: outage.restarts },
      `${options.what} resumed: first committed batch ${recoveryMs} ms after the failure`,
    );
    outage = null;
  };
  for (;;) {
    try {
      return [await attempt(progressed)];
    } catch (error) {
      if (!isTransient(error) || options.stopRequested()) throw error;
      const dependency = dependencyOf(error);
      if (dependency) {
        metrics.dependencyRetries.inc({ dependency });
        metrics.dependencyUp.set({ dependency }, 0);
      }
      outage ??= { since: now(), dependency, restarts: 0 };
      outage.restarts++;
      if (dependency) outage.dependency = dependency;
      const wait = backoffMs(outage.restarts - 1, 500, options.maxBackoffMs ?? 30_000);
      log.warn(
        { dependency: dependency ?? 'unknown', code: codeOf(error), backoffMs: wait, restarts: outage.restarts },
        `${options.what}: ${dependency ?? 'a dependency'} failed (${codeOf(error)}); restarting from committed offsets in ${wait} ms`,
      );
      await sleep(wait);
      if (options.stopRequested()) return [];
    }
  }
}
