/**
 * The device ingestion gateway (issue 10): HTTPS with mutual TLS, HTTP/2 and HTTP/1.1 keep-alive, `POST /v1/events`
 * with one signed event (JWS compact) per line. It authenticates the device from its client certificate and the live
 * device directory, verifies each event (gateway/verify.ts), claims nonces and sequences and takes the device's rate
 * tokens in the shared state (gateway/state.ts: one round trip per request), and answers 202 only once the accepted
 * events are durable in the raw sink. Every refusal, of a request or of one event, is a rejection record written
 * before the answer.
 *
 * Refusals at the TLS layer are recorded too: the server asks for a client certificate but lets the handshake finish
 * whatever it is (`rejectUnauthorized: false`), then answers the connection's requests 401 UNTRUSTED_CERTIFICATE /
 * CERT_EXPIRED with a record and closes it. A refusal at the handshake itself would leave no record.
 */

import { type KeyObject, X509Certificate } from 'node:crypto';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse, constants as h2 } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { Registry } from 'prom-client';
import { ulid } from 'ulid';
import type { DeviceDirectory } from '../identity/types.ts';
import type { Clock } from '../runtime/clock.ts';
import { describeError } from '../runtime/errors.ts';
import { type Logger, silentLogger } from '../runtime/log.ts';
import type { Envelope } from '../schemas/types.ts';
import { type GatewayReason, REQUEST_STATUS } from './codes.ts';
import { type Connection, ConnectionTable, describeConnection } from './connections.ts';
import { type GatewayLimits, parseGatewayLimits } from './limits.ts';
import { GatewayMetrics } from './metrics.ts';
import { type GatewayRejection, type RejectionClaims, rejectionOf } from './rejection.ts';
import type { GatewayState, ReplayClaim } from './state.ts';
import { type ConnectionIdentity, verifySignedEvent } from './verify.ts';

export type { GatewayReason } from './codes.ts';
export type { GatewayLimits } from './limits.ts';
export { parseGatewayLimits, stateParamsOf } from './limits.ts';
export type { GatewayRejection } from './rejection.ts';
export type { GatewayState } from './state.ts';
export { MemoryGatewayState } from './state.ts';

export interface GatewayOptions {
  /** Stamped on every envelope (gateway_id) and rejection. */
  readonly id: string;
  readonly host?: string;
  /** 0 = any free port. */
  readonly port: number;
  /** The server certificate and key, and the device CA client certificates must chain to. */
  readonly tls: { readonly certPem: string; readonly keyPem: string; readonly caPem: string };
  /** identity/types.ts, kept live by the caller. */
  readonly directory: DeviceDirectory;
  /** Nonces, sequence windows, device token buckets (shared across gateways in distributed mode). */
  readonly state: GatewayState;
  /** Durable write; 202 only after it resolves. */
  readonly raw: RawEventSink;
  readonly rejections: RejectionSink;
  readonly clock: Clock;
  readonly limits?: Partial<GatewayLimits>;
  readonly metrics?: Registry;
  readonly log?: Logger;
}

export interface AcceptedEvent {
  readonly lane: 'raw' | 'priority';
  /** The device id (the raw topics are keyed by device). */
  readonly key: string;
  readonly envelope: Envelope;
}

export interface RawEventSink {
  write(events: readonly AcceptedEvent[]): Promise<void>;
}

export interface RejectionSink {
  write(rejections: readonly GatewayRejection[]): Promise<void>;
}

export interface RunningGateway {
  readonly url: string;
  readonly port: number;
  readonly metrics: Registry;
  /** Stops accepting connections, lets requests in flight finish (up to `drainMs`), then closes every connection. */
  close(drainMs?: number): Promise<void>;
}

const CONN = Symbol('vigil.gateway.connection');
type Tagged = TLSSocket & { [CONN]?: Connection };

/** Thrown inside a request to answer it with a status and (for refusals) a reason. */
class Answer {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
    readonly closeConnection = false,
  ) {}
}

