/**
 * The identity service's operations (`vigil devices ...`): each reads the control log to caught-up, checks the change
 * against the device's current state, and appends it, stamped with its actor and time. The log is the only state:
 * two operators racing on one device both append, and the fold (identity/registry.ts) decides deterministically.
 *
 * Decisions:
 * - A device id is enrolled once, ever: enrolling an id already on the log is refused, revoked ones included, so
 *   evidence signed under an id always means one device. A device that needs a new key is rotated, not re-enrolled.
 * - `revoked` is final: suspend, resume, rotate and assign of a revoked device are refused.
 * - Rotation leaves the previous certificate valid until its own expiry (devices switch over without a gap); revoke
 *   one certificate with `revokeCertificate` when its key is compromised.
 * - An assignment runs from `from` until the next assignment's `from`; `from` may be in the past (a late correction)
 *   or the future (a scheduled admission).
 * - Every change is an audit entry when the context has a `ControlAudit` (the CLI always gives one): the audit log
 *   must answer `ready()` before anything is changed (an unreachable audit log refuses the change), and each change
 *   is recorded after it is durable on the identity log. An audit append that still fails after its retries fails
 *   the operation (exit 1) with a message naming the change key; `vigil evidence export` lists every identity change
 *   without its audit entry, so a gap is never silent.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monotonicFactory } from 'ulid';
import type { Clock } from '../runtime/clock.ts';
import { VigilError } from '../runtime/errors.ts';
import { openDeviceDirectory } from './directory.ts';
import { assertDeviceId, issueDeviceCertificate, type PkiFiles, writeSecret } from './pki.ts';
import { changeKey } from './records.ts';
import { type DeviceRegistry, newestUsableCertificate } from './registry.ts';
import type { AssignmentInfo, ControlLog, DeviceIdentity, IdentityChange, SigningAlgorithm } from './types.ts';

export interface IdentityContext {
  readonly log: ControlLog<IdentityChange>;
  /** Needed by enrol and rotate only (they issue certificates). */
  readonly pki?: Pick<PkiFiles, 'caCertPem' | 'caKeyPem'>;
  /** Who makes the changes (a principal name). */
  readonly actor: string;
  readonly clock: Clock;
  /** Where each change is recorded as an audit entry; absent only for library callers (tests, bench, simulator). */
  readonly audit?: ControlAudit;
}

/**
 * The audit port the identity service receives (so identity/ imports no adapter). The CLI wires the real audit log
 * (cli/commands/control-audit.ts); tests pass a recorder.
 */
export interface ControlAudit {
  /** Resolves when an entry can be appended now (the store reachable, the hashing key loaded); rejects otherwise. */
  ready(): Promise<void>;
  /** Appends one entry; resolves once it is durable. */
  record(change: ControlChange): Promise<void>;
}

/** A control-plane change as the audit log receives it: `details` is digested under the hashing key, never stored. */
export interface ControlChange {
  readonly actor: string;
  /** Dotted, e.g. `device.enroll`. */
  readonly action: string;
  /** A reference without PHI: `device:<device_id>/<change_id>` (the identity record's key). */
  readonly target: string;
  /** Digested under the audit hashing key; omitted when the target says all (a schema fingerprint). */
  readonly details?: unknown;
  readonly at: number;
}

/** The audit action of an identity change. */
export function auditActionOf(change: IdentityChange): string {
  switch (change.kind) {
    case 'enrolled':
      return 'device.enroll';
    case 'certificate_added':
      return 'device.rotate';
    case 'certificate_revoked':
      return 'device.certificate_revoke';
    case 'assigned':
      return 'device.assign';
    case 'status':
      return change.status === 'revoked'
        ? 'device.revoke'
        : change.status === 'suspended'
          ? 'device.suspend'
          : 'device.resume';
  }
}

/** The audit target of an identity change: its record key, so the evidence export pairs the two logs. */
export const auditTargetOf = (change: IdentityChange): string => `device:${changeKey(change)}`;

export interface IssuedFiles {
  readonly device_id: string;
  readonly fingerprint: string;
  readonly not_after: number;
  readonly certPath: string;
  readonly keyPath: string;
}

type ChangeBody = IdentityChange extends infer C
  ? C extends IdentityChange
    ? Omit<C, 'change_id' | 'device_id' | 'at' | 'actor'>
    : never
  : never;

const nextChangeId = monotonicFactory();

/** The registry as the log holds it now: every change appended before this call, applied. */
export async function currentRegistry(log: ControlLog<IdentityChange>): Promise<DeviceRegistry> {
  const directory = await openDeviceDirectory(log);
  try {
    await directory.caughtUp;
    return directory.registry;
  } finally {
    await directory.close();
  }
}

