import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FileControlLog } from '../adapters/file/control-log.ts';
import { ManualClock } from '../runtime/clock.ts';
import { fingerprintOf, initPki, type PkiFiles } from './pki.ts';
import { parseIdentityChange } from './records.ts';
import {
  assignDevice,
  type ControlAudit,
  type ControlChange,
  currentRegistry,
  enrollDevice,
  type IdentityContext,
  listDevices,
  parseTime,
  revokeCertificate,
  rotateDevice,
  setDeviceStatus,
} from './service.ts';
import type { IdentityChange } from './types.ts';

const DAY = 86_400_000;
let pki: PkiFiles;

beforeAll(async () => {
  pki = await initPki(mkdtempSync(join(tmpdir(), 'vigil-pki-')), { now: Date.UTC(2026, 0, 1) });
});

function context(): IdentityContext & { clock: ManualClock; out: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-identity-'));
  const path = join(dir, 'device-identity.jsonl');
  const log = new FileControlLog<IdentityChange>(path, { parse: parseIdentityChange });
  return { log, pki, actor: 'nurse-admin', clock: new ManualClock(Date.UTC(2026, 0, 2)), out: join(dir, 'out'), path };
}

function records(path: string): IdentityChange[] {
  return readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => parseIdentityChange(JSON.parse(line).value));
}

