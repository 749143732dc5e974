/**
 * Where the local stack lives and which ports it takes. One stack per state directory: the default is the repo's
 * `.vigil/stack` on the fixed ports of runtime/endpoints.ts. `VIGIL_STACK_DIR` and `VIGIL_STACK_PORT_OFFSET` give a
 * second, isolated instance (a scratch clone's CI dry run, the stack's own up/down test) that never touches the first.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type EndpointName, LOCAL_PORTS, resolveEndpoints, stackPortOffset } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';

export const SERVICE_NAMES = ['kafka', 'apicurio', 'redis', 'clickhouse-server'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Which endpoint (and so which environment variable) each service answers for. */
export const SERVICE_ENDPOINT: Record<ServiceName, EndpointName> = {
  kafka: 'kafkaBrokers',
  apicurio: 'schemaRegistryUrl',
  redis: 'redisUrl',
  'clickhouse-server': 'clickhouseUrl',
};

export interface StackPorts {
  readonly kafka: number;
  readonly kafkaController: number;
  readonly schemaRegistry: number;
  /** Quarkus's management interface (health, metrics); it would otherwise take 0.0.0.0:9000. */
  readonly schemaRegistryManagement: number;
  readonly redis: number;
  readonly clickhouseHttp: number;
  readonly clickhouseNative: number;
}

export interface StackConfig {
  /** Repository root (infra/local/pom.xml lives under it). */
  readonly repoDir: string;
  /** State of this stack instance: artifacts, data, logs, pidfiles. */
  readonly stackDir: string;
  readonly logDir: string;
  readonly runDir: string;
  readonly ports: StackPorts;
  /** The endpoint each service is reached at (the given one when external). */
  readonly endpoints: Record<ServiceName, string>;
  /** True when an environment variable points the service elsewhere: the stack does not start it. */
  readonly external: Record<ServiceName, boolean>;
  /**
   * The secured mode (`vigil stack up --secure`, or VIGIL_STACK_SECURE=1): Kafka's client listener speaks SASL_SSL with
   * SCRAM-SHA-512 and Redis TLS with a password (infra/local/secure.ts).
   */
  readonly secure: boolean;
}

export const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** @see stackPortOffset in runtime/endpoints.ts (one definition for the stack and for clients). */
export const parsePortOffset = stackPortOffset;

/**
 * The stack instance this process works with.
 *
 * @example
 * const config = stackConfig(); // .vigil/stack on 19092/18081/16379/18123
 * const scratch = stackConfig({ ...process.env, VIGIL_STACK_DIR: '/tmp/s', VIGIL_STACK_PORT_OFFSET: '100' });
 */
export function stackConfig(env: NodeJS.ProcessEnv = process.env): StackConfig {
  const stackDir = path.resolve(env.VIGIL_STACK_DIR?.trim() || path.join(REPO_DIR, '.vigil', 'stack'));
  const offset = parsePortOffset(env.VIGIL_STACK_PORT_OFFSET);
  const secure = secureMode(env.VIGIL_STACK_SECURE);
  const ports: StackPorts = {
    kafka: LOCAL_PORTS.kafka + offset,
    kafkaController: LOCAL_PORTS.kafkaController + offset,
    schemaRegistry: LOCAL_PORTS.schemaRegistry + offset,
    schemaRegistryManagement: LOCAL_PORTS.schemaRegistry + 1 + offset,
    redis: LOCAL_PORTS.redis + offset,
    clickhouseHttp: LOCAL_PORTS.clickhouseHttp + offset,
    clickhouseNative: LOCAL_PORTS.clickhouseNative + offset,
  };
  const resolved = resolveEndpoints(env);
  const local: Record<ServiceName, string> = {
    kafka: `127.0.0.1:${ports.kafka}`,
    apicurio: `http://127.0.0.1:${ports.schemaRegistry}/apis/ccompat/v7`,
    redis: `${secure ? 'rediss' : 'redis'}://127.0.0.1:${ports.redis}`,
    'clickhouse-server': `${secure ? 'https' : 'http'}://127.0.0.1:${ports.clickhouseHttp}`,
  };
  const external = {} as Record<ServiceName, boolean>;
  const endpoints = {} as Record<ServiceName, string>;
  for (const name of SERVICE_NAMES) {
    const endpoint = SERVICE_ENDPOINT[name];
    // In the secured mode, a variable naming this stack's own TLS endpoint (secure.env sets REDIS_URL and
    // CLICKHOUSE_URL) is not external. Plain mode keeps the rule as it was: any variable makes the service external
    // (infra/local/compose.yaml sets all four to the local ports so that `stack up` starts nothing).
    external[name] = resolved.external[endpoint] && !(secure && resolved[endpoint] === local[name]);
    endpoints[name] = external[name] ? resolved[endpoint] : local[name];
  }
  return {
    repoDir: REPO_DIR,
    stackDir,
    logDir: path.join(stackDir, 'logs'),
    runDir: path.join(stackDir, 'run'),
    ports,
    endpoints,
    external,
    secure,
  };
}

/** VIGIL_STACK_SECURE: '1'/'true' secured, ''/'0'/'false' (or unset) plain; anything else is a mistake. */
export function secureMode(raw: string | undefined): boolean {
  const value = raw?.trim().toLowerCase() ?? '';
  if (value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw new VigilError('CONFIG_INVALID', `VIGIL_STACK_SECURE must be 1/true or 0/false, got '${raw}'`);
}

/** Each service's own directory (its working directory, data and generated config). */
export function serviceDir(config: StackConfig, name: ServiceName): string {
  return path.join(config.stackDir, name);
}

export function logFile(config: StackConfig, name: ServiceName): string {
  return path.join(config.logDir, `${name}.log`);
}

export function pidFile(config: StackConfig, name: ServiceName): string {
  return path.join(config.runDir, `${name}.pid`);
}

/** Fingerprint of what the running process was started with (services.ts `fingerprint`). */
export function fingerprintFile(config: StackConfig, name: ServiceName): string {
  return path.join(config.runDir, `${name}.fingerprint`);
}