async function append(
  ctx: IdentityContext,
  deviceId: string,
  body: ChangeBody,
  reason: string | undefined,
): Promise<IdentityChange> {
  const now = ctx.clock.now();
  const change = {
    change_id: nextChangeId(now),
    device_id: deviceId,
    at: now,
    actor: ctx.actor,
    ...(reason === undefined ? {} : { reason }),
    ...body,
  } as IdentityChange;
  await ctx.log.append(changeKey(change), change);
  if (ctx.audit) {
    // The change is durable: record it. The change itself (patient_ref included) goes in only as a keyed digest.
    const entry = {
      actor: ctx.actor,
      action: auditActionOf(change),
      target: auditTargetOf(change),
      details: change,
      at: now,
    };
    await ctx.audit.record(entry).catch((error: unknown) => {
      throw new VigilError(
        'AUDIT_UNAVAILABLE',
        `${changeKey(change)} is durable on the identity log but its audit entry could not be appended ` +
          `(${error instanceof Error ? error.message : String(error)}): the evidence export lists it as unaudited`,
        { cause: error },
      );
    });
  }
  return change;
}

/** Refuses to change anything while the audit log cannot take an entry. */
async function auditReady(ctx: IdentityContext): Promise<void> {
  await ctx.audit?.ready();
}

function requirePki(ctx: IdentityContext): Pick<PkiFiles, 'caCertPem' | 'caKeyPem'> {
  if (!ctx.pki) throw new VigilError('CONFIG_INVALID', 'this operation issues a certificate: load the PKI first');
  return ctx.pki;
}

/** The device, known and not revoked; CONFIG_INVALID with what to do otherwise. */
function liveDevice(registry: DeviceRegistry, deviceId: string, action: string): DeviceIdentity {
  assertDeviceId(deviceId);
  const device = registry.device(deviceId);
  if (device === undefined) {
    throw new VigilError('CONFIG_INVALID', `cannot ${action} ${deviceId}: no such device (enrol it first)`);
  }
  if (device.status === 'revoked') {
    throw new VigilError('CONFIG_INVALID', `cannot ${action} ${deviceId}: the device is revoked (revocation is final)`);
  }
  return device;
}

function writeCredentials(outDir: string, deviceId: string, certPem: string, keyPem: string) {
  mkdirSync(outDir, { recursive: true });
  const certPath = join(outDir, `${deviceId}.crt`);
  const keyPath = join(outDir, `${deviceId}.key`);
  writeFileSync(certPath, certPem.endsWith('\n') ? certPem : `${certPem}\n`);
  writeSecret(keyPath, keyPem);
  return { certPath, keyPath };
}

export interface AssignmentRequest {
  readonly patient_ref: string;
  readonly site_id: string;
  readonly consent_context: string;
}

/**
 * Enrols a new device: issues its certificate and key into `outDir` (`<id>.crt`, `<id>.key` mode 0600), appends
 * `enrolled`, and `assigned` from now when an assignment is given.
 *
 * @example
 * const issued = await enrollDevice(ctx, 'wearable-0001', { outDir: 'fleet', assignment: { patient_ref: 'p-1', site_id: 's', consent_context: 'c' } });
 */
export async function enrollDevice(
  ctx: IdentityContext,
  deviceId: string,
  options: {
    outDir: string;
    days?: number;
    algorithm?: SigningAlgorithm;
    assignment?: AssignmentRequest;
    reason?: string;
  },
): Promise<IssuedFiles> {
  assertDeviceId(deviceId);
  const pki = requirePki(ctx);
  await auditReady(ctx);
  const registry = await currentRegistry(ctx.log);
  const existing = registry.device(deviceId);
  if (existing !== undefined) {
    throw new VigilError(
      'CONFIG_INVALID',
      `${deviceId} is already enrolled (status ${existing.status}); device ids are never reused: rotate it for a new certificate`,
    );
  }
  const issued = await issueDeviceCertificate(pki, deviceId, {
    now: ctx.clock.now(),
    ...(options.days === undefined ? {} : { days: options.days }),
    ...(options.algorithm === undefined ? {} : { algorithm: options.algorithm }),
  });
  // Files first: an append that fails leaves unused files, never an enrolled device without its key.
  const paths = writeCredentials(options.outDir, deviceId, issued.certPem, issued.keyPem);
  await append(ctx, deviceId, { kind: 'enrolled', certificate: issued.info }, options.reason);
  if (options.assignment) {
    await append(ctx, deviceId, { kind: 'assigned', ...options.assignment, from: ctx.clock.now() }, options.reason);
  }
  return { device_id: deviceId, fingerprint: issued.info.fingerprint, not_after: issued.info.not_after, ...paths };
}

/**
 * Issues a new certificate and key for an enrolled device (`certificate_added`); its previous certificates stay valid
 * until they expire or are revoked. The algorithm defaults to the one of its newest certificate.
 *
 * @example
 * const issued = await rotateDevice(ctx, 'wearable-0001', { outDir: 'fleet' });
 */
