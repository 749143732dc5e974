/**
 * `vigil models guard`: the drift guard (governance/drift-guard.ts) as a command. Each pass reads the registry from
 * the model-rollouts log (`--control-dir DIR`: the file log DIR/model-rollouts.jsonl, else the Kafka topic), each
 * clinical version's latest drift window from the read store (the embedded store `npm start` fills, `--data-dir`, or
 * the server with `--server`), and rolls back, as `system:drift-guard`, every canary or live version whose drift
 * exceeds its manifest's thresholds where the manifest says `drift.auto_rollback: true` — through the governance
 * service, so the rollback is a record on the log like any other and an entry in the audit log (`--audit-dir`, else
 * the Kafka audit topic). Running workers apply it within seconds. A feature counts as drifted only when its JS distance
 * is past the manifest's `js_threshold` AND beyond chance for the number of devices measured (drift_reports' chance
 * gate, the same SQL functions): a small healthy canary is not rolled back for its patient mix.
 *
 *   vigil models guard --once [--json]         one pass, a report (exit 1 when a rollback failed)
 *   vigil models guard --every 300             a pass every 300 s until SIGINT/SIGTERM
 *       [--metrics-port 9467]                  /metrics: vigil_model_drift_exceeded{model,version} (rule
 *                                              VigilModelDriftExceeded, docs/runbooks/model-drift.md)
 *
 * `--json` prints one line per pass: `{"at","checks":[{"model","version","mode","action","verdict","window",
 * "detail"}]}` (action: ok | exceeded | rolled_back | held | no_figures | failed).
 */
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { DEFAULT_MODELS_ROOT } from '../../adapters/onnx/model-store.ts';
import { readModelRegistry } from '../../governance/directory.ts';
import {
  DEFAULT_LOOKBACK_MS,
  type DriftGuardMetrics,
  type GuardReport,
  guardOnce,
  registerDriftGuardMetrics,
  storeDriftFigures,
} from '../../governance/drift-guard.ts';
import { rollbackModel } from '../../governance/service.ts';
import { type Clock, systemClock } from '../../runtime/clock.ts';
import { describeError, VigilError } from '../../runtime/errors.ts';
import { createLogger, type Logger } from '../../runtime/log.ts';
import { serveMetrics } from '../../runtime/runners/metrics-server.ts';
import { openReadStore } from '../store.ts';
import { type ControlAuditFlags, controlAudit, controlAuditOptions } from './control-audit.ts';
import { MODEL_ROLLOUTS_FILE, modelRolloutsLog } from './models.ts';

export const DEFAULT_GUARD_EVERY_S = 300;

export interface GuardFlags extends ControlAuditFlags {
  readonly once?: boolean;
  readonly every?: string;
  readonly controlDir?: string;
  readonly modelsRoot?: string;
  readonly server?: boolean;
  readonly dataDir?: string;
  readonly lookbackHours?: string;
  readonly metricsPort?: string;
  readonly json?: boolean;
}

function positive(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new VigilError('CONFIG_INVALID', `${flag} must be a positive number`);
  return n;
}

/**
 * One pass of the guard with the command's wiring: the log and the store are opened for the pass and closed after it
 * (an embedded store is shared with whoever fills it).
 *
 * @example
 * const report = await guardPass({ controlDir: '.vigil/embedded/control', auditDir: '.vigil/audit' });
 */
