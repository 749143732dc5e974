import { ulid } from 'ulid';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../runtime/clock.ts';
import { changeKey, parseIdentityChange } from './records.ts';
import { DeviceRegistry, isTrusted } from './registry.ts';
import type { DeviceCertificateInfo, IdentityChange } from './types.ts';

const DAY = 86_400_000;

function certificate(n: number, notBefore: number, days = 30): DeviceCertificateInfo {
  return {
    fingerprint: n.toString(16).padStart(64, '0'),
    pem: `-----BEGIN CERTIFICATE-----\nfixture ${n}\n-----END CERTIFICATE-----\n`,
    not_before: notBefore,
    not_after: notBefore + days * DAY,
    algorithm: 'ES256',
  };
}

/** Builds changes stamped by a manual clock, the way identity/service.ts stamps them. */
function changes(clock: ManualClock) {
  const base = (deviceId: string) => ({
    change_id: ulid(clock.now()),
    device_id: deviceId,
    at: clock.now(),
    actor: 'ops',
  });
  return {
    enrolled: (deviceId: string, cert: DeviceCertificateInfo): IdentityChange => ({
      ...base(deviceId),
      kind: 'enrolled',
      certificate: cert,
    }),
    added: (deviceId: string, cert: DeviceCertificateInfo): IdentityChange => ({
      ...base(deviceId),
      kind: 'certificate_added',
      certificate: cert,
    }),
    certRevoked: (deviceId: string, fingerprint: string): IdentityChange => ({
      ...base(deviceId),
      kind: 'certificate_revoked',
      fingerprint,
    }),
    status: (deviceId: string, status: 'active' | 'suspended' | 'revoked'): IdentityChange => ({
      ...base(deviceId),
      kind: 'status',
      status,
    }),
    assigned: (deviceId: string, patientRef: string, from: number): IdentityChange => ({
      ...base(deviceId),
      kind: 'assigned',
      patient_ref: patientRef,
      site_id: 'site-a',
      consent_context: 'rpm-2026',
      from,
    }),
  };
}

