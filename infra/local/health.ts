/**
 * Health probes: each asks the service something only a working instance answers (a Kafka metadata response listing
 * a broker, the registry's subject list, Redis PONG, ClickHouse "Ok."). A probe never throws: it answers true/false.
 */
import https from 'node:https';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import Kafka from 'node-rdkafka';
import type { ServiceName } from './config.ts';

/** A TCP connection to host:port opens within `timeoutMs` (something listens there). */
export function tcpOpen(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The cluster's metadata (brokers and topics), or an error when no broker answers in time. */
export function kafkaMetadata(
  brokers: string,
  timeoutMs = 5_000,
  security: Readonly<Record<string, string>> = {},
): Promise<Kafka.Metadata> {
  return new Promise((resolve, reject) => {
    const producer = new Kafka.Producer({
      ...security,
      'metadata.broker.list': brokers,
      'client.id': 'vigil-stack-probe',
      // librdkafka's own connection-refused chatter would land on the user's terminal while Kafka starts.
      log_level: 0,
      'socket.connection.setup.timeout.ms': Math.max(1_000, timeoutMs),
    });
    producer.connect({ allTopics: true, timeout: timeoutMs }, (error, metadata) => {
      // A failed connect has already let go of the client (disconnecting it again throws).
      if (error) reject(error);
      else producer.disconnect(() => resolve(metadata));
    });
  });
}

/** `host:port` pairs of a bootstrap list (`a:9092,b:9092`, IPv6 as `[::1]:9092`). */
export function parseBrokers(brokers: string): { host: string; port: number }[] {
  return brokers
    .split(',')
    .map((entry) => entry.trim().replace(/^[a-z]+:\/\//i, ''))
    .filter(Boolean)
    .map((entry) => {
      const at = entry.lastIndexOf(':');
      const host = entry.slice(0, at).replace(/^\[|\]$/g, '');
      return { host, port: Number(entry.slice(at + 1)) };
    })
    .filter((broker) => broker.host !== '' && Number.isInteger(broker.port) && broker.port > 0);
}

export async function kafkaHealthy(
  brokers: string,
  timeoutMs = 5_000,
  security: Readonly<Record<string, string>> = {},
): Promise<boolean> {
  // librdkafka keeps retrying a refused connection until its timeout: a plain TCP check answers "down" at once.
  const reachable = await Promise.all(parseBrokers(brokers).map(({ host, port }) => tcpOpen(host, port, timeoutMs)));
  if (!reachable.some(Boolean)) return false;
  try {
    return (await kafkaMetadata(brokers, timeoutMs, security)).brokers.length > 0;
  } catch {
    return false;
  }
}

/** fetch() refuses URLs with credentials: move `user:pass@` into a Basic header. */
export function splitCredentials(url: string): { url: string; headers: Record<string, string> } {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return { url, headers: {} };
  const auth = Buffer.from(
    `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`,
    'utf8',
  ).toString('base64');
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString(), headers: { authorization: `Basic ${auth}` } };
}

async function httpOk(url: string, timeoutMs: number, expectBody?: RegExp): Promise<boolean> {
  try {
    const target = splitCredentials(url);
    const response = await fetch(target.url, { headers: target.headers, signal: AbortSignal.timeout(timeoutMs) });
    const body = await response.text();
    return response.ok && (expectBody === undefined || expectBody.test(body));
  } catch {
    return false;
  }
}

/** Apicurio's Confluent-compatible API lists subjects (a JSON array). */
export function registryHealthy(baseUrl: string, timeoutMs = 3_000): Promise<boolean> {
  return httpOk(`${baseUrl.replace(/\/+$/, '')}/subjects`, timeoutMs, /^\s*\[/);
}

export function clickhouseHealthy(httpUrl: string, timeoutMs = 3_000, ca?: string): Promise<boolean> {
  const url = new URL(httpUrl);
  url.pathname = '/ping';
  url.search = '';
  return ca ? httpsOk(url, ca, timeoutMs, /^Ok\./) : httpOk(url.toString(), timeoutMs, /^Ok\./);
}

/** GET over HTTPS trusting only `ca` (fetch cannot be given a private CA per request). */
function httpsOk(url: URL, ca: string, timeoutMs: number, expectBody: RegExp): Promise<boolean> {
  return new Promise((resolve) => {
    const request = https.get(url, { ca, timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve(response.statusCode === 200 && expectBody.test(body)));
      response.on('error', () => resolve(false));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
}

/** How the stack's own probes log in to a secured service (infra/local/secure.ts); nothing for the plain stack. */
export interface ProbeSecurity {
  /** librdkafka settings (security.protocol, sasl.*, ssl.ca.location). */
  readonly kafka?: Readonly<Record<string, string>>;
  /** Redis's password and the CA its TLS certificate is signed by. */
  readonly redis?: { readonly password: string; readonly ca: string };
  /** The CA the ClickHouse server's HTTPS certificate is signed by. */
  readonly clickhouse?: { readonly ca: string };
}

export async function redisHealthy(
  redisUrl: string,
  timeoutMs = 3_000,
  security: ProbeSecurity['redis'] = undefined,
): Promise<boolean> {
  // A refused connection would leave ioredis's connect timer holding the process open for `timeoutMs`.
  let target: URL;
  try {
    target = new URL(redisUrl);
  } catch {
    return false;
  }
  const host = target.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  if (!(await tcpOpen(host, Number(target.port || 6379), timeoutMs))) return false;
  const client = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    ...(security ? { password: security.password, tls: { ca: security.ca } } : {}),
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export function probe(
  name: ServiceName,
  endpoint: string,
  timeoutMs?: number,
  security: ProbeSecurity = {},
): Promise<boolean> {
  switch (name) {
    case 'kafka':
      return kafkaHealthy(endpoint, timeoutMs, security.kafka);
    case 'apicurio':
      return registryHealthy(endpoint, timeoutMs);
    case 'redis':
      return redisHealthy(endpoint, timeoutMs, security.redis);
    case 'clickhouse-server':
      return clickhouseHealthy(endpoint, timeoutMs, security.clickhouse?.ca);
  }
}

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Stop early (false) when this says the process is gone. */
  readonly stillRunning?: () => boolean;
}

/** Polls `check` until it passes (true), the deadline passes or the process dies (false). */
export async function waitUntil(check: () => Promise<boolean>, options: WaitOptions): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (options.stillRunning && !options.stillRunning()) return false;
    if (Date.now() >= deadline) return false;
    await sleep(options.intervalMs ?? 250);
  }
}
