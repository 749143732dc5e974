/**
 * Where the external services are. Defaults are the local stack's loopback ports (chosen away from the services'
 * usual ports so a developer's own Kafka or Redis is never touched). Setting an environment variable points Vigil at an
 * existing service instead (staging, a team cluster), and `vigil stack up` then leaves that service alone.
 */
import { VigilError } from './errors.ts';

export interface Endpoints {
  /** Comma-separated bootstrap servers. */
  readonly kafkaBrokers: string;
  /** Confluent-compatible registry base URL (Apicurio's ccompat API). */
  readonly schemaRegistryUrl: string;
  readonly redisUrl: string;
  /** ClickHouse HTTP interface (the Debian server locally; only the HTTP wire tests use it). */
  readonly clickhouseUrl: string;
}

export const LOCAL_PORTS = {
  kafka: 19092,
  kafkaController: 19093,
  schemaRegistry: 18081,
  redis: 16379,
  clickhouseHttp: 18123,
  clickhouseNative: 19000,
} as const;

export const DEFAULT_ENDPOINTS: Endpoints = {
  kafkaBrokers: `127.0.0.1:${LOCAL_PORTS.kafka}`,
  schemaRegistryUrl: `http://127.0.0.1:${LOCAL_PORTS.schemaRegistry}/apis/ccompat/v7`,
  redisUrl: `redis://127.0.0.1:${LOCAL_PORTS.redis}`,
  clickhouseUrl: `http://127.0.0.1:${LOCAL_PORTS.clickhouseHttp}`,
};

export type EndpointName = keyof Endpoints;

export const ENDPOINT_ENV: Record<EndpointName, string> = {
  kafkaBrokers: 'KAFKA_BROKERS',
  schemaRegistryUrl: 'SCHEMA_REGISTRY_URL',
  redisUrl: 'REDIS_URL',
  clickhouseUrl: 'CLICKHOUSE_URL',
};

/**
 * `VIGIL_STACK_PORT_OFFSET` shifts every local port: a second, isolated local stack (`vigil stack up` with the same
 * variable starts it there) that a scratch clone or a parallel CI run can use without touching the usual one.
 * The raw value is always passed in (no fallback to process.env): an explicit env without the variable means offset 0.
 */
export function stackPortOffset(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 0;
  const offset = Number(raw);
  // Highest local port is 19093: keep every port below 65536 and away from the privileged range.
  if (!Number.isInteger(offset) || offset < -10_000 || offset > 40_000) {
    throw new VigilError(
      'CONFIG_INVALID',
      `VIGIL_STACK_PORT_OFFSET must be an integer between -10000 and 40000, got '${raw}'`,
    );
  }
  return offset;
}

export function resolveEndpoints(
  env: NodeJS.ProcessEnv = process.env,
): Endpoints & { external: Record<EndpointName, boolean> } {
  const offset = stackPortOffset(env.VIGIL_STACK_PORT_OFFSET);
  const defaults: Endpoints = {
    kafkaBrokers: `127.0.0.1:${LOCAL_PORTS.kafka + offset}`,
    schemaRegistryUrl: `http://127.0.0.1:${LOCAL_PORTS.schemaRegistry + offset}/apis/ccompat/v7`,
    redisUrl: `redis://127.0.0.1:${LOCAL_PORTS.redis + offset}`,
    clickhouseUrl: `http://127.0.0.1:${LOCAL_PORTS.clickhouseHttp + offset}`,
  };
  const pick = (name: EndpointName): string => env[ENDPOINT_ENV[name]]?.trim() || defaults[name];
  const external = Object.fromEntries(
    (Object.keys(ENDPOINT_ENV) as EndpointName[]).map((name) => [name, Boolean(env[ENDPOINT_ENV[name]]?.trim())]),
  ) as Record<EndpointName, boolean>;
  return {
    kafkaBrokers: pick('kafkaBrokers'),
    schemaRegistryUrl: pick('schemaRegistryUrl'),
    redisUrl: pick('redisUrl'),
    clickhouseUrl: pick('clickhouseUrl'),
    external,
  };
}

/**
 * Kafka topics the project creates (explicit partitions and configs: auto-creation is off on the local broker).
 * `VIGIL_TOPIC_PREFIX` namespaces all of them (`<prefix>.vigil.telemetry.raw`): one environment on a shared cluster,
 * or one isolated integration-test run. Read once, when this module loads.
 */
const TOPIC_PREFIX = process.env.VIGIL_TOPIC_PREFIX?.trim() ?? '';
const topic = <const N extends string>(name: N): N => (TOPIC_PREFIX ? `${TOPIC_PREFIX}.${name}` : name) as N;

export const TOPICS = {
  raw: topic('vigil.telemetry.raw'),
  /** The alarm lane: the gateway writes `alarm` events here so a vitals backlog never delays them. */
  rawPriority: topic('vigil.telemetry.raw-priority'),
  normalised: topic('vigil.telemetry.normalised'),
  inferences: topic('vigil.clinical.inferences'),
  clinicalAlerts: topic('vigil.clinical.alerts'),
  /** Clinical outcomes (escalation, ICU transfer, confirmed deterioration) by patient pseudonym: model calibration. */
  outcomes: topic('vigil.clinical.outcomes'),
  alertActions: topic('vigil.clinical.alert-actions'),
  deadLetter: topic('vigil.ops.dead-letter'),
  duplicates: topic('vigil.ops.duplicates'),
  gatewayRejections: topic('vigil.ops.gateway-rejections'),
  driftHistograms: topic('vigil.ml.drift-histograms'),
  modelRollouts: topic('vigil.control.model-rollouts'),
  deviceIdentity: topic('vigil.control.device-identity'),
  auditLog: topic('vigil.audit.log'),
} as const;

/**
 * The state changelog of one consumer group's workers (runtime/state/changelog.ts): compacted, co-partitioned with the
 * pipeline's source, created by the workers themselves when missing, prefixed like every other topic. Per group, as
 * Kafka Streams names its changelogs after the application id: two groups reading the same source keep apart states.
 */
export function stateChangelogTopic(groupId: string): string {
  return topic(`vigil.state.${groupId.replace(/[^A-Za-z0-9._-]/g, '_')}.changelog`);
}