/**
 * Starts a gateway.
 *
 * @example
 * const gateway = await startGateway({ id: 'gw-1', port: 8443, tls: { certPem, keyPem, caPem }, directory, clock,
 *   state: new MemoryGatewayState(params, clock), raw: rawSink, rejections: rejectionSink });
 * // devices POST to `${gateway.url}/v1/events` over mTLS; gateway.close() drains and stops
 */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const limits = parseGatewayLimits(options.limits ?? {});
  const { clock, directory, state } = options;
  const log = options.log ?? silentLogger;
  const registry = options.metrics ?? new Registry();
  const metrics = new GatewayMetrics(registry);
  const table = new ConnectionTable((cause) => metrics.closed.inc({ cause }));
  const keys = new Map<string, KeyObject>();

  const server = createSecureServer({
    cert: options.tls.certPem,
    key: options.tls.keyPem,
    ca: options.tls.caPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    allowHTTP1: true,
    handshakeTimeout: limits.handshakeTimeoutMs,
    settings: { maxConcurrentStreams: 100 },
    maxSessionMemory: 10,
  });
  server.maxConnections = limits.maxConnections;
  // The HTTP/1.1 fallback's own timers, as a second line behind the connection timers below.
  Object.assign(server, { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs });

  server.on('secureConnection', (socket: Tagged) => {
    const connection = describeConnection(socket, {
      ratePerSec: limits.connectionRequestsPerSec,
      burst: limits.connectionBurst,
      clock,
    });
    socket[CONN] = connection;
    metrics.openConnections.inc();
    socket.once('close', () => {
      table.remove(connection);
      metrics.openConnections.dec();
    });
    if (connection.fingerprint && table.countFor(connection.fingerprint) >= limits.maxConnectionsPerCertificate) {
      // One certificate may not hold every socket: record the refusal, then close at once.
      void record([
        rejectionOf({
          reason: 'RATE_LIMITED',
          gatewayId: options.id,
          receivedAt: clock.now(),
          fingerprint: connection.fingerprint,
          traceId: ulid(),
          raw: '',
          claims: { deviceId: connection.claimedDeviceId },
        }),
      ]).catch(() => {});
      table.add(connection);
      table.cut(connection, 'connection_cap');
      return;
    }
    table.add(connection);
    table.arm(connection, limits.headersTimeoutMs, 'headers_timeout');
  });
  server.on('session', (session) => session.on('error', () => {}));
  server.on('tlsClientError', () => {}); // handshake failures (timeouts, garbage): nothing to record, no device yet

  const unsubscribe = directory.onTrustWithdrawn((deviceId, fingerprints) => {
    const device = directory.device(deviceId);
    const all = new Set(fingerprints);
    if (device && device.status !== 'active') for (const c of device.certificates) all.add(c.fingerprint);
    const n = table.cutFingerprints(all, 'trust_withdrawn');
    if (n > 0) log.info({ connections: n }, 'trust withdrawn: connections closed');
  });

  async function record(rejections: GatewayRejection[]): Promise<void> {
    if (rejections.length === 0) return;
    await options.rejections.write(rejections);
    for (const r of rejections) metrics.rejected(r.reason);
  }

  /** The connection's device, if the registry trusts its certificate now; else the reason it does not. */
  function authenticate(connection: Connection, now: number): ConnectionIdentity | GatewayReason {
    if (connection.certificateRefusal) return connection.certificateRefusal;
    const fingerprint = connection.fingerprint as string;
    const entry = directory.byFingerprint(fingerprint);
    if (!entry) return 'UNKNOWN_DEVICE';
    if (entry.certificate.revoked || entry.device.status === 'revoked') return 'DEVICE_REVOKED';
    if (entry.device.status === 'suspended') return 'DEVICE_SUSPENDED';
    if (now < entry.certificate.not_before || now > entry.certificate.not_after) return 'CERT_EXPIRED';
    let key = keys.get(fingerprint);
    if (!key) {
      key = new X509Certificate(entry.certificate.pem).publicKey;
      keys.set(fingerprint, key);
    }
    return { deviceId: entry.device.device_id, fingerprint, algorithm: entry.certificate.algorithm, key };
  }

  function readBody(req: Http2ServerRequest, traceId: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limits.maxBodyBytes) {
          req.removeAllListeners('data');
          reject(new Answer(413, { reason: 'PAYLOAD_TOO_LARGE' }, {}, true));
          return;
        }
        chunks.push(chunk);
      });
      req.once('end', () => resolve(Buffer.concat(chunks)));
      req.once('error', reject);
      req.once('aborted', () => reject(new Error(`request ${traceId} aborted`)));
    });
  }

  async function handle(
    req: Http2ServerRequest,
    connection: Connection,
    traceId: string,
    bodyReceived: () => void,
  ): Promise<Answer> {
    const receivedAt = clock.now();
    const refuse = async (
      reason: GatewayReason,
      raw: Buffer | string,
      claims: RejectionClaims = {},
      headers: Record<string, string> = {},
    ): Promise<Answer> => {
      await record([
        rejectionOf({
          reason,
          gatewayId: options.id,
          receivedAt,
          fingerprint: connection.fingerprint,
          traceId,
          raw,
          claims: { deviceId: connection.claimedDeviceId, ...claims },
        }),
      ]);
      const status = REQUEST_STATUS[reason];
      // A connection the registry does not trust gets nothing more: answer, then close it.
      return new Answer(status, { reason }, headers, status === 401 || status === 403);
    };

    if (req.method !== 'POST' || req.url !== '/v1/events') {
      req.resume();
      // Recorded like any refusal (MALFORMED), answered with the HTTP status that says what is wrong.
      const refused = await refuse('MALFORMED', `${req.method} ${req.url}`.slice(0, 1024));
      const status = req.url === '/v1/events' ? 405 : 404;
      return new Answer(status, refused.body, status === 405 ? { allow: 'POST' } : {});
    }
    const identity = authenticate(connection, receivedAt);
    if (typeof identity === 'string') {
      req.resume();
      // One record per refused connection: the streams a client opened before the close are the same refusal, and a
      // client without a trusted certificate must not turn one connection into a flood of records.
      if (connection.refusalRecorded) {
        metrics.rejectedUnrecorded.inc({ reason: identity });
        return new Answer(REQUEST_STATUS[identity], { reason: identity }, {}, true);
      }
      connection.refusalRecorded = true;
      return refuse(identity, '');
    }
    if (!connection.bucket.take(1)) {
      req.resume();
      const retryAfter = String(Math.max(1, Math.ceil(connection.bucket.retryAfterMs(1) / 1000)));
      return refuse('RATE_LIMITED', '', {}, { 'retry-after': retryAfter });
    }
    let body: Buffer;
    try {
      body = await readBody(req, traceId);
      bodyReceived();
    } catch (error) {
      if (error instanceof Answer) {
        await refuse('PAYLOAD_TOO_LARGE', '');
        return error;
      }
      throw error;
    }
    const lines = body
      .toString('utf8')
      .split('\n')
      .map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line))
      .filter((line) => line.trim() !== '');
    if (lines.length === 0) return refuse('MALFORMED', body);
    if (lines.length > limits.maxEventsPerRequest) return refuse('PAYLOAD_TOO_LARGE', body);

    const rejections: GatewayRejection[] = [];
    const rejected: { index: number; reason: GatewayReason }[] = [];
    const reject = (index: number, reason: GatewayReason, claims: RejectionClaims, detail?: string): void => {
      rejected.push({ index, reason });
      rejections.push(
        rejectionOf({
          reason,
          gatewayId: options.id,
          receivedAt,
          fingerprint: identity.fingerprint,
          traceId,
          raw: lines[index] as string,
          claims,
          ...(detail === undefined ? {} : { detail }),
        }),
      );
    };
    const candidates: { index: number; envelope: Envelope; claim: ReplayClaim; claims: RejectionClaims }[] = [];
    for (let index = 0; index < lines.length; index++) {
      const started = performance.now();
      const verdict = verifySignedEvent(lines[index] as string, {
        identity,
        directory,
        gatewayId: options.id,
        receivedAt,
        skewMs: limits.skewMs,
        maxEventBytes: limits.maxEventBytes,
      });
      metrics.verifySeconds.observe((performance.now() - started) / 1000);
      if (verdict.ok) {
        const { envelope, nonce, sequence } = verdict;
        candidates.push({
          index,
          envelope,
          claim: { nonce, sequence },
          claims: {
            deviceId: envelope.device_id,
            keyId: envelope.key_id,
            firmwareVersion: envelope.firmware_version,
            sequence,
            nonce,
          },
        });
      } else reject(index, verdict.reason, verdict.claims, verdict.detail);
    }

    let admitted: Awaited<ReturnType<GatewayState['admit']>>;
    try {
      admitted = await state.admit({
        deviceId: identity.deviceId,
        owner: traceId,
        cost: lines.length,
        claims: candidates.map((c) => c.claim),
      });
    } catch (error) {
      log.warn({ traceId, err: describeError(error) }, 'gateway state unavailable: 503');
      // The script may have run with its reply lost: undo whatever this request claimed, so its retry is fresh.
      state
        .release(
          identity.deviceId,
          traceId,
          candidates.map((c) => c.claim),
        )
        .catch(() => {});
      return new Answer(503, { reason: 'STATE_UNAVAILABLE' }, { 'retry-after': '1' });
    }
    if (!admitted.admitted) {
      const retryAfter = String(Math.max(1, Math.ceil(admitted.retryAfterMs / 1000)));
      return refuse('RATE_LIMITED', body, { deviceId: identity.deviceId }, { 'retry-after': retryAfter });
    }
    const accepted: AcceptedEvent[] = [];
    const claimed: ReplayClaim[] = [];
    candidates.forEach((candidate, i) => {
      const verdict = admitted.verdicts[i];
      if (verdict === 'fresh') {
        claimed.push(candidate.claim);
        accepted.push({
          lane: candidate.envelope.event_type === 'alarm' ? 'priority' : 'raw',
          key: identity.deviceId,
          envelope: candidate.envelope,
        });
      } else {
        reject(
          candidate.index,
          verdict === 'nonce_replayed' ? 'NONCE_REPLAYED' : 'SEQUENCE_REPLAYED',
          candidate.claims,
        );
      }
    });
    rejected.sort((a, b) => a.index - b.index);

    try {
      // Rejections first: if they cannot be recorded nothing is accepted either, and the device retries the whole.
      await record(rejections);
      if (accepted.length > 0) await options.raw.write(accepted);
    } catch (error) {
      log.warn({ traceId, err: describeError(error) }, 'raw or rejection sink failed: 503, claims released');
      try {
        await state.release(identity.deviceId, traceId, claimed);
      } catch (releaseError) {
        log.error({ traceId, err: describeError(releaseError) }, 'could not release the claims of a failed request');
      }
      return new Answer(503, { reason: 'KAFKA_UNAVAILABLE' }, { 'retry-after': '1' });
    }
    for (const event of accepted) metrics.accepted.inc({ lane: event.lane });
    return new Answer(202, { accepted: accepted.length, rejected });
  }

  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const connection = (req.socket as Tagged)[CONN];
    if (!connection) {
      res.writeHead(500);
      res.end();
      return;
    }
    if (req.httpVersionMajor === 2 && !connection.session) connection.session = req.stream.session ?? null;
    const started = performance.now();
    const traceId = ulid();
    connection.active++;
    table.disarm(connection);
    // The body must arrive whole within the request timeout, or the connection is cut off (a slow upload holds no
    // socket). Once it is in, the timer stops: waiting for the raw sink is the gateway's time, not the client's.
    const bodyTimer = setTimeout(() => table.cut(connection, 'request_timeout'), limits.requestTimeoutMs);
    bodyTimer.unref();
    res.once('close', () => {
      clearTimeout(bodyTimer);
      connection.active--;
      if (connection.active === 0 && !connection.closing) table.arm(connection, limits.idleTimeoutMs, 'idle_timeout');
    });

    handle(req, connection, traceId, () => clearTimeout(bodyTimer))
      .catch((error: unknown): Answer => {
        if (error instanceof Answer) return error;
        if (req.aborted || connection.socket.destroyed) return new Answer(499, {});
        log.error({ traceId, err: describeError(error) }, 'gateway request failed');
        return new Answer(503, { reason: 'INTERNAL' });
      })
      .then((answer) => {
        clearTimeout(bodyTimer);
        metrics.requests.inc({ status: String(answer.status) });
        metrics.requestSeconds.observe((performance.now() - started) / 1000);
        if (res.closed || res.destroyed || connection.socket.destroyed) return;
        const headers: Record<string, string> = { 'content-type': 'application/json', ...answer.headers };
        if (answer.closeConnection) {
          connection.closing = true;
          if (req.httpVersionMajor === 1) headers.connection = 'close';
        }
        res.writeHead(answer.status, headers);
        res.end(JSON.stringify(answer.body), () => {
          if (!answer.closeConnection) return;
          if (req.httpVersionMajor === 2) {
            req.stream.close(h2.NGHTTP2_NO_ERROR);
            connection.session?.close();
          }
        });
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';
  log.info({ port: address.port, gateway: options.id }, 'gateway listening');

  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    port: address.port,
    metrics: registry,
    async close(drainMs = 10_000): Promise<void> {
      unsubscribe();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const deadline = Date.now() + drainMs;
      // Idle connections go now; a connection with a request in flight goes as soon as its answer is out.
      for (const connection of table.all()) connection.closing = true;
      while (table.size > 0 && Date.now() < deadline) {
        for (const connection of table.all()) if (connection.active === 0) table.cut(connection, 'shutdown');
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const connection of table.all()) table.cut(connection, 'shutdown');
      await closed;
    },
  };
}
