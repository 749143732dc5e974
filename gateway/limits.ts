/**
 * The gateway's limits: the one place they are defined, defaulted and documented. Strict (an unknown key is an error)
 * and checked at start-up, so a typo or an impossible combination fails before the first connection.
 */
import { z } from 'zod';
import { VigilError } from '../runtime/errors.ts';
import type { GatewayStateParams } from './state.ts';

export const GATEWAY_DEFAULTS = {
  maxBodyBytes: 1_048_576,
  maxEventBytes: 65_536,
  maxEventsPerRequest: 500,
  skewMs: 300_000,
  replayWindow: 64,
  sequenceTtlMs: 7 * 86_400_000,
  deviceRatePerSec: 100,
  deviceBurst: 1_000,
  connectionRequestsPerSec: 50,
  connectionBurst: 100,
  maxConnectionsPerCertificate: 4,
  maxConnections: 10_000,
  handshakeTimeoutMs: 5_000,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
} as const;

const positiveInt = (fallback: number, description: string, example: number) =>
  z
    .number()
    .int()
    .positive()
    .default(fallback)
    .meta({ description, examples: [example] });

export const gatewayLimitsSchema = z
  .strictObject({
    maxBodyBytes: positiveInt(
      GATEWAY_DEFAULTS.maxBodyBytes,
      'Largest request body, in bytes; a larger one is refused whole with 413 PAYLOAD_TOO_LARGE (reading stops there).',
      1_048_576,
    ),
    maxEventBytes: z
      .number()
      .int()
      .positive()
      .max(65_536)
      .default(GATEWAY_DEFAULTS.maxEventBytes)
      .meta({
        description:
          'Largest signed event (one JWS line), in bytes; a larger one is refused alone with PAYLOAD_TOO_LARGE. At ' +
          'most 65536: the envelope keeps the JWS in signed_event, whose limit (adapters/avro/limits.ts) is that.',
        examples: [65_536],
      }),
    maxEventsPerRequest: positiveInt(
      GATEWAY_DEFAULTS.maxEventsPerRequest,
      'Most events one request may carry; more is 413 PAYLOAD_TOO_LARGE. At most deviceBurst, or it could never pass.',
      500,
    ),
    skewMs: positiveInt(
      GATEWAY_DEFAULTS.skewMs,
      "Allowed distance between an event's observed_at and the gateway clock, both ways (CLOCK_SKEW beyond). The " +
        'nonce cache keeps a nonce twice this long: as long as an event carrying it can still pass the skew check.',
      300_000,
    ),
    replayWindow: z
      .literal(64)
      .default(GATEWAY_DEFAULTS.replayWindow)
      .meta({
        description:
          'Replay window per device, in sequence numbers (IPsec style, fixed at 64: the Redis state keeps it as a ' +
          '64-bit map). A sequence at or below highest - 64, or already seen, is SEQUENCE_REPLAYED.',
        examples: [64],
      }),
    sequenceTtlMs: positiveInt(
      GATEWAY_DEFAULTS.sequenceTtlMs,
      "How long a device's replay window is kept after its last accepted event, in ms. Older replays still fail the " +
        'skew check, so this only has to outlast the skew bound; longer keeps the window across quiet periods.',
      604_800_000,
    ),
    deviceRatePerSec: positiveInt(
      GATEWAY_DEFAULTS.deviceRatePerSec,
      'Events per second a device may send, summed over every gateway sharing the state (token bucket refill).',
      100,
    ),
    deviceBurst: positiveInt(
      GATEWAY_DEFAULTS.deviceBurst,
      "The device bucket's size: events a quiet device may send at once. A request that needs more tokens than are " +
        'left is refused whole: 429 RATE_LIMITED with Retry-After.',
      1_000,
    ),
    connectionRequestsPerSec: positiveInt(
      GATEWAY_DEFAULTS.connectionRequestsPerSec,
      'Requests per second one connection may make (local bucket, checked before any signature is verified).',
      50,
    ),
    connectionBurst: positiveInt(GATEWAY_DEFAULTS.connectionBurst, "The connection bucket's size, in requests.", 100),
    maxConnectionsPerCertificate: positiveInt(
      GATEWAY_DEFAULTS.maxConnectionsPerCertificate,
      'Most open connections one client certificate may hold on one gateway; one more is recorded (RATE_LIMITED) ' +
        'and closed at once.',
      4,
    ),
    maxConnections: positiveInt(
      GATEWAY_DEFAULTS.maxConnections,
      'Most TCP connections the gateway holds at once, trusted or not (more are dropped by the server at accept).',
      10_000,
    ),
    handshakeTimeoutMs: positiveInt(
      GATEWAY_DEFAULTS.handshakeTimeoutMs,
      'A TLS handshake must finish within this, in ms.',
      5_000,
    ),
    headersTimeoutMs: positiveInt(
      GATEWAY_DEFAULTS.headersTimeoutMs,
      "A new connection's first request must have arrived whole (its headers) within this, in ms: a client " +
        'dribbling its headers (slow-loris) is cut off.',
      5_000,
    ),
    requestTimeoutMs: positiveInt(
      GATEWAY_DEFAULTS.requestTimeoutMs,
      'A request body must be received whole within this, in ms, or the connection is cut off.',
      10_000,
    ),
    idleTimeoutMs: positiveInt(
      GATEWAY_DEFAULTS.idleTimeoutMs,
      'A connection with no request in flight for this long is closed, in ms (keep-alive and HTTP/2 alike).',
      30_000,
    ),
  })
  .meta({ description: 'vigil gateway: size caps, replay protection, rate limits and timeouts.' });

export type GatewayLimits = z.output<typeof gatewayLimitsSchema>;

/**
 * Parses limits (defaults for what is left out), failing with CONFIG_INVALID naming the offending field.
 *
 * @example
 * const limits = parseGatewayLimits({ skewMs: 60_000 }); // every other limit at its default
 */
export function parseGatewayLimits(input: unknown = {}): GatewayLimits {
  const parsed = gatewayLimitsSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new VigilError(
      'CONFIG_INVALID',
      `gateway limits: ${issue?.path.join('.') || '(limits)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const limits = parsed.data;
  if (limits.maxEventsPerRequest > limits.deviceBurst) {
    throw new VigilError('CONFIG_INVALID', 'gateway limits: maxEventsPerRequest must not exceed deviceBurst');
  }
  if (limits.maxEventBytes > limits.maxBodyBytes) {
    throw new VigilError('CONFIG_INVALID', 'gateway limits: maxEventBytes must not exceed maxBodyBytes');
  }
  return limits;
}

/**
 * The shared-state parameters that go with these limits: the device bucket, and a nonce kept twice the skew bound (an
 * event carrying it passes the skew check until observed_at + skew, which is at most receipt + 2 x skew).
 *
 * @example
 * const state = new MemoryGatewayState(stateParamsOf(limits), clock);
 */
export function stateParamsOf(limits: GatewayLimits): GatewayStateParams {
  return {
    ratePerSec: limits.deviceRatePerSec,
    burst: limits.deviceBurst,
    nonceTtlMs: 2 * limits.skewMs,
    sequenceTtlMs: limits.sequenceTtlMs,
  };
}
