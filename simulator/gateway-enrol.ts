/**
 * Enrolling the simulated fleet: a certificate and key per device from the dev PKI (identity/pki.ts), and the
 * identity changes that make the gateway trust it — `enrolled`, then `assigned` to the simulator's own patient, site
 * and consent for that device, so what the gateway stamps is what the simulator would have written. Plus the fault
 * devices of the drills (./gateway-drills.ts): an expired certificate, a revoked and a suspended device, a foreign
 * CA's certificate, a certificate of the right CA never enrolled, and a flooding device.
 *
 * The changes are returned, not written: `npm start` applies them to an in-memory registry, `vigil simulate
 * --gateway` appends them to the control log its gateway follows.
 *
 * Validity: a certificate must be valid both at the gateway's clock (simulated time in `npm start`) and for the TLS
 * layer, which checks the system clock; `notBefore` is the earlier of the two, and the validity covers the later.
 */
import { ulid } from 'ulid';
import { issueDeviceCertificate, type PkiFiles } from '../identity/pki.ts';
import type { IdentityChange, SigningAlgorithm } from '../identity/types.ts';
import type { FaultDevices } from './gateway-drills.ts';
import type { DeviceCredentials } from './gateway-sign.ts';
import { fleetFor, type SimulateOptions } from './simulate.ts';

const DAY_MS = 86_400_000;
const ISSUE_CHUNK = 32;

export interface EnrolOptions {
  readonly pki: Pick<PkiFiles, 'caCertPem' | 'caKeyPem'>;
  /** A second, untrusted CA for the foreign-certificate drill (absent: no such drill). */
  readonly foreignPki?: Pick<PkiFiles, 'caCertPem' | 'caKeyPem'>;
  readonly simulation: SimulateOptions;
  readonly algorithm: SigningAlgorithm;
  /** The times the certificates must be valid at: the simulation's span and the system clock's now. */
  readonly validFrom: number;
  readonly validUntil: number;
  /** Who makes the changes (their `actor`). */
  readonly actor: string;
  /** Whether to make the fault devices too (default true). */
  readonly faults?: boolean;
  /**
   * Put before every device id (default none): a run against a shared gateway state (Redis keeps each device's replay
   * window for days) uses fresh ids so an earlier run's sequences do not count against it.
   */
  readonly devicePrefix?: string;
}

export interface EnrolledFleet {
  /** By the simulator's device id (the credentials name the enrolled id, prefixed when asked). */
  readonly credentials: Map<string, DeviceCredentials>;
  readonly faults: FaultDevices;
  /** In log order. */
  readonly changes: IdentityChange[];
}

export const FAULT_DEVICE_IDS = {
  expired: 'sim-gw-expired',
  revoked: 'sim-gw-revoked',
  suspended: 'sim-gw-suspended',
  foreign: 'sim-gw-foreign',
  unknown: 'sim-gw-unknown',
  flood: 'sim-gw-flood',
} as const;

async function issue(
  pki: EnrolOptions['pki'],
  deviceId: string,
  algorithm: SigningAlgorithm,
  from: number,
  until: number,
): Promise<{ credentials: DeviceCredentials; info: Awaited<ReturnType<typeof issueDeviceCertificate>>['info'] }> {
  const days = Math.max(1, Math.ceil((until - from) / DAY_MS) + 1);
  const { certPem, keyPem, info } = await issueDeviceCertificate(pki, deviceId, { days, algorithm, now: from });
  return { credentials: { deviceId, certPem, keyPem, fingerprint: info.fingerprint, algorithm }, info };
}

/**
 * @example
 * const fleet = await enrolSimulatedFleet({ pki: loadPki(dir), simulation: { devices: 50 }, algorithm: 'EdDSA',
 *   validFrom: start - 86_400_000, validUntil: Date.now() + 30 * 86_400_000, actor: 'vigil-demo' });
 * for (const change of fleet.changes) registry.apply(change);
 */
export async function enrolSimulatedFleet(options: EnrolOptions): Promise<EnrolledFleet> {
  const { pki, algorithm, validFrom, validUntil, actor } = options;
  const changes: IdentityChange[] = [];
  type Unstamped = IdentityChange extends infer C
    ? C extends IdentityChange
      ? Omit<C, 'change_id' | 'at' | 'actor'>
      : never
    : never;
  const change = (c: Unstamped): void => {
    changes.push({ ...c, change_id: ulid(), at: validFrom, actor } as IdentityChange);
  };
  const enrol = (deviceId: string, info: Awaited<ReturnType<typeof issue>>['info'], assignment: Assignment) => {
    change({ kind: 'enrolled', device_id: deviceId, certificate: info });
    change({ kind: 'assigned', device_id: deviceId, ...assignment, from: validFrom });
  };

  const credentials = new Map<string, DeviceCredentials>();
  const devices = fleetFor(options.simulation).devices;
  // Issued a chunk at a time: webcrypto's key generation and signing run on the thread pool (about twice as fast).
  const prefix = options.devicePrefix ?? '';
  for (let i = 0; i < devices.length; i += ISSUE_CHUNK) {
    const chunk = devices.slice(i, i + ISSUE_CHUNK);
    const issued = await Promise.all(chunk.map((d) => issue(pki, prefix + d.id, algorithm, validFrom, validUntil)));
    chunk.forEach((d, j) => {
      const { credentials: c, info } = issued[j] as Awaited<ReturnType<typeof issue>>;
      credentials.set(d.id, c);
      enrol(c.deviceId, info, { patient_ref: d.patientRef, site_id: d.siteId, consent_context: d.consent });
    });
  }
  if (options.faults === false) return { credentials, faults: {}, changes };

  const first = devices[0];
  if (!first) throw new Error('a fleet needs at least one device');
  const assignment = (suffix: string): Assignment => ({
    patient_ref: `psn-v1-${suffix.padStart(16, '0')}`,
    site_id: first.siteId,
    consent_context: first.consent,
  });
  const ids = Object.fromEntries(Object.entries(FAULT_DEVICE_IDS).map(([k, id]) => [k, prefix + id])) as Record<
    keyof typeof FAULT_DEVICE_IDS,
    string
  >;
  const faults: { -readonly [K in keyof FaultDevices]: DeviceCredentials } = {};

  // Expired everywhere: it ended a month before the earliest time anything is checked at.
  const expired = await issue(pki, ids.expired, algorithm, validFrom - 60 * DAY_MS, validFrom - 31 * DAY_MS);
  enrol(ids.expired, expired.info, assignment('e0'));
  faults.expired = expired.credentials;

  for (const [name, status] of [
    ['revoked', 'revoked'],
    ['suspended', 'suspended'],
  ] as const) {
    const issued = await issue(pki, ids[name], algorithm, validFrom, validUntil);
    enrol(ids[name], issued.info, assignment(name === 'revoked' ? 'e1' : 'e2'));
    change({ kind: 'status', device_id: ids[name], status, reason: 'simulated fault device' });
    faults[name] = issued.credentials;
  }
  if (options.foreignPki) {
    faults.foreign = (await issue(options.foreignPki, ids.foreign, algorithm, validFrom, validUntil)).credentials;
  }
  faults.unknown = (await issue(pki, ids.unknown, algorithm, validFrom, validUntil)).credentials;
  const flood = await issue(pki, ids.flood, algorithm, validFrom, validUntil);
  enrol(ids.flood, flood.info, assignment('f1'));
  faults.flood = flood.credentials;
  return { credentials, faults, changes };
}

interface Assignment {
  readonly patient_ref: string;
  readonly site_id: string;
  readonly consent_context: string;
}