describe('identity service', () => {
  it('enrol writes the certificate and a 0600 key, appends enrolled and the assignment, stamped with actor and time', async () => {
    const ctx = context();
    const issued = await enrollDevice(ctx, 'w-1', {
      outDir: ctx.out,
      assignment: { patient_ref: 'p-1', site_id: 'ward-7', consent_context: 'rpm-2026' },
    });
    const pem = readFileSync(join(ctx.out, 'w-1.crt'), 'utf8');
    expect(fingerprintOf(pem)).toBe(issued.fingerprint);
    expect(issued.not_after).toBe(ctx.clock.now() + 30 * DAY);
    expect(statSync(join(ctx.out, 'w-1.key')).mode & 0o777).toBe(0o600);
    const log = records(ctx.path);
    expect(log.map((c) => c.kind)).toEqual(['enrolled', 'assigned']);
    expect(log.every((c) => c.actor === 'nurse-admin' && c.at === ctx.clock.now() && c.device_id === 'w-1')).toBe(true);
    const registry = await currentRegistry(ctx.log);
    expect(registry.assignmentAt('w-1', ctx.clock.now())?.patient_ref).toBe('p-1');
    expect(new X509Certificate(pem).checkIssued(new X509Certificate(pki.caCertPem))).toBe(true);
  });

  it('refuses to enrol an id twice, even once revoked', async () => {
    const ctx = context();
    await enrollDevice(ctx, 'w-1', { outDir: ctx.out });
    await expect(enrollDevice(ctx, 'w-1', { outDir: ctx.out })).rejects.toThrow(/already enrolled/);
    await setDeviceStatus(ctx, 'w-1', 'revoke');
    await expect(enrollDevice(ctx, 'w-1', { outDir: ctx.out })).rejects.toThrow(/never reused/);
    expect(records(ctx.path)).toHaveLength(2);
  });

  it('operations on an unknown device say to enrol it first', async () => {
    const ctx = context();
    await expect(setDeviceStatus(ctx, 'ghost', 'suspend')).rejects.toThrow(/enrol it first/);
    await expect(rotateDevice(ctx, 'ghost', { outDir: ctx.out })).rejects.toThrow(/enrol it first/);
    await expect(
      assignDevice(ctx, 'ghost', { patient_ref: 'p', site_id: 's', consent_context: 'c' }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('rotate adds a certificate with the same algorithm; the old one stays valid; one certificate can be revoked', async () => {
    const ctx = context();
    const first = await enrollDevice(ctx, 'w-1', { outDir: ctx.out, algorithm: 'EdDSA' });
    ctx.clock.advance(20 * DAY);
    const second = await rotateDevice(ctx, 'w-1', { outDir: ctx.out });
    let device = (await currentRegistry(ctx.log)).device('w-1');
    expect(device?.certificates.map((c) => [c.fingerprint, c.revoked, c.algorithm])).toEqual([
      [first.fingerprint, false, 'EdDSA'],
      [second.fingerprint, false, 'EdDSA'],
    ]);
    expect(fingerprintOf(readFileSync(join(ctx.out, 'w-1.crt'), 'utf8'))).toBe(second.fingerprint);
    expect(await revokeCertificate(ctx, 'w-1', first.fingerprint, { reason: 'key leaked' })).toMatchObject({
      kind: 'certificate_revoked',
      reason: 'key leaked',
    });
    expect(await revokeCertificate(ctx, 'w-1', first.fingerprint)).toBeUndefined();
    device = (await currentRegistry(ctx.log)).device('w-1');
    expect(device?.certificates.map((c) => c.revoked)).toEqual([true, false]);
    expect(device?.status).toBe('active');
  });

  it('suspend, resume, revoke; revoked is final; a status already in force records nothing', async () => {
    const ctx = context();
    await enrollDevice(ctx, 'w-1', { outDir: ctx.out });
    expect(await setDeviceStatus(ctx, 'w-1', 'suspend', { reason: 'lost' })).toMatchObject({ status: 'suspended' });
    expect(await setDeviceStatus(ctx, 'w-1', 'suspend')).toBeUndefined();
    expect(await setDeviceStatus(ctx, 'w-1', 'resume')).toMatchObject({ status: 'active' });
    expect(await setDeviceStatus(ctx, 'w-1', 'revoke')).toMatchObject({ status: 'revoked' });
    await expect(setDeviceStatus(ctx, 'w-1', 'resume')).rejects.toThrow(/revocation is final/);
    await expect(rotateDevice(ctx, 'w-1', { outDir: ctx.out })).rejects.toThrow(/revoked/);
    expect(records(ctx.path).map((c) => (c.kind === 'status' ? c.status : c.kind))).toEqual([
      'enrolled',
      'suspended',
      'active',
      'revoked',
    ]);
  });

  it('assign from T: before T the old patient, from T the new one, and list shows the one in force now', async () => {
    const ctx = context();
    await enrollDevice(ctx, 'w-1', {
      outDir: ctx.out,
      assignment: { patient_ref: 'p-old', site_id: 'ward-7', consent_context: 'rpm' },
    });
    const t = ctx.clock.now() + 3_600_000;
    await assignDevice(
      ctx,
      'w-1',
      { patient_ref: 'p-new', site_id: 'ward-8', consent_context: 'rpm' },
      { from: parseTime(new Date(t).toISOString()) },
    );
    const registry = await currentRegistry(ctx.log);
    expect(registry.assignmentAt('w-1', t - 1)?.patient_ref).toBe('p-old');
    expect(registry.assignmentAt('w-1', t)?.patient_ref).toBe('p-new');
    expect((await listDevices(ctx))[0]?.assignment?.patient_ref).toBe('p-old');
    ctx.clock.set(t);
    const [listed] = await listDevices(ctx);
    expect(listed).toMatchObject({
      device_id: 'w-1',
      status: 'active',
      assignment: { patient_ref: 'p-new', site_id: 'ward-8', from: new Date(t).toISOString() },
    });
    expect(listed?.certificates).toHaveLength(1);
  });

  it('parseTime takes ISO 8601 with a zone or epoch ms, nothing else', () => {
    expect(parseTime('2026-06-01T08:00:00Z')).toBe(Date.UTC(2026, 5, 1, 8));
    expect(parseTime('2026-06-01T10:00:00+02:00')).toBe(Date.UTC(2026, 5, 1, 8));
    expect(parseTime('1780300800000')).toBe(1_780_300_800_000);
    for (const bad of ['2026-06-01', 'tomorrow', '2026-06-01T08:00:00', '']) expect(() => parseTime(bad)).toThrow();
  });
});

describe('identity service: the ControlAudit port', () => {
  function recorder(options: { ready?: Error; record?: Error } = {}) {
    const recorded: ControlChange[] = [];
    const audit: ControlAudit = {
      ready: async () => {
        if (options.ready) throw options.ready;
      },
      record: async (change) => {
        if (options.record) throw options.record;
        recorded.push(change);
      },
    };
    return { audit, recorded };
  }

  it('records each change after it is durable: action, actor, the change key as target, the change as details', async () => {
    const { audit, recorded } = recorder();
    const ctx = { ...context(), audit };
    await enrollDevice(ctx, 'w-1', {
      outDir: ctx.out,
      assignment: { patient_ref: 'p-1', site_id: 'ward-7', consent_context: 'rpm' },
    });
    await setDeviceStatus(ctx, 'w-1', 'suspend');
    await setDeviceStatus(ctx, 'w-1', 'suspend'); // already suspended: nothing changed, nothing recorded
    await setDeviceStatus(ctx, 'w-1', 'resume');
    const log = records(ctx.path);
    expect(recorded.map((r) => r.action)).toEqual([
      'device.enroll',
      'device.assign',
      'device.suspend',
      'device.resume',
    ]);
    expect(recorded.map((r) => r.target)).toEqual(log.map((c) => `device:w-1/${c.change_id}`));
    expect(recorded.every((r) => r.actor === 'nurse-admin' && r.at === ctx.clock.now())).toBe(true);
    expect(recorded[1]?.details).toEqual(log[1]);
  });

  it('an audit log that is not ready refuses the change before anything is appended', async () => {
    const { audit } = recorder({ ready: new Error('audit store unreachable') });
    const ctx = { ...context(), audit };
    await expect(enrollDevice(ctx, 'w-1', { outDir: ctx.out })).rejects.toThrow(/unreachable/);
    expect((await currentRegistry(ctx.log)).device('w-1')).toBeUndefined();
  });

  it('a failed audit append after the change fails the operation, naming the durable change', async () => {
    const { audit } = recorder({ record: new Error('disk full') });
    const ctx = { ...context(), audit };
    await expect(enrollDevice(ctx, 'w-1', { outDir: ctx.out })).rejects.toThrow(
      /w-1\/[0-9A-Z]{26} is durable on the identity log but its audit entry could not be appended \(disk full\)/,
    );
  });
});