describe('DeviceRegistry', () => {
  it('enrols a device active with its certificate, found by fingerprint', () => {
    const clock = new ManualClock();
    const c = changes(clock);
    const registry = new DeviceRegistry();
    const cert = certificate(1, clock.now());
    expect(registry.apply(c.enrolled('d1', cert))).toBe('applied');
    const device = registry.device('d1');
    expect(device?.status).toBe('active');
    expect(device?.certificates).toEqual([{ ...cert, revoked: false }]);
    expect(registry.byFingerprint(cert.fingerprint)?.device.device_id).toBe('d1');
    expect(registry.byFingerprint('f'.repeat(64))).toBeUndefined();
    expect(isTrusted(device!, device!.certificates[0]!, clock.now())).toBe(true);
    expect(isTrusted(device!, device!.certificates[0]!, clock.now() + 31 * DAY)).toBe(false);
  });

  it('applies a change_id once, however often it is read', () => {
    const clock = new ManualClock();
    const c = changes(clock);
    const registry = new DeviceRegistry();
    const enrolled = c.enrolled('d1', certificate(1, clock.now()));
    const assigned = c.assigned('d1', 'p-1', clock.now());
    expect(registry.apply(enrolled)).toBe('applied');
    expect(registry.apply(assigned)).toBe('applied');
    expect(registry.apply(assigned)).toBe('duplicate');
    expect(registry.apply(enrolled)).toBe('duplicate');
    expect(registry.device('d1')?.assignments).toHaveLength(1);
    expect(registry.appliedCount).toBe(2);
  });

  it('ignores changes for a device never enrolled and a second enrolment of a known id', () => {
    const clock = new ManualClock();
    const c = changes(clock);
    const registry = new DeviceRegistry();
    expect(registry.apply(c.status('ghost', 'suspended'))).toBe('ignored');
    expect(registry.device('ghost')).toBeUndefined();
    registry.apply(c.enrolled('d1', certificate(1, clock.now())));
    expect(registry.apply(c.enrolled('d1', certificate(2, clock.now())))).toBe('ignored');
    expect(registry.byFingerprint(certificate(2, 0).fingerprint)).toBeUndefined();
    // One certificate names one device: another device cannot enrol or add it.
    expect(registry.apply(c.enrolled('d2', certificate(1, clock.now())))).toBe('ignored');
    registry.apply(c.enrolled('d3', certificate(3, clock.now())));
    expect(registry.apply(c.added('d3', certificate(1, clock.now())))).toBe('ignored');
    expect(registry.byFingerprint(certificate(1, 0).fingerprint)?.device.device_id).toBe('d1');
  });

  it('rotation adds a certificate; the old one stays until revoked; revoking one withdraws only it', () => {
    const clock = new ManualClock();
    const c = changes(clock);
    const registry = new DeviceRegistry();
    const withdrawn: [string, readonly string[]][] = [];
    registry.onTrustWithdrawn((id, fps) => withdrawn.push([id, fps]));
    const old = certificate(1, clock.now());
    registry.apply(c.enrolled('d1', old));
    clock.advance(20 * DAY);
    const fresh = certificate(2, clock.now());
    registry.apply(c.added('d1', fresh));
    expect(registry.device('d1')?.certificates.map((x) => [x.fingerprint, x.revoked])).toEqual([
      [old.fingerprint, false],
      [fresh.fingerprint, false],
    ]);
    expect(withdrawn).toEqual([]);
    registry.apply(c.certRevoked('d1', old.fingerprint));
    expect(registry.byFingerprint(old.fingerprint)?.certificate.revoked).toBe(true);
    expect(registry.byFingerprint(fresh.fingerprint)?.certificate.revoked).toBe(false);
    expect(withdrawn).toEqual([['d1', [old.fingerprint]]]);
  });

  it('suspend and revoke withdraw every certificate; resume reinstates; revoked is final', () => {
    const clock = new ManualClock();
    const c = changes(clock);
    const registry = new DeviceRegistry();
    const withdrawn: string[][] = [];
    const stop = registry.onTrustWithdrawn((_id, fps) => withdrawn.push([...fps]));
    registry.apply(c.enrolled('d1', certificate(1, clock.now())));
    registry.apply(c.added('d1', certificate(2, clock.now())));
    const all = [certificate(1, 0).fingerprint, certificate(2, 0).fingerprint];
    registry.apply(c.status('d1', 'suspended'));
    expect(registry.device('d1')?.status).toBe('suspended');
    expect(withdrawn).toEqual([all]);
    expect(registry.apply(c.status('d1', 'active'))).toBe('applied');
    expect(registry.device('d1')?.status).toBe('active');
    expect(withdrawn).toHaveLength(1); // resuming withdraws nothing
    registry.apply(c.status('d1', 'revoked'));
    expect(withdrawn).toEqual([all, all]);
    expect(registry.apply(c.status('d1', 'active'))).toBe('ignored');
    expect(registry.device('d1')?.status).toBe('revoked');
    stop();
    registry.apply(c.certRevoked('d1', all[0]!));
    expect(withdrawn).toHaveLength(2); // unsubscribed
  });

  it('reassignment mid-stream: before T the old patient, from T the new one', () => {
    const clock = new ManualClock();
    const c = changes(clock);
    const registry = new DeviceRegistry();
    const t0 = clock.now();
    registry.apply(c.enrolled('d1', certificate(1, t0)));
    expect(registry.assignmentAt('d1', t0)).toBeUndefined();
    registry.apply(c.assigned('d1', 'p-old', t0));
    clock.advance(3_600_000);
    const t = clock.now();
    registry.apply(c.assigned('d1', 'p-new', t));
    expect(registry.assignmentAt('d1', t0 - 1)).toBeUndefined();
    expect(registry.assignmentAt('d1', t0)?.patient_ref).toBe('p-old');
    expect(registry.assignmentAt('d1', t - 1)?.patient_ref).toBe('p-old');
    expect(registry.assignmentAt('d1', t)?.patient_ref).toBe('p-new');
    expect(registry.assignmentAt('d1', t + DAY)?.patient_ref).toBe('p-new');
    // A correction recorded later but effective earlier slots in by its `from`.
    clock.advance(60_000);
    registry.apply(c.assigned('d1', 'p-between', t0 + 1_800_000));
    expect(registry.assignmentAt('d1', t0 + 1_800_000)?.patient_ref).toBe('p-between');
    expect(registry.assignmentAt('d1', t)?.patient_ref).toBe('p-new');
    expect(registry.device('d1')?.assignments.map((a) => a.patient_ref)).toEqual(['p-old', 'p-between', 'p-new']);
  });

  it('expiringWithin: not revoked, newest unrevoked certificate expiring within the window', () => {
    const clock = new ManualClock();
    const c = changes(clock);
    const registry = new DeviceRegistry();
    const start = clock.now();
    registry.apply(c.enrolled('soon', certificate(1, start, 30)));
    registry.apply(c.enrolled('rotated', certificate(2, start, 30)));
    registry.apply(c.enrolled('revoked', certificate(3, start, 30)));
    registry.apply(c.enrolled('suspended', certificate(4, start, 30)));
    clock.advance(20 * DAY);
    registry.apply(c.added('rotated', certificate(5, clock.now(), 30)));
    registry.apply(c.status('revoked', 'revoked'));
    registry.apply(c.status('suspended', 'suspended'));
    const ids = (now: number) => registry.expiringWithin(14 * DAY, now).map((d) => d.device_id);
    expect(ids(start)).toEqual([]);
    expect(ids(clock.now())).toEqual(['soon', 'suspended']); // 10 days left; rotated has 30
    clock.advance(11 * DAY); // past the first certificates' expiry
    expect(ids(clock.now())).toEqual(['soon', 'suspended']);
    registry.apply(c.certRevoked('rotated', certificate(5, 0).fingerprint)); // its new one revoked: old one expired
    expect(ids(clock.now())).toEqual(['soon', 'rotated', 'suspended']);
  });

  it('reports applied changes to onApplied listeners (metrics), not duplicates', () => {
    const clock = new ManualClock();
    const c = changes(clock);
    const registry = new DeviceRegistry();
    const kinds: string[] = [];
    registry.onApplied((change) => kinds.push(change.kind));
    const enrolled = c.enrolled('d1', certificate(1, clock.now()));
    registry.apply(enrolled);
    registry.apply(enrolled);
    registry.apply(c.status('d1', 'suspended'));
    expect(kinds).toEqual(['enrolled', 'status']);
  });
});