export async function guardPass(
  flags: GuardFlags,
  options: { clock?: Clock; metrics?: DriftGuardMetrics; log?: Logger } = {},
): Promise<GuardReport> {
  const clock = options.clock ?? systemClock;
  const lookbackMs = positive(flags.lookbackHours, '--lookback-hours', DEFAULT_LOOKBACK_MS / 3_600_000) * 3_600_000;
  const audit = controlAudit(flags, { clock });
  const log = modelRolloutsLog(flags.controlDir ? { controlDir: flags.controlDir } : {});
  const store = openReadStore(flags);
  try {
    const ctx = { log, audit, clock, modelsRoot: flags.modelsRoot ?? DEFAULT_MODELS_ROOT };
    return await guardOnce({
      readRegistry: () => readModelRegistry(log),
      figures: storeDriftFigures(store, lookbackMs),
      rollback: (model, request) => rollbackModel(ctx, model, request),
      clock,
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
  } finally {
    await Promise.allSettled([store.close(), log.close()]);
  }
}

function printReport(report: GuardReport, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const at = new Date(report.at).toISOString();
  if (report.checks.length === 0) process.stdout.write(`${at} drift guard: no canary or live version to watch\n`);
  for (const c of report.checks) {
    const figures = c.verdict
      ? ` drifted ${c.verdict.drifted_features.join(', ') || 'none'} (${(c.verdict.share * 100).toFixed(0)}%)`
      : '';
    const detail = c.detail ? `: ${c.detail}` : '';
    process.stdout.write(`${at} ${c.model}@${c.version} (${c.mode}) ${c.action}${figures}${detail}\n`);
  }
}

/**
 * Registers `guard` on the `models` command (cli/commands/models.ts registerModels returns it).
 *
 * @example
 * registerModelsGuard(registerModels(program));
 */
export function registerModelsGuard(models: Command): Command {
  return controlAuditOptions(models.command('guard'))
    .description(
      "roll back canary/live versions whose drift exceeds their manifest's thresholds where the manifest allows it",
    )
    .option('--once', 'one pass, then exit')
    .option('--every <seconds>', `seconds between passes (default ${DEFAULT_GUARD_EVERY_S})`)
    .option('--control-dir <dir>', `use the file log <dir>/${MODEL_ROLLOUTS_FILE} instead of Kafka (embedded mode)`)
    .option('--models-root <dir>', 'the models folder (<root>/<name>/<version>/)', DEFAULT_MODELS_ROOT)
    .option('--server', 'read the ClickHouse server at CLICKHOUSE_URL instead of the embedded store')
    .option('--data-dir <dir>', 'embedded store directory (default: the one npm start fills)')
    .option('--lookback-hours <h>', 'how far back from the latest window to look for one with enough values', '6')
    .option('--metrics-port <port>', 'serve /metrics (vigil_model_drift_exceeded) on this port (loop mode)')
    .option('--json', 'one JSON line per pass')
    .action(async (flags: GuardFlags) => {
      const json = flags.json;
      if (flags.once) {
        const report = await guardPass(flags);
        printReport(report, json);
        if (report.checks.some((c) => c.action === 'failed')) process.exitCode = 1;
        return;
      }
      await guardLoop(flags, (report) => printReport(report, json));
    });
}

export interface GuardLoopOptions {
  /** Ends the loop after the pass in progress (default: SIGINT or SIGTERM). */
  readonly signal?: AbortSignal;
  /** Waits between passes (default: a timer the signal cuts short). */
  readonly wait?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Told the metrics server once it listens (with --metrics-port). */
  readonly onMetricsServer?: (server: Server) => void;
}

const timerWait = (ms: number, signal: AbortSignal): Promise<void> =>
  // Aborted: the wait ends at once (the rejection is the abort itself, nothing to report).
  sleep(ms, undefined, { signal }).catch(() => undefined);

/**
 * Passes every `--every` seconds until SIGINT/SIGTERM (a pass in progress completes). A failed pass (the store or the
 * log unreachable) is logged and retried at the next tick: the guard must outlive a dependency's restart.
 *
 * @example
 * await guardLoop({ every: '300', metricsPort: '9467', controlDir: '.vigil/control' }, (r) => console.log(r));
 */
export async function guardLoop(
  flags: GuardFlags,
  onReport: (report: GuardReport) => void,
  options: GuardLoopOptions = {},
): Promise<void> {
  const everyMs = positive(flags.every, '--every', DEFAULT_GUARD_EVERY_S) * 1_000;
  const log = createLogger('models-guard');
  const registry = new Registry();
  const metrics = registerDriftGuardMetrics(registry);
  let server: Server | undefined;
  if (flags.metricsPort !== undefined) {
    const port = Number(flags.metricsPort);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new VigilError('CONFIG_INVALID', '--metrics-port must be a port number');
    }
    server = await serveMetrics({ registry }, port);
    options.onMetricsServer?.(server);
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const external = options.signal;
  if (external) external.addEventListener('abort', onSignal, { once: true });
  else {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  const wait = options.wait ?? timerWait;
  try {
    while (!stop.signal.aborted) {
      try {
        onReport(await guardPass(flags, { metrics, log }));
      } catch (error) {
        log.error({ error: describeError(error) }, 'drift guard pass failed; retrying at the next tick');
      }
      if (!stop.signal.aborted) await wait(everyMs, stop.signal);
    }
  } finally {
    if (external) external.removeEventListener('abort', onSignal);
    else {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
