/**
 * The reason codes the gateway refuses with (all filed under stage `gateway` in runtime/errors.ts, plus CLOCK_SKEW
 * reused from `validate`), and the HTTP status a whole-request refusal answers with.
 */

/** Every code a gateway rejection record may carry. */
export const GATEWAY_REASONS = [
  'MALFORMED',
  'UNTRUSTED_CERTIFICATE',
  'CERT_EXPIRED',
  'UNKNOWN_DEVICE',
  'DEVICE_REVOKED',
  'DEVICE_SUSPENDED',
  'CERT_DEVICE_MISMATCH',
  'KEY_MISMATCH',
  'BAD_SIGNATURE',
  'NONCE_REPLAYED',
  'SEQUENCE_REPLAYED',
  'CLOCK_SKEW',
  'PAYLOAD_TOO_LARGE',
  'RATE_LIMITED',
  'DEVICE_UNASSIGNED',
  'ASSIGNMENT_MISMATCH',
] as const;

export type GatewayReason = (typeof GATEWAY_REASONS)[number];

/** The status of a request refused as a whole (an event refused inside a 202 keeps the request's 202). */
export const REQUEST_STATUS: Readonly<Record<GatewayReason, number>> = {
  MALFORMED: 400,
  UNTRUSTED_CERTIFICATE: 401,
  CERT_EXPIRED: 401,
  UNKNOWN_DEVICE: 403,
  DEVICE_REVOKED: 403,
  DEVICE_SUSPENDED: 403,
  CERT_DEVICE_MISMATCH: 403,
  KEY_MISMATCH: 403,
  BAD_SIGNATURE: 400,
  NONCE_REPLAYED: 400,
  SEQUENCE_REPLAYED: 400,
  CLOCK_SKEW: 400,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  DEVICE_UNASSIGNED: 403,
  ASSIGNMENT_MISMATCH: 400,
};
