/**
 * Verifying one signed event (a JWS compact serialisation, one line of a request body) received on an authenticated
 * connection, and turning it into the envelope the raw topic keeps.
 *
 * Order (each step refuses with its own reason): size (PAYLOAD_TOO_LARGE) -> JWS shape and header (MALFORMED) -> `kid`
 * is the connection certificate's fingerprint (KEY_MISMATCH) -> `alg` is the one the certificate's key signs with,
 * `none` and every other refused (BAD_SIGNATURE) -> the signature over the bytes received (BAD_SIGNATURE) -> payload is
 * a JSON object (MALFORMED) -> its `device_id` is the certificate's device (CERT_DEVICE_MISMATCH) -> a nonce and a
 * sequence are there (MALFORMED) -> `observed_at` within the skew bound of the gateway clock, both ways (CLOCK_SKEW) ->
 * an assignment is in force at receipt (DEVICE_UNASSIGNED) and nothing the device claims contradicts it
 * (ASSIGNMENT_MISMATCH) -> the stamped envelope fits the envelope schema (MALFORMED). Only an event that passed all of
 * these reaches the shared state (nonce cache, replay window: gateway/state.ts), so a forged, stale or malformed event
 * never moves a device's window nor burns a nonce.
 *
 * Stamped by the gateway (whatever the device said): patient_ref, site_id, consent_context (the assignment),
 * received_at (gateway clock), integrity_hash (`sha256:<hex>` of the JWS bytes), device_cert_fingerprint and key_id
 * (the kid), signed_event (the JWS exactly as received) and gateway_id when the envelope schema has them. event_id: the
 * device's when it is a ULID, else a new ULID from the gateway (the signed bytes keep what the device sent).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { ulid } from 'ulid';
import { envelopeSchema } from '../adapters/file/envelope-schema.ts';
import { parseEnvelopeObject } from '../adapters/file/ndjson.ts';
import { coerceTimestamp } from '../adapters/file/timestamps.ts';
import type { DeviceDirectory, SigningAlgorithm } from '../identity/types.ts';
import type { Envelope } from '../schemas/types.ts';
import type { GatewayReason } from './codes.ts';
import { parseCompact, verifyCompact } from './jws.ts';
import type { RejectionClaims } from './rejection.ts';

/** Who is on the other end of the connection, established from its client certificate. */
export interface ConnectionIdentity {
  readonly deviceId: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  readonly fingerprint: string;
  readonly algorithm: SigningAlgorithm;
  /** The certificate's public key (cached per fingerprint by the caller). */
  readonly key: KeyObject;
}

export interface VerifyContext {
  readonly identity: ConnectionIdentity;
  readonly directory: DeviceDirectory;
  readonly gatewayId: string;
  readonly receivedAt: number;
  readonly skewMs: number;
  readonly maxEventBytes: number;
}

export type Verified =
  | {
      readonly ok: true;
      readonly envelope: Envelope;
      readonly nonce: string;
      readonly sequence: number;
    }
  | {
      readonly ok: false;
      readonly reason: GatewayReason;
      readonly claims: RejectionClaims;
      /** What failed, in words from a fixed set or a schema field path: never a value from the event. */
      readonly detail?: string;
    };

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const MAX_NONCE = 128;
const ASSIGNED = ['patient_ref', 'site_id', 'consent_context'] as const;

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/**
 * Verifies one JWS line and stamps its envelope.
 *
 * @example
 * const verdict = verifySignedEvent(line, { identity, directory, gatewayId: 'gw-1', receivedAt: clock.now(),
 *   skewMs: 300_000, maxEventBytes: 65_536 });
 * if (verdict.ok) accepted.push(verdict.envelope); else reject(verdict.reason, verdict.claims);
 */
