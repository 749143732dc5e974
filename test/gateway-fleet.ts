/**
 * Test scaffolding for the gateway: enrol devices into a registry (or a control log), sign events the way a device
 * does (JWS compact, ES256 / EdDSA, kid = certificate fingerprint), and talk to a gateway over mTLS with HTTP/2.
 */
import { createPrivateKey, type KeyObject, sign } from 'node:crypto';
import { type ClientHttp2Session, connect } from 'node:http2';
import { ulid } from 'ulid';
import { issueDeviceCertificate, type PkiFiles } from '../identity/pki.ts';
import type { AssignmentInfo, DeviceCertificateInfo, IdentityChange, SigningAlgorithm } from '../identity/types.ts';
import { VITALS } from './fixtures/envelope.ts';

export interface TestDevice {
  readonly deviceId: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly fingerprint: string;
  readonly algorithm: SigningAlgorithm;
  readonly info: DeviceCertificateInfo;
}

export const ASSIGNMENT = { patient_ref: 'psn-v1-aa11', site_id: 'site-north', consent_context: 'care-delivery' };

const change = (deviceId: string, at: number, body: Record<string, unknown>): IdentityChange =>
  ({ change_id: ulid(at), device_id: deviceId, at, actor: 'test', ...body }) as IdentityChange;

/** A device certificate and the identity changes that enrol it (and assign it, from `at - 1 h`, unless told not to). */
export async function enrolChanges(
  pki: PkiFiles,
  deviceId: string,
  options: {
    at: number;
    algorithm?: SigningAlgorithm;
    days?: number;
    issuedAt?: number;
    assignment?: AssignmentInfo | null;
  },
): Promise<{ device: TestDevice; changes: IdentityChange[] }> {
  const issued = await issueDeviceCertificate(pki, deviceId, {
    algorithm: options.algorithm,
    days: options.days,
    now: options.issuedAt,
  });
  const device: TestDevice = {
    deviceId,
    certPem: issued.certPem,
    keyPem: issued.keyPem,
    fingerprint: issued.info.fingerprint,
    algorithm: issued.info.algorithm,
    info: issued.info,
  };
  const changes = [change(deviceId, options.at, { kind: 'enrolled', certificate: issued.info })];
  const assignment =
    options.assignment === undefined ? { ...ASSIGNMENT, from: options.at - 3_600_000 } : options.assignment;
  if (assignment) changes.push(change(deviceId, options.at + 1, { kind: 'assigned', ...assignment }));
  return { device, changes };
}

export const identityChange = change;

/** The JSON a device signs: an NDJSON-shaped envelope without what the gateway stamps. */
export function devicePayload(
  deviceId: string,
  sequence: number,
  observedAt: number,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    event_id: ulid(observedAt),
    device_id: deviceId,
    event_type: 'vital_signs',
    observed_at: observedAt,
    firmware_version: '4.2.1',
    model_version: null,
    schema_version: 'telemetry-envelope-v2',
    processing_policy: 'clinical-v1',
    payload: { ...VITALS },
    sequence,
    nonce: `n-${ulid()}`,
    ...overrides,
  };
}

const b64 = (value: Buffer | string): string => Buffer.from(value).toString('base64url');
const keys = new Map<string, KeyObject>();

/** Signs a payload as JWS compact with the device's key (header overridable to forge). */
export function signEvent(
  device: Pick<TestDevice, 'keyPem' | 'fingerprint' | 'algorithm'>,
  payload: Record<string, unknown> | string,
  header: Record<string, unknown> = {},
): string {
  const protectedHeader = b64(JSON.stringify({ alg: device.algorithm, kid: device.fingerprint, ...header }));
  const body = b64(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const input = `${protectedHeader}.${body}`;
  const key = keys.get(device.keyPem) ?? createPrivateKey(device.keyPem);
  keys.set(device.keyPem, key);
  const signature =
    device.algorithm === 'EdDSA'
      ? sign(null, Buffer.from(input), key)
      : sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64(signature)}`;
}

export interface Reply {
  readonly status: number;
  readonly body: { accepted?: number; rejected?: { index: number; reason: string }[]; reason?: string };
  readonly headers: Record<string, string | string[] | undefined>;
}

/** An HTTP/2 mTLS session to the gateway as a device (or with no client certificate at all). */
export function deviceSession(
  url: string,
  caPem: string,
  device?: Pick<TestDevice, 'certPem' | 'keyPem'>,
): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(url, { ca: caPem, cert: device?.certPem, key: device?.keyPem });
    session.once('connect', () => {
      // The gateway may close or reset the session later (refusal, revocation, timeouts): tests watch 'close'.
      session.on('error', () => {});
      resolve(session);
    });
    session.once('error', reject);
  });
}

/** POSTs lines to /v1/events on an open session. */
export function postEvents(session: ClientHttp2Session, lines: readonly string[] | string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/v1/events', 'content-type': 'application/jose' });
    const chunks: Buffer[] = [];
    let headers: Record<string, string | string[] | undefined> = {};
    stream.on('response', (h) => {
      headers = h as typeof headers;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ status: Number(headers[':status']), body: text ? JSON.parse(text) : {}, headers });
    });
    stream.on('error', reject);
    stream.end(typeof lines === 'string' ? lines : lines.join('\n'));
  });
}