describe('identity records', () => {
  const clock = new ManualClock();
  const c = changes(clock);

  it('parses every kind it writes and keys a change by device and change id', () => {
    const all = [
      c.enrolled('d1', certificate(1, clock.now())),
      c.added('d1', certificate(2, clock.now())),
      c.certRevoked('d1', certificate(1, 0).fingerprint),
      c.status('d1', 'suspended'),
      { ...c.assigned('d1', 'p-1', clock.now()), reason: 'admitted' },
    ];
    for (const change of all) expect(parseIdentityChange(JSON.parse(JSON.stringify(change)))).toEqual(change);
    expect(changeKey(all[0]!)).toBe(`d1/${all[0]!.change_id}`);
  });

  it('refuses unknown kinds, unknown keys, bad ids and bad fingerprints', () => {
    const good = c.status('d1', 'suspended');
    for (const bad of [
      { ...good, kind: 'deleted' },
      { ...good, extra: 1 },
      { ...good, device_id: 'a/b' },
      { ...good, change_id: 'not-a-ulid' },
      { ...good, status: 'gone' },
      { ...c.certRevoked('d1', 'ABC'), fingerprint: 'ABC' },
      { ...good, actor: '' },
      null,
      'text',
    ]) {
      expect(() => parseIdentityChange(bad)).toThrow();
    }
  });
});