export function verifySignedEvent(jws: string, context: VerifyContext): Verified {
  const { identity } = context;
  const fail = (reason: GatewayReason, claims: RejectionClaims = {}, detail?: string): Verified =>
    detail === undefined ? { ok: false, reason, claims } : { ok: false, reason, claims, detail };

  if (Buffer.byteLength(jws, 'utf8') > context.maxEventBytes) return fail('PAYLOAD_TOO_LARGE');
  const parsedJws = parseCompact(jws);
  if (!parsedJws) return fail('MALFORMED', {}, 'not a JWS compact serialisation');
  const { header } = parsedJws;
  if (typeof header.alg !== 'string' || typeof header.kid !== 'string') {
    return fail('MALFORMED', {}, 'protected header is not a JSON object with alg and kid');
  }
  const keyClaims: RejectionClaims = { keyId: header.kid };
  if (header.kid !== identity.fingerprint) return fail('KEY_MISMATCH', keyClaims);
  if (header.alg !== identity.algorithm) return fail('BAD_SIGNATURE', keyClaims);

  const checked = verifyCompact(parsedJws, identity.key, identity.algorithm);
  if (!checked.ok) return fail('BAD_SIGNATURE', keyClaims);

  const plain = parseObject(checked.payload.toString('utf8'));
  if (!plain) return fail('MALFORMED', keyClaims, 'payload is not a JSON object');
  const claims: RejectionClaims = {
    keyId: header.kid,
    deviceId: plain.device_id,
    firmwareVersion: plain.firmware_version,
    sequence: plain.sequence,
    nonce: plain.nonce,
  };
  if (plain.device_id !== identity.deviceId) return fail('CERT_DEVICE_MISMATCH', claims);
  const { nonce, sequence } = plain;
  if (typeof nonce !== 'string' || nonce.length === 0 || nonce.length > MAX_NONCE) {
    return fail('MALFORMED', claims, `nonce: expected a string of 1..${MAX_NONCE} characters`);
  }
  if (typeof sequence !== 'number' || !Number.isSafeInteger(sequence) || sequence < 0) {
    return fail('MALFORMED', claims, 'sequence: expected a non-negative integer');
  }
  const observedAt = coerceTimestamp(plain.observed_at);
  if (observedAt === undefined) return fail('MALFORMED', claims, 'observed_at: expected epoch ms or ISO-8601');
  if (Math.abs(observedAt - context.receivedAt) > context.skewMs) return fail('CLOCK_SKEW', claims);

  const assignment = context.directory.assignmentAt(identity.deviceId, context.receivedAt);
  if (!assignment) return fail('DEVICE_UNASSIGNED', claims);
  for (const field of ASSIGNED) {
    const claimed = plain[field];
    if (claimed !== undefined && claimed !== null && claimed !== assignment[field]) {
      return fail('ASSIGNMENT_MISMATCH', claims);
    }
  }

  const stamped: Record<string, unknown> = {
    ...plain,
    event_id: typeof plain.event_id === 'string' && ULID.test(plain.event_id) ? plain.event_id : ulid(observedAt),
    patient_ref: assignment.patient_ref,
    site_id: assignment.site_id,
    consent_context: assignment.consent_context,
    received_at: context.receivedAt,
    integrity_hash: `sha256:${createHash('sha256').update(jws, 'utf8').digest('hex')}`,
    device_cert_fingerprint: identity.fingerprint,
    key_id: header.kid,
  };
  const fields = schemaFields();
  if (fields.has('signed_event')) stamped.signed_event = jws;
  if (fields.has('gateway_id')) stamped.gateway_id = context.gatewayId;
  const parsed = parseEnvelopeObject(stamped);
  if (!parsed.ok) return fail('MALFORMED', claims, parsed.detail);
  return { ok: true, envelope: parsed.envelope, nonce, sequence };
}

let fieldNames: ReadonlySet<string> | null = null;

/** The newest envelope schema's field names: signed_event and gateway_id are stamped once the schema carries them. */
function schemaFields(): ReadonlySet<string> {
  fieldNames ??= new Set(envelopeSchema().type.fields.map((f) => f.name));
  return fieldNames;
}