export async function rotateDevice(
  ctx: IdentityContext,
  deviceId: string,
  options: { outDir: string; days?: number; algorithm?: SigningAlgorithm; reason?: string },
): Promise<IssuedFiles> {
  const pki = requirePki(ctx);
  await auditReady(ctx);
  const device = liveDevice(await currentRegistry(ctx.log), deviceId, 'rotate');
  const algorithm = options.algorithm ?? newestUsableCertificate(device)?.algorithm ?? 'ES256';
  const issued = await issueDeviceCertificate(pki, deviceId, {
    now: ctx.clock.now(),
    algorithm,
    ...(options.days === undefined ? {} : { days: options.days }),
  });
  const paths = writeCredentials(options.outDir, deviceId, issued.certPem, issued.keyPem);
  await append(ctx, deviceId, { kind: 'certificate_added', certificate: issued.info }, options.reason);
  return { device_id: deviceId, fingerprint: issued.info.fingerprint, not_after: issued.info.not_after, ...paths };
}

export type StatusAction = 'revoke' | 'suspend' | 'resume';

const STATUS_OF = { revoke: 'revoked', suspend: 'suspended', resume: 'active' } as const;

/**
 * Revokes (final), suspends or resumes a device. Returns the change appended, or undefined when the device is
 * already in that status (nothing to record).
 *
 * @example
 * await setDeviceStatus(ctx, 'wearable-0001', 'suspend', { reason: 'reported lost' });
 */
export async function setDeviceStatus(
  ctx: IdentityContext,
  deviceId: string,
  action: StatusAction,
  options: { reason?: string } = {},
): Promise<IdentityChange | undefined> {
  await auditReady(ctx);
  const device = liveDevice(await currentRegistry(ctx.log), deviceId, action);
  const status = STATUS_OF[action];
  if (device.status === status) return undefined;
  return append(ctx, deviceId, { kind: 'status', status }, options.reason);
}

/**
 * Revokes one certificate of a device (a compromised key) while the device and its other certificates stay trusted.
 *
 * @example
 * await revokeCertificate(ctx, 'wearable-0001', fingerprint, { reason: 'key leaked' });
 */
export async function revokeCertificate(
  ctx: IdentityContext,
  deviceId: string,
  fingerprint: string,
  options: { reason?: string } = {},
): Promise<IdentityChange | undefined> {
  await auditReady(ctx);
  const device = liveDevice(await currentRegistry(ctx.log), deviceId, 'revoke a certificate of');
  const wanted = fingerprint.replaceAll(':', '').toLowerCase();
  const certificate = device.certificates.find((c) => c.fingerprint === wanted);
  if (!certificate) throw new VigilError('CONFIG_INVALID', `${deviceId} has no certificate ${wanted}`);
  if (certificate.revoked) return undefined;
  return append(ctx, deviceId, { kind: 'certificate_revoked', fingerprint: wanted }, options.reason);
}

/**
 * Assigns a device to a patient pseudonym, site and consent context from `from` (default now) until its next
 * assignment.
 *
 * @example
 * await assignDevice(ctx, 'wearable-0001', { patient_ref: 'p-2', site_id: 'ward-7', consent_context: 'rpm' }, { from: parseTime('2026-06-01T08:00:00Z') });
 */
export async function assignDevice(
  ctx: IdentityContext,
  deviceId: string,
  assignment: AssignmentRequest,
  options: { from?: number; reason?: string } = {},
): Promise<IdentityChange> {
  await auditReady(ctx);
  liveDevice(await currentRegistry(ctx.log), deviceId, 'assign');
  for (const [name, value] of Object.entries(assignment)) {
    if (value.trim() === '') throw new VigilError('CONFIG_INVALID', `assignment ${name} must not be empty`);
  }
  const from = options.from ?? ctx.clock.now();
  return append(ctx, deviceId, { kind: 'assigned', ...assignment, from }, options.reason);
}

/** An instant given as ISO 8601 (with a zone) or epoch milliseconds. */
export function parseTime(text: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  if (/^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:?\d{2})$/.test(trimmed)) {
    const ms = Date.parse(trimmed);
    if (Number.isFinite(ms)) return ms;
  }
  throw new VigilError(
    'CONFIG_INVALID',
    `not a time: expected ISO 8601 with a zone (2026-06-01T08:00:00Z) or epoch milliseconds`,
  );
}

export interface DeviceListing {
  readonly device_id: string;
  readonly status: DeviceIdentity['status'];
  readonly certificates: readonly { fingerprint: string; not_after: string; revoked: boolean; algorithm: string }[];
  readonly assignment: (Omit<AssignmentInfo, 'from'> & { from: string }) | null;
}

/** Every device with its certificates and the assignment in force at `now`: the operator's view. */
export async function listDevices(ctx: Pick<IdentityContext, 'log' | 'clock'>): Promise<DeviceListing[]> {
  const registry = await currentRegistry(ctx.log);
  const now = ctx.clock.now();
  return registry.list().map((device) => {
    const assignment = registry.assignmentAt(device.device_id, now);
    return {
      device_id: device.device_id,
      status: device.status,
      certificates: device.certificates.map((c) => ({
        fingerprint: c.fingerprint,
        not_after: new Date(c.not_after).toISOString(),
        revoked: c.revoked,
        algorithm: c.algorithm,
      })),
      assignment: assignment ? { ...assignment, from: new Date(assignment.from).toISOString() } : null,
    };
  });
}
