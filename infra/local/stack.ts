/**
 * `vigil stack up|down|status` as functions: the CLI (cli/commands/stack.ts) only parses flags and prints.
 *
 * up: idempotent. A service of ours that answers is left alone; one that is down is prepared and started (all in
 * parallel), and `up` returns once every one answers its health probe and the project's topics exist. A service
 * whose environment variable is set (KAFKA_BROKERS, ...) is external: never started, only probed (and Kafka still gets
 * its topics). Something else listening on one of our ports is an error, not something to adopt or kill.
 * down: stops only the pids this stack recorded and still recognises (process.ts), waits for them to exit.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENDPOINT_ENV, TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { type DebianTool, requireTools } from './artifacts.ts';
import {
  fingerprintFile,
  logFile,
  pidFile,
  SERVICE_ENDPOINT,
  SERVICE_NAMES,
  type ServiceName,
  type StackConfig,
  serviceDir,
} from './config.ts';
import { ensureTopics, type TopicResult, topicPartitions } from './create-topics.ts';
import { type ProbeSecurity, probe, tcpOpen, waitUntil } from './health.ts';
import { isAlive, killProcess, ownedPid, removePidFile, spawnDetached, stopProcess } from './process.ts';
import { adminKafkaSecurity, ensureSecureMaterial, securePaths } from './secure.ts';
import { fingerprint, type Plan, SERVICES } from './services.ts';

/** Commands the stack promises on the machine even when every service is external. */
const ALWAYS_TOOLS: readonly DebianTool[] = ['promtool', 'kcat'];

export type ServiceState = 'healthy' | 'down' | 'unhealthy' | 'foreign' | 'external';

export interface ServiceStatus {
  readonly name: ServiceName;
  /**
   * healthy: ours, answering. down: not running. unhealthy: ours, running, not answering (yet). foreign: something
   * this stack did not start holds its port. external: an environment variable points elsewhere.
   */
  readonly state: ServiceState;
  /** Where clients reach it (credentials removed). */
  readonly endpoint: string;
  /** The probe's answer (for an external service: is it reachable). */
  readonly reachable: boolean;
  readonly pid?: number;
  readonly log?: string;
  /** Environment variable that makes it external. */
  readonly env: string;
}

export interface StackStatus {
  readonly stackDir: string;
  /** The mode probed: secured (`up --secure`) or plain. */
  readonly secure: boolean;
  /** Every service healthy, or external and reachable. */
  readonly healthy: boolean;
  readonly services: Record<ServiceName, ServiceStatus>;
  /** Partition count per project topic (null: missing); absent when Kafka does not answer. */
  readonly topics?: Record<string, number | null>;
}

/** Endpoints may carry credentials (staging): never print them. */
export function redact(endpoint: string): string {
  return endpoint.replace(/\/\/[^/@\s]*@/g, '//***@');
}

function secureMarker(config: StackConfig): string {
  return path.join(config.runDir, 'secure');
}

/** The last `up` of this stack directory started the secured mode (so `status` probes it that way). */
export function lastUpWasSecure(config: StackConfig): boolean {
  return readFileSafe(secureMarker(config)).trim() === 'secure';
}

/** How the stack's own probes and admin client log in: nothing for the plain stack, the admin login when secured. */
export function stackSecurity(config: StackConfig): ProbeSecurity {
  if (!config.secure) return {};
  const paths = securePaths(config);
  const redis = { password: readFileSafe(paths.redisPassword).trim(), ca: readFileSafe(paths.caCert) };
  try {
    return {
      kafka: adminKafkaSecurity(config),
      ...(config.external.redis ? {} : { redis }),
      ...(config.external['clickhouse-server'] ? {} : { clickhouse: { ca: redis.ca } }),
    };
  } catch {
    return {}; // not generated yet (`up --secure` generates it): the probes then find nothing answering
  }
}

async function serviceStatus(config: StackConfig, name: ServiceName): Promise<ServiceStatus> {
  const endpoint = config.endpoints[name];
  const base = { name, endpoint: redact(endpoint), env: ENDPOINT_ENV[SERVICE_ENDPOINT[name]] };
  if (config.external[name]) {
    return { ...base, state: 'external', reachable: await probe(name, endpoint) };
  }
  const pid = ownedPid(pidFile(config, name), serviceDir(config, name));
  const reachable = await probe(name, endpoint, undefined, stackSecurity(config));
  const log = logFile(config, name);
  if (pid !== undefined) return { ...base, state: reachable ? 'healthy' : 'unhealthy', reachable, pid, log };
  if (reachable) return { ...base, state: 'foreign', reachable };
  const bound = await Promise.all(SERVICES[name].ports(config).map((port) => tcpOpen('127.0.0.1', port, 500)));
  return { ...base, state: bound.some(Boolean) ? 'foreign' : 'down', reachable, log };
}

