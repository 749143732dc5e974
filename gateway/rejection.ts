/**
 * A gateway rejection record (REFERENCE.md "A rejection record holds"; value schema `gateway-rejection` on
 * TOPICS.gatewayRejections): why a request or one of its events was refused, who claimed to send it, and the sha256 of
 * the exact bytes refused. Every claimed value is cut to what every store holds (runtime/claims.ts): a rejected event
 * is usually hostile. Never the payload itself.
 */
import { createHash } from 'node:crypto';
import { ulid } from 'ulid';
import { claimedLong, claimedText } from '../runtime/claims.ts';
import type { GatewayReason } from './codes.ts';

export interface GatewayRejection {
  readonly rejection_id: string;
  readonly received_at: number;
  readonly gateway_id: string;
  readonly stage: 'gateway';
  readonly reason: GatewayReason;
  readonly device_cert_fingerprint: string | null;
  readonly claimed_device_id: string | null;
  readonly key_id: string | null;
  readonly firmware_version: string | null;
  readonly sequence: number | null;
  readonly nonce: string | null;
  /** SHA-256 (hex) of the bytes refused: the event's JWS line, or the whole body for a request-level refusal. */
  readonly raw_sha256: string;
  /** Where an encrypted copy of the raw bytes is kept: none yet (null). */
  readonly raw_copy: string | null;
  /** The request id, also in the gateway's log line for the request. */
  readonly trace_id: string;
  /** What failed, when the reason needs it (a schema field path for MALFORMED): never a value from the event. */
  readonly detail: string | null;
}

/** What a refused event claimed about itself, before it is made storable. */
export interface RejectionClaims {
  readonly deviceId?: unknown;
  readonly keyId?: unknown;
  readonly firmwareVersion?: unknown;
  readonly sequence?: unknown;
  readonly nonce?: unknown;
}

export const sha256Hex = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

/**
 * Builds one rejection record.
 *
 * @example
 * rejectionOf({ reason: 'BAD_SIGNATURE', gatewayId: 'gw-1', receivedAt: now, fingerprint, traceId, raw: line,
 *   claims: { keyId: header.kid } });
 */
export function rejectionOf(input: {
  readonly reason: GatewayReason;
  readonly gatewayId: string;
  readonly receivedAt: number;
  readonly fingerprint: string | null;
  readonly traceId: string;
  readonly raw: Buffer | string;
  readonly claims?: RejectionClaims;
  readonly detail?: string;
}): GatewayRejection {
  const claims = input.claims ?? {};
  return {
    rejection_id: ulid(input.receivedAt),
    received_at: input.receivedAt,
    gateway_id: input.gatewayId,
    stage: 'gateway',
    reason: input.reason,
    device_cert_fingerprint: input.fingerprint,
    claimed_device_id: claimedText(claims.deviceId),
    key_id: claimedText(claims.keyId),
    firmware_version: claimedText(claims.firmwareVersion),
    sequence: claimedLong(claims.sequence),
    nonce: claimedText(claims.nonce),
    raw_sha256: sha256Hex(input.raw),
    raw_copy: null,
    trace_id: input.traceId,
    detail: input.detail ?? null,
  };
}
