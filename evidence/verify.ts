/**
 * Re-checking a stored event from the evidence alone, years after the gateway accepted it:
 *
 * - the raw hash: `integrity_hash` must be `sha256:` + hex SHA-256 of `signed_event` (the bytes the device signed, as
 *   the gateway received them), every derivation must cite that same hash, and the record's bytes (while the `raw`
 *   column's TTL keeps them) must still hash to `raw_sha256`;
 * - the device signature: the certificate the raw row names (device_cert_fingerprint) is looked up in the
 *   device-identity log, must chain to the device CA, name the same device and have been valid when the gateway
 *   received the event; the JWS is verified with its key by the gateway's own verifier (gateway/jws.ts), its kid must
 *   be that fingerprint and its payload must name this event and device.
 *
 * A later revocation does not undo a signature made while the certificate was trusted: it is not checked here (the
 * identity log shows it to whoever asks).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { parseCompact, verifyCompact } from '../gateway/jws.ts';
import type { DeviceDirectory } from '../identity/types.ts';
import type { EventEvidence } from './lookup.ts';

export interface Check {
  readonly ok: boolean;
  /** Why it failed, in fixed words (no PHI: no ids, no values). */
  readonly problem: string | null;
}

const pass: Check = { ok: true, problem: null };
const fail = (problem: string): Check => ({ ok: false, problem });

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The raw hash, recomputed from the stored signed_event (and the stored bytes, while kept). */
export function checkRawHash(evidence: EventEvidence): Check {
  const raw = evidence.raw;
  if (!raw) return fail('no raw record');
  if (!raw.signed_event || !raw.integrity_hash) return fail('the raw record carries no gateway evidence');
  const recomputed = `sha256:${sha256Hex(Buffer.from(raw.signed_event, 'utf8'))}`;
  if (recomputed !== raw.integrity_hash) return fail('signed_event does not hash to the stored integrity_hash');
  if (evidence.derivations.some((d) => d.integrity_hash !== raw.integrity_hash)) {
    return fail('a derivation cites another integrity_hash than the raw record');
  }
  if (raw.raw_sha256_now !== null && raw.raw_sha256_now !== raw.raw_sha256) {
    return fail('the stored record bytes do not hash to raw_sha256');
  }
  return pass;
}

export interface SignatureContext {
  readonly directory: Pick<DeviceDirectory, 'byFingerprint'>;
  /** The device CA certificate (PEM) the device certificates must chain to. */
  readonly caCertPem: string;
}

/** The device's signature over signed_event, with the certificate the identity log holds for its fingerprint. */
export function checkDeviceSignature(evidence: EventEvidence, ctx: SignatureContext): Check {
  const raw = evidence.raw;
  if (!raw?.signed_event || !raw.device_cert_fingerprint) return fail('the raw record carries no gateway evidence');
  const known = ctx.directory.byFingerprint(raw.device_cert_fingerprint);
  if (!known) return fail('the certificate is not in the device-identity log');
  const deviceId = raw.device_id ?? evidence.derivations[0]?.device_id ?? null;
  if (deviceId !== null && known.device.device_id !== deviceId) {
    return fail('the certificate belongs to another device');
  }
  let certificate: X509Certificate;
  let ca: X509Certificate;
  try {
    certificate = new X509Certificate(known.certificate.pem);
    ca = new X509Certificate(ctx.caCertPem);
  } catch {
    return fail('a certificate does not parse');
  }
  if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)) {
    return fail('the certificate does not chain to the device CA');
  }
  const receivedAt = evidence.derivations[0]?.received_at;
  if (
    receivedAt !== undefined &&
    (receivedAt < known.certificate.not_before || receivedAt > known.certificate.not_after)
  ) {
    return fail('the certificate was not valid when the event was received');
  }
  const parsed = parseCompact(raw.signed_event);
  if (!parsed) return fail('signed_event is not a compact JWS');
  if (parsed.header.kid !== raw.device_cert_fingerprint) return fail('the JWS kid is not the certificate fingerprint');
  const check = verifyCompact(parsed, certificate.publicKey, known.certificate.algorithm);
  if (!check.ok) return fail('the device signature does not verify');
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(check.payload.toString('utf8')) as Record<string, unknown>;
  } catch {
    return fail('the signed payload is not JSON');
  }
  if (payload.event_id !== evidence.event_id) return fail('the signed payload names another event');
  if (payload.device_id !== known.device.device_id) return fail('the signed payload names another device');
  return pass;
}
