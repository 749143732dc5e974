/**
 * `vigil stack up|down|status`: the local stack (Kafka KRaft, Apicurio Registry, Redis, ClickHouse server) on
 * loopback. The work lives in infra/local/; this file parses flags and prints.
 *
 * Contracts: `status --json` prints {stackDir, secure, healthy, services: {<name>: {state, endpoint, reachable, pid?, ...}},
 * topics?}; `status` exits 1 unless every service is healthy (or external and reachable). `up --json` prints the
 * start-up result (per-service action and start time, topics). `kill <service> [--signal SIG]` crashes one service
 * (SIGKILL by default) for a fault drill; the next `up` restarts it on its data. VIGIL_STACK_DIR / VIGIL_STACK_PORT_OFFSET select
 * another, isolated instance. `up --secure` (or VIGIL_STACK_SECURE=1) runs the secured stack: Kafka over SASL_SSL with
 * SCRAM-SHA-512, Redis over TLS with a password (infra/local/secure.ts); `env --secure` prints the clients' settings.
 */
import { constants as osConstants } from 'node:os';
import type { Command } from 'commander';
import { SERVICE_NAMES, type ServiceName, stackConfig } from '../../infra/local/config.ts';
import { formatEnv, secureEnv, securePaths } from '../../infra/local/secure.ts';
import { lastUpWasSecure, stackDown, stackKill, stackStatus, stackUp } from '../../infra/local/stack.ts';
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

/**
 * The stack this command works on; `--secure` is the same as VIGIL_STACK_SECURE=1. `status` and `env` also follow
 * the mode the last `up` started (`remembered`), unless VIGIL_STACK_SECURE says otherwise.
 */
function selectedConfig(options: { secure?: boolean }, remembered = false) {
  const config = stackConfig(options.secure ? { ...process.env, VIGIL_STACK_SECURE: '1' } : process.env);
  if (config.secure || !remembered || process.env.VIGIL_STACK_SECURE?.trim() || !lastUpWasSecure(config)) return config;
  return stackConfig({ ...process.env, VIGIL_STACK_SECURE: '1' });
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
    .option(
      '--secure',
      'Kafka over TLS + SASL SCRAM-SHA-512, Redis over TLS with a password (same as VIGIL_STACK_SECURE=1)',
    )
    .action(async (options: { quiet?: boolean; json?: boolean; secure?: boolean }) => {
      const config = selectedConfig(options);
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
          `stack up in ${(result.totalMs / 1000).toFixed(1)} s; logs in ${config.logDir}\n` +
          (config.secure
            ? `secured: clients need the settings in ${securePaths(config).envFile} (\`vigil stack env --secure\`)\n`
            : ''),
      );
    });

  stack
    .command('env')
    .description(
      'Print the security settings the clients need for this stack (KEY=value lines; passwords only by file)',
    )
    .option('--secure', 'the secured stack (the default after `up --secure`; same as VIGIL_STACK_SECURE=1)')
    .option('--json', 'print the settings as a JSON object')
    .action((options: { secure?: boolean; json?: boolean }) => {
      const config = selectedConfig(options, true);
      // Kafka's and the registry's endpoints are left out on purpose: clients derive them from VIGIL_STACK_PORT_OFFSET,
      // and KAFKA_BROKERS & co. in a shell would make `vigil stack` treat the services as external.
      const env = config.secure ? secureEnv(config) : {};
      if (options.json) return printJson(env);
      process.stdout.write(config.secure ? formatEnv(env) : '# the plain stack needs no security settings\n');
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
    .option('--secure', 'probe the secured stack (the default after `up --secure`; same as VIGIL_STACK_SECURE=1)')
    .action(async (options: { json?: boolean; secure?: boolean }) => {
      const status = await stackStatus(selectedConfig(options, true));
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
        const mode = status.secure
          ? 'mode: secured (TLS + SASL SCRAM-SHA-512; `vigil stack env` for the clients)\n'
          : '';
        process.stdout.write(`${table(rows)}\n${topics}${mode}`);
      }
      if (!status.healthy) process.exitCode = 1;
    });
}
