/**
 * What a simulated device sends the gateway: its envelope as a signed JWS line (RFC 7515 compact serialisation).
 *
 * The payload is the envelope in its NDJSON shape (adapters/file/ndjson.ts) without what the gateway decides: the
 * assignment it stamps (`patient_ref`, `site_id`, `consent_context`), its own receipt time and hash (`received_at`,
 * `integrity_hash`) and the certificate it saw (`device_cert_fingerprint`, `key_id`). The protected header is
 * `{alg, kid}` with `kid` = the device certificate's SHA-256 fingerprint.
 *
 * Signing uses node:crypto directly rather than jose's `CompactSign`: the bytes are the same (gateway-sign.test.ts
 * verifies them with jose's `compactVerify`), but jose goes through WebCrypto's promises, measured here at ~130 µs per
 * ES256 signature against ~30 µs for a synchronous `crypto.sign` — seconds over a 100,000-event demo.
 */
import { createPrivateKey, type KeyObject, sign } from 'node:crypto';
import { envelopeToPlain } from '../adapters/file/ndjson.ts';
import type { SigningAlgorithm } from '../identity/types.ts';
import type { Envelope } from '../schemas/types.ts';

/** A device's certificate and key as the fleet driver uses them. */
export interface DeviceCredentials {
  readonly deviceId: string;
  readonly certPem: string;
  /** PKCS#8 PEM: the TLS client key and the JWS signing key. */
  readonly keyPem: string;
  /** SHA-256 of the certificate's DER, lowercase hex: the JWS kid. */
  readonly fingerprint: string;
  readonly algorithm: SigningAlgorithm;
}

/** Envelope fields the gateway sets, so a device leaves them out. */
export const GATEWAY_SET_FIELDS = [
  'patient_ref',
  'site_id',
  'consent_context',
  'received_at',
  'integrity_hash',
  'device_cert_fingerprint',
  'key_id',
] as const;

/** The JSON object a device signs for an envelope; `claims` adds fields it asserts anyway (e.g. a patient_ref). */
export function devicePayload(envelope: Envelope, claims: Record<string, unknown> = {}): Record<string, unknown> {
  const plain = envelopeToPlain(envelope);
  for (const field of GATEWAY_SET_FIELDS) delete plain[field];
  return { ...plain, ...claims };
}

const b64url = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64url');

/** Signs payload bytes as a JWS compact serialisation with a key, an algorithm and a kid. */
export type JwsSigner = (payload: Buffer | string) => string;

/**
 * A signer bound to one key.
 *
 * @example
 * const signLine = jwsSigner(credentials.keyPem, 'ES256', credentials.fingerprint);
 * const line = signLine(JSON.stringify(devicePayload(envelope))); // "eyJhbGciOi..." (header.payload.signature)
 */
export function jwsSigner(keyPem: string | KeyObject, algorithm: SigningAlgorithm, kid: string): JwsSigner {
  const key = typeof keyPem === 'string' ? createPrivateKey(keyPem) : keyPem;
  const header = b64url(JSON.stringify({ alg: algorithm, kid }));
  return (payload) => {
    const input = `${header}.${b64url(payload)}`;
    const signature =
      algorithm === 'ES256'
        ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
        : sign(null, Buffer.from(input), key);
    return `${input}.${signature.toString('base64url')}`;
  };
}

/** The signer of a device's own credentials. */
export function deviceSigner(credentials: DeviceCredentials): JwsSigner {
  return jwsSigner(credentials.keyPem, credentials.algorithm, credentials.fingerprint);
}