export async function stackStatus(config: StackConfig): Promise<StackStatus> {
  const list = await Promise.all(SERVICE_NAMES.map((name) => serviceStatus(config, name)));
  const services = Object.fromEntries(list.map((s) => [s.name, s])) as Record<ServiceName, ServiceStatus>;
  const healthy = list.every((s) => s.state === 'healthy' || (s.state === 'external' && s.reachable));
  let topics: Record<string, number | null> | undefined;
  if (services.kafka.reachable) {
    try {
      const partitions = await topicPartitions(config.endpoints.kafka, 5_000, stackSecurity(config).kafka);
      topics = Object.fromEntries(Object.values(TOPICS).map((topic) => [topic, partitions.get(topic) ?? null]));
    } catch {
      topics = undefined;
    }
  }
  return { stackDir: config.stackDir, secure: config.secure, healthy, services, ...(topics ? { topics } : {}) };
}

// ---- lock: one `up`/`down` at a time per stack directory -------------------------------------------------------

async function withLock<T>(config: StackConfig, work: () => Promise<T>, waitMs = 600_000): Promise<T> {
  mkdirSync(config.runDir, { recursive: true });
  const lock = path.join(config.runDir, 'stack.lock');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt(readFileSafe(lock).trim(), 10);
      if (!Number.isInteger(holder) || !isAlive(holder)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() >= deadline) {
        throw new VigilError('STACK_SERVICE_FAILED', `another vigil stack command (pid ${holder}) holds ${lock}`);
      }
      await sleep(250);
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { force: true });
  }
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Drop the pidfile and fingerprint of a service that no longer runs. */
function forget(config: StackConfig, name: ServiceName): void {
  removePidFile(pidFile(config, name));
  rmSync(fingerprintFile(config, name), { force: true });
}

function logTail(file: string, lines = 15): string {
  return readFileSafe(file).trimEnd().split('\n').slice(-lines).join('\n');
}

/** The service's recorded fingerprint differs from what it would be started with now (and both are known). */
function startedWithOtherSettings(config: StackConfig, name: ServiceName): boolean {
  const startedWith = readFileSafe(fingerprintFile(config, name)).trim();
  if (startedWith === '') return false;
  try {
    return fingerprint(SERVICES[name].plan(config)) !== startedWith;
  } catch {
    return false;
  }
}

// ---- up -----------------------------------------------------------------------------------------------------------

export type UpAction = 'started' | 'running' | 'external';

export interface UpServiceResult {
  readonly name: ServiceName;
  readonly action: UpAction;
  readonly endpoint: string;
  readonly pid?: number;
  /** Spawn to first healthy probe (started services only). */
  readonly startMs?: number;
}

export interface UpResult {
  readonly services: Record<ServiceName, UpServiceResult>;
  readonly topics: readonly TopicResult[];
  readonly totalMs: number;
}

export interface UpOptions {
  /** Progress lines (the CLI prints them unless --quiet). */
  readonly onProgress?: (line: string) => void;
}

/**
 * @example
 * const result = await stackUp(stackConfig());
 * result.services.kafka.action; // 'started' the first time, 'running' after
 */
export function stackUp(config: StackConfig, options: UpOptions = {}): Promise<UpResult> {
  return withLock(config, () => up(config, options));
}

