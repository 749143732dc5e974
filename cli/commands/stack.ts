/**
 * `vigil stack up|down|status`: the local stack (Kafka KRaft, Apicurio Registry, Redis, ClickHouse server) on
 * loopback. The work lives in infra/local/; this file parses flags and prints.
 *
 * Contracts: `status --json` prints {stackDir, healthy, services: {<name>: {state, endpoint, reachable, pid?, ...}},
 * topics?}; `status` exits 1 unless every service is healthy (or external and reachable). `up --json` prints the
 * start-up result (per-service action and start time, topics). `kill <service> [--signal SIG]` crashes one service
 * (SIGKILL by default) for a fault drill; the next `up` restarts it on its data. VIGIL_STACK_DIR / VIGIL_STACK_PORT_OFFSET select
 * another, isolated instance.
 */
import { constants as osConstants } from 'node:os';
import type { Command } from 'commander';
import { SERVICE_NAMES, type ServiceName, stackConfig } from '../../infra/local/config.ts';
import { stackDown, stackKill, stackStatus, stackUp } from '../../infra/local/stack.ts';
import { VigilError } from '../../runtime/errors.ts';

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function registerStack(program: Command): void {
  const stack = program
    .command('stack')
    .description('Start, stop and inspect the local stack: Kafka, Apicurio Registry, Redis, ClickHouse server');

  stack
    .command('up')
    .description('Start what is not running (idempotent), wait for health, create the topics')
    .option('-q, --quiet', 'print nothing on success')
    .option('--json', 'print the result as JSON')
    .action(async (options: { quiet?: boolean; json?: boolean }) => {
      const config = stackConfig();
      const progress = options.quiet || options.json ? undefined : (line: string) => process.stderr.write(`${line}\n`);
      const result = await stackUp(config, progress ? { onProgress: progress } : {});
      if (options.json) return printJson(result);
      if (options.quiet) return;
      const rows = [['SERVICE', 'ACTION', 'ENDPOINT', 'PID', 'START']];
      for (const service of SERVICE_NAMES.map((name) => result.services[name])) {
        rows.push([
          service.name,
          service.action,
          service.endpoint,
          service.pid === undefined ? '' : String(service.pid),
          service.startMs === undefined ? '' : `${(service.startMs / 1000).toFixed(1)} s`,
        ]);
      }
      const created = result.topics.filter((t) => t.outcome === 'created').length;
      process.stdout.write(
        `${table(rows)}\ntopics: ${result.topics.length} ensured (${created} created)\n` +
          `stack up in ${(result.totalMs / 1000).toFixed(1)} s; logs in ${config.logDir}\n`,
      );
    });

  stack
    .command('down')
    .description('Stop the processes this stack started (by pid) and wait for them to exit')
    .argument('[services...]', `only these (${SERVICE_NAMES.join(', ')}); default all`)
    .option('-q, --quiet', 'print nothing on success')
    .option('--json', 'print the result as JSON')
    .action(async (services: string[], options: { quiet?: boolean; json?: boolean }) => {
      const unknown = services.filter((name) => !(SERVICE_NAMES as readonly string[]).includes(name));
      if (unknown.length > 0) {
        throw new VigilError(
          'CONFIG_INVALID',
          `unknown service(s): ${unknown.join(', ')} (known: ${SERVICE_NAMES.join(', ')})`,
        );
      }
      const only = services.length > 0 ? (services as ServiceName[]) : SERVICE_NAMES;
      const result = await stackDown(stackConfig(), only);
      if (options.json) return printJson(result);
      if (options.quiet) return;
      const rows = [['SERVICE', 'ACTION', 'PID']];
      for (const service of Object.values(result)) {
        if (!service) continue;
        rows.push([service.name, service.action, service.pid === undefined ? '' : String(service.pid)]);
      }
      process.stdout.write(`${table(rows)}\n`);
    });

  stack
    .command('kill')
    .description('Send one signal (default SIGKILL: a crash) to one service and wait for it to exit; `up` restarts it')
    .argument('<service>', `one of ${SERVICE_NAMES.join(', ')}`)
    .option('--signal <name>', 'signal to send, e.g. SIGKILL, SIGTERM, SIGSTOP', 'SIGKILL')
    .option('--json', 'print the result as JSON')
    .action(async (service: string, options: { signal: string; json?: boolean }) => {
      if (!(SERVICE_NAMES as readonly string[]).includes(service)) {
        throw new VigilError('CONFIG_INVALID', `unknown service: ${service} (known: ${SERVICE_NAMES.join(', ')})`);
      }
      const signal = options.signal.toUpperCase().startsWith('SIG')
        ? options.signal.toUpperCase()
        : `SIG${options.signal.toUpperCase()}`;
      if (!(signal in osConstants.signals)) {
        throw new VigilError('CONFIG_INVALID', `unknown signal: ${options.signal}`);
      }
      const result = await stackKill(stackConfig(), service as ServiceName, signal as NodeJS.Signals);
      if (options.json) return printJson(result);
      process.stdout.write(
        `${result.name}: ${result.action}${result.pid ? ` (pid ${result.pid}, ${result.signal})` : ''}\n`,
      );
    });

  stack
    .command('status')
    .description('Each service: healthy, down, unhealthy, foreign (port taken by another process) or external')
    .option('--json', 'print the status as JSON')
    .action(async (options: { json?: boolean }) => {
      const status = await stackStatus(stackConfig());
      if (options.json) {
        printJson(status);
      } else {
        const rows = [['SERVICE', 'STATE', 'ENDPOINT', 'PID']];
        for (const service of Object.values(status.services)) {
          const state =
            service.state === 'external'
              ? `external (${service.reachable ? 'reachable' : 'no answer'})`
              : service.state;
          rows.push([service.name, state, service.endpoint, service.pid === undefined ? '' : String(service.pid)]);
        }
        let topics = '';
        if (status.topics) {
          const entries = Object.entries(status.topics);
          const missing = entries.filter(([, partitions]) => partitions === null).map(([name]) => name);
          topics = `topics: ${entries.length - missing.length}/${entries.length} present${missing.length ? ` (missing: ${missing.join(', ')})` : ''}\n`;
        }
        process.stdout.write(`${table(rows)}\n${topics}`);
      }
      if (!status.healthy) process.exitCode = 1;
    });
}
