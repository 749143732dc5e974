/**
 * The distributed gateway, composed: the device directory followed from the device-identity log (Kafka topic, or a
 * file log), the shared state in Redis, the Kafka sinks, the gateway itself and its /metrics. It listens only once the
 * directory has caught up with the log (a gateway that has not read a revocation must not admit anyone), and on the
 * stop signal drains: no new connections, requests in flight finish, then every connection closes.
 */
import { Registry } from 'prom-client';
import { openGatewaySinks } from '../../adapters/kafka/raw-writer.ts';
import { openRedisGatewayState } from '../../adapters/redis/gateway-state.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { type RunningGateway, startGateway } from '../../gateway/index.ts';
import { type GatewayLimits, parseGatewayLimits, stateParamsOf } from '../../gateway/limits.ts';
import { openDeviceDirectory } from '../../identity/directory.ts';
import { registerIdentityMetrics } from '../../identity/metrics.ts';
import type { PkiFiles } from '../../identity/pki.ts';
import type { ControlLog, IdentityChange } from '../../identity/types.ts';
import { systemClock } from '../clock.ts';
import type { Endpoints } from '../endpoints.ts';
import type { Logger } from '../log.ts';
import { serveMetrics } from './metrics-server.ts';

export interface RunGatewayOptions {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly pki: PkiFiles;
  readonly identityLog: ControlLog<IdentityChange>;
  readonly endpoints: Pick<Endpoints, 'kafkaBrokers' | 'schemaRegistryUrl' | 'redisUrl'>;
  /** Prefix of the shared state's Redis keys (default `vigil:`): gateways that share state must share it. */
  readonly stateKeyPrefix?: string;
  /** 0: no metrics server. */
  readonly metricsPort: number;
  readonly limits?: Partial<GatewayLimits>;
  readonly log: Logger;
  /** Called once the gateway listens (tests and the CLI print the URL). */
  readonly onListening?: (gateway: RunningGateway) => void;
  readonly stopSignal: Promise<void>;
}

/**
 * Runs a gateway until the stop signal, then drains.
 *
 * @example
 * await runGateway({ id: 'gw-1', host: '0.0.0.0', port: 8443, pki: loadPki('.vigil/pki'), identityLog,
 *   endpoints: resolveEndpoints(), metricsPort: 9466, log, stopSignal: stopSignal() });
 */
export async function runGateway(options: RunGatewayOptions): Promise<void> {
  const limits = parseGatewayLimits(options.limits ?? {});
  const directory = await openDeviceDirectory(options.identityLog);
  await directory.caughtUp;
  const state = await openRedisGatewayState(
    { url: options.endpoints.redisUrl, ...(options.stateKeyPrefix ? { keyPrefix: options.stateKeyPrefix } : {}) },
    stateParamsOf(limits),
  );
  const sinks = await openGatewaySinks({
    brokers: options.endpoints.kafkaBrokers,
    registry: createSchemaRegistry(options.endpoints.schemaRegistryUrl),
  });
  const registry = new Registry();
  // Certificate expiry (devices expiring within 14 days) and identity changes, beside the gateway's own metrics.
  const stopIdentityMetrics = registerIdentityMetrics(registry, directory.registry);
  const gateway = await startGateway({
    id: options.id,
    host: options.host,
    port: options.port,
    tls: { certPem: options.pki.gatewayCertPem, keyPem: options.pki.gatewayKeyPem, caPem: options.pki.caCertPem },
    directory: directory.registry,
    state,
    raw: sinks.raw,
    rejections: sinks.rejections,
    clock: systemClock,
    limits,
    metrics: registry,
    log: options.log,
  });
  const metricsServer = options.metricsPort > 0 ? await serveMetrics({ registry }, options.metricsPort) : null;
  options.onListening?.(gateway);
  await options.stopSignal;
  options.log.info({ gateway: options.id }, 'stopping: draining connections');
  await gateway.close();
  await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
  stopIdentityMetrics();
  await Promise.all([sinks.close(), state.close(), directory.close(), options.identityLog.close()]);
}