async function up(config: StackConfig, options: UpOptions): Promise<UpResult> {
  const began = Date.now();
  const say = options.onProgress ?? (() => {});
  if (config.secure) {
    const paths = ensureSecureMaterial(config);
    say(`secured mode: CA, broker certificate and passwords in ${paths.dir}; client settings in ${paths.envFile}`);
  }
  const security = stackSecurity(config);
  // Remembered for `status` and `env` (which then need no --secure); `up` itself always starts the mode it is asked for.
  if (config.secure) writeFileSync(secureMarker(config), 'secure\n');
  else rmSync(secureMarker(config), { force: true });
  const before = await stackStatus(config);
  const results = {} as Record<ServiceName, UpServiceResult>;
  const toStart: ServiceName[] = [];
  const problems: string[] = [];

  for (const name of SERVICE_NAMES) {
    const status = before.services[name];
    const endpoint = status.endpoint;
    switch (status.state) {
      case 'external':
        if (status.reachable) results[name] = { name, action: 'external', endpoint };
        else problems.push(`${name}: ${status.env} points at ${endpoint}, which does not answer`);
        break;
      case 'foreign':
        problems.push(
          `${name}: port(s) ${SERVICES[name].ports(config).join('/')} are taken by a process this stack did not start` +
            ` (stop it, or set ${status.env} to use it as an external service)`,
        );
        break;
      case 'healthy': {
        // Started with other settings (an older checkout, another Kafka version): replace it.
        let current: string | undefined;
        try {
          current = fingerprint(SERVICES[name].plan(config));
        } catch {
          current = undefined; // cannot plan a restart here (e.g. its JDK is gone): keep what runs
        }
        const startedWith = readFileSafe(fingerprintFile(config, name)).trim();
        if (current === undefined || current === startedWith) {
          results[name] = { name, action: 'running', endpoint, pid: status.pid! };
          break;
        }
        say(`${name}: its configuration changed since it started (pid ${status.pid}); restarting it`);
        await stopProcess(status.pid!, SERVICES[name].stopGraceMs);
        forget(config, name);
        toStart.push(name);
        break;
      }
      case 'unhealthy': {
        // Started in the other mode (secured vs plain): our probe cannot log in; replace it without waiting.
        if (startedWithOtherSettings(config, name)) {
          say(`${name}: started with other settings (pid ${status.pid}); restarting it`);
          await stopProcess(status.pid!, SERVICES[name].stopGraceMs);
          forget(config, name);
          toStart.push(name);
          break;
        }
        // Ours but not answering: maybe still starting. Give it its start time, then replace it.
        say(`${name}: running (pid ${status.pid}) but not answering yet; waiting`);
        const ok = await waitUntil(() => probe(name, config.endpoints[name], undefined, security), {
          timeoutMs: SERVICES[name].startTimeoutMs,
          stillRunning: () => isAlive(status.pid!),
        });
        if (ok) {
          results[name] = { name, action: 'running', endpoint, pid: status.pid! };
        } else {
          say(`${name}: not healthy; restarting it`);
          if (isAlive(status.pid!)) await stopProcess(status.pid!, SERVICES[name].stopGraceMs);
          forget(config, name);
          toStart.push(name);
        }
        break;
      }
      case 'down':
        toStart.push(name);
        break;
    }
  }
  if (problems.length > 0) throw new VigilError('STACK_SERVICE_FAILED', problems.join('; '));

  requireTools([...new Set([...ALWAYS_TOOLS, ...toStart.flatMap((name) => SERVICES[name].tools)])]);

  // Servers without artifacts first, so they come up while Maven and the JVMs get ready.
  const order: ServiceName[] = ['redis', 'clickhouse-server', 'kafka', 'apicurio'];
  const waits: Promise<void>[] = [];
  const failures: string[] = [];
  for (const name of order.filter((n) => toStart.includes(n))) {
    const def = SERVICES[name];
    say(`${name}: preparing`);
    let plan: Plan;
    try {
      plan = def.plan(config);
      await def.prepare(config, plan);
    } catch (error) {
      failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const spawnedAt = Date.now();
    let pid: number;
    try {
      const child = spawnDetached({
        command: plan.launch.command,
        args: plan.launch.args,
        cwd: serviceDir(config, name),
        env: { ...process.env, ...plan.launch.env },
        logFile: logFile(config, name),
        pidFile: pidFile(config, name),
      });
      pid = child.pid!;
    } catch (error) {
      failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    writeFileSync(fingerprintFile(config, name), `${fingerprint(plan)}\n`);
    say(`${name}: started (pid ${pid}), waiting for health`);
    waits.push(
      (async () => {
        const ok = await waitUntil(() => probe(name, config.endpoints[name], undefined, security), {
          timeoutMs: def.startTimeoutMs,
          stillRunning: () => isAlive(pid),
        });
        if (ok) {
          const startMs = Date.now() - spawnedAt;
          results[name] = { name, action: 'started', endpoint: redact(config.endpoints[name]), pid, startMs };
          say(`${name}: healthy after ${(startMs / 1000).toFixed(1)} s`);
          return;
        }
        const exited = !isAlive(pid);
        if (!exited) await stopProcess(pid, def.stopGraceMs);
        forget(config, name);
        const log = logFile(config, name);
        failures.push(
          `${name}: ${exited ? 'exited during start-up' : `not healthy after ${def.startTimeoutMs / 1000} s (stopped)`}` +
            `; last lines of ${log}:\n${logTail(log)}`,
        );
      })(),
    );
  }
  await Promise.all(waits);
  if (failures.length > 0) throw new VigilError('STACK_SERVICE_FAILED', failures.join('\n'));

  say('kafka: ensuring topics');
  const replicationFactor = config.external.kafka ? externalReplicationFactor() : 1;
  const topics = await ensureTopics(config.endpoints.kafka, {
    replicationFactor,
    ...(security.kafka && !config.external.kafka ? { security: security.kafka } : {}),
  });
  return { services: results, topics, totalMs: Date.now() - began };
}

function externalReplicationFactor(): number {
  const raw = process.env.VIGIL_TOPIC_REPLICATION_FACTOR;
  if (raw === undefined || raw === '') return -1;
  const factor = Number(raw);
  if (!Number.isInteger(factor) || (factor < 1 && factor !== -1)) {
    throw new VigilError('CONFIG_INVALID', `VIGIL_TOPIC_REPLICATION_FACTOR must be -1 or a positive integer`);
  }
  return factor;
}

// ---- down ---------------------------------------------------------------------------------------------------------

export type DownAction = 'stopped' | 'killed' | 'not-running' | 'external';

export interface DownServiceResult {
  readonly name: ServiceName;
  readonly action: DownAction;
  readonly pid?: number;
}

/**
 * @example
 * await stackDown(stackConfig()); // every process this stack started has exited
 * await stackDown(stackConfig(), ['apicurio']); // just that one (`vigil stack up` brings it back)
 */
export function stackDown(
  config: StackConfig,
  only: readonly ServiceName[] = SERVICE_NAMES,
): Promise<Partial<Record<ServiceName, DownServiceResult>>> {
  return withLock(config, async () => {
    const results = await Promise.all(
      SERVICE_NAMES.filter((name) => only.includes(name)).map(async (name): Promise<DownServiceResult> => {
        if (config.external[name]) return { name, action: 'external' };
        const file = pidFile(config, name);
        const pid = ownedPid(file, serviceDir(config, name));
        if (pid === undefined) {
          forget(config, name);
          return { name, action: 'not-running' };
        }
        const stopped = await stopProcess(pid, SERVICES[name].stopGraceMs);
        forget(config, name);
        return { name, action: stopped.killed ? 'killed' : 'stopped', pid };
      }),
    );
    return Object.fromEntries(results.map((r) => [r.name, r])) as Partial<Record<ServiceName, DownServiceResult>>;
  });
}

// ---- kill (fault drills) ------------------------------------------------------------------------------------------

export interface KillResult {
  readonly name: ServiceName;
  readonly action: 'killed' | 'signalled' | 'not-running' | 'external';
  readonly signal: NodeJS.Signals;
  readonly pid?: number;
}

/**
 * Sends one signal (SIGKILL by default: a crash, no shutdown hooks) to one service of this stack, by its recorded pid,
 * and waits for it to exit. Its pidfile goes stale, so `status` says `down` and `up` starts it again with the same data
 * directory: what a supervisor restarting a crashed service does. Fault drills use it on an isolated stack.
 *
 * @example
 * await stackKill(stackConfig(), 'kafka');          // SIGKILL, then:
 * await stackUp(stackConfig());                      // kafka: started; the others: running
 */
export function stackKill(
  config: StackConfig,
  name: ServiceName,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<KillResult> {
  return withLock(config, async () => {
    if (config.external[name]) return { name, action: 'external', signal };
    const pid = ownedPid(pidFile(config, name), serviceDir(config, name));
    if (pid === undefined) {
      forget(config, name);
      return { name, action: 'not-running', signal };
    }
    const exited = await killProcess(pid, signal, SERVICES[name].stopGraceMs);
    if (!exited) return { name, action: 'signalled', signal, pid };
    forget(config, name);
    return { name, action: 'killed', signal, pid };
  });
}
