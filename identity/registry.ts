/**
 * The device registry: the fold of the device-identity control records in log order (Flink's broadcast state: every
 * gateway and worker holds the whole registry and applies each change as it arrives).
 *
 * Folding rules, chosen so that replaying the log anywhere gives the same registry:
 * - a change_id applied twice is applied once (a producer retry, a re-read log);
 * - `enrolled` creates the device, `active`, with its first certificate; an `enrolled` for a device id already known
 *   (or with a certificate another device holds: one certificate names one device) is ignored (`vigil devices enroll` refuses it: a device id, even revoked, is never reused, so evidence signed under
 *   it stays unambiguous);
 * - any other change for a device never enrolled is ignored (nothing to attach it to);
 * - `revoked` is final: a later status change is ignored;
 * - assignments are kept ordered by `from`; the one in force at t is the latest whose `from` <= t (for equal `from`,
 *   the one applied last).
 */
import type {
  AssignmentInfo,
  DeviceCertificateInfo,
  DeviceDirectory,
  DeviceIdentity,
  IdentityChange,
} from './types.ts';

type Certificate = DeviceIdentity['certificates'][number];

/** What `apply` did with a change. */
export type ApplyOutcome = 'applied' | 'duplicate' | 'ignored';

export type TrustWithdrawnListener = (deviceId: string, fingerprints: readonly string[]) => void;

export class DeviceRegistry implements DeviceDirectory {
  readonly #devices = new Map<string, DeviceIdentity>();
  readonly #byFingerprint = new Map<string, string>();
  readonly #applied = new Set<string>();
  readonly #trustListeners = new Set<TrustWithdrawnListener>();
  readonly #appliedListeners = new Set<(change: IdentityChange) => void>();

  /** Folds one change into the registry. Listeners run after the registry reflects the change. */
  apply(change: IdentityChange): ApplyOutcome {
    if (this.#applied.has(change.change_id)) return 'duplicate';
    const before = this.#devices.get(change.device_id);
    const after = this.#fold(before, change);
    if (after === undefined) return 'ignored';
    this.#applied.add(change.change_id);
    this.#devices.set(change.device_id, after);
    for (const certificate of after.certificates) this.#byFingerprint.set(certificate.fingerprint, after.device_id);
    for (const listener of this.#appliedListeners) listener(change);
    const withdrawn = this.#withdrawnBy(change, after);
    if (withdrawn.length > 0) for (const listener of this.#trustListeners) listener(change.device_id, withdrawn);
    return 'applied';
  }

  #fold(device: DeviceIdentity | undefined, change: IdentityChange): DeviceIdentity | undefined {
    if (change.kind === 'enrolled') {
      if (device !== undefined || this.#byFingerprint.has(change.certificate.fingerprint)) return undefined;
      return {
        device_id: change.device_id,
        status: 'active',
        certificates: [withRevoked(change.certificate, false)],
        assignments: [],
      };
    }
    if (device === undefined) return undefined;
    switch (change.kind) {
      case 'certificate_added':
        if (device.certificates.some((c) => c.fingerprint === change.certificate.fingerprint)) return undefined;
        if (this.#byFingerprint.has(change.certificate.fingerprint)) return undefined; // another device's certificate
        return { ...device, certificates: [...device.certificates, withRevoked(change.certificate, false)] };
      case 'certificate_revoked': {
        const target = device.certificates.find((c) => c.fingerprint === change.fingerprint);
        if (target === undefined || target.revoked) return undefined;
        return {
          ...device,
          certificates: device.certificates.map((c) => (c === target ? { ...c, revoked: true } : c)),
        };
      }
      case 'status':
        if (device.status === 'revoked' || device.status === change.status) return undefined;
        return { ...device, status: change.status };
      case 'assigned': {
        const assignment: AssignmentInfo = {
          patient_ref: change.patient_ref,
          site_id: change.site_id,
          consent_context: change.consent_context,
          from: change.from,
        };
        const at = device.assignments.findIndex((a) => a.from > assignment.from);
        const assignments =
          at === -1
            ? [...device.assignments, assignment]
            : [...device.assignments.slice(0, at), assignment, ...device.assignments.slice(at)];
        return { ...device, assignments };
      }
    }
  }

  #withdrawnBy(change: IdentityChange, device: DeviceIdentity): readonly string[] {
    if (change.kind === 'status' && change.status !== 'active') return device.certificates.map((c) => c.fingerprint);
    if (change.kind === 'certificate_revoked') return [change.fingerprint];
    return [];
  }

  device(deviceId: string): DeviceIdentity | undefined {
    return this.#devices.get(deviceId);
  }

  byFingerprint(
    fingerprint: string,
  ): { readonly device: DeviceIdentity; readonly certificate: Certificate } | undefined {
    const deviceId = this.#byFingerprint.get(fingerprint);
    if (deviceId === undefined) return undefined;
    const device = this.#devices.get(deviceId);
    const certificate = device?.certificates.find((c) => c.fingerprint === fingerprint);
    return device && certificate ? { device, certificate } : undefined;
  }

  assignmentAt(deviceId: string, at: number): AssignmentInfo | undefined {
    const assignments = this.#devices.get(deviceId)?.assignments ?? [];
    let current: AssignmentInfo | undefined;
    for (const a of assignments) {
      if (a.from > at) break;
      current = a;
    }
    return current;
  }

  onTrustWithdrawn(listener: TrustWithdrawnListener): () => void {
    this.#trustListeners.add(listener);
    return () => this.#trustListeners.delete(listener);
  }

  /** Called after every applied change (not duplicates, not ignored ones): for metrics. */
  onApplied(listener: (change: IdentityChange) => void): () => void {
    this.#appliedListeners.add(listener);
    return () => this.#appliedListeners.delete(listener);
  }

  /** Every device, in enrolment order. */
  list(): readonly DeviceIdentity[] {
    return [...this.#devices.values()];
  }

  /**
   * Devices not revoked whose newest unrevoked certificate (the one expiring last) expires before `now + withinMs`,
   * already expired included (a device left with only expired certificates still needs an operator: rotate or revoke
   * it). A device whose certificates are all revoked is not counted: it is out of service until rotated.
   */
  expiringWithin(withinMs: number, now: number): readonly DeviceIdentity[] {
    return this.list().filter((device) => {
      if (device.status === 'revoked') return false;
      const newest = newestUsableCertificate(device);
      return newest !== undefined && newest.not_after <= now + withinMs;
    });
  }

  /** How many distinct changes have been applied. */
  get appliedCount(): number {
    return this.#applied.size;
  }
}

/** The device's unrevoked certificate that expires last, if any. */
export function newestUsableCertificate(device: DeviceIdentity): Certificate | undefined {
  let newest: Certificate | undefined;
  for (const c of device.certificates) {
    if (!c.revoked && (newest === undefined || c.not_after > newest.not_after)) newest = c;
  }
  return newest;
}

/** Whether a device may connect and sign at `now` with this certificate (status active, certificate valid and kept). */
export function isTrusted(device: DeviceIdentity, certificate: Certificate, now: number): boolean {
  return (
    device.status === 'active' && !certificate.revoked && certificate.not_before <= now && now <= certificate.not_after
  );
}

function withRevoked(info: DeviceCertificateInfo, revoked: boolean): Certificate {
  return { ...info, revoked };
}
