/**
 * The real CLI (`node bin/vigil.js pki|devices ...`) in the embedded mode (--control-dir: the file log, no services):
 * the `--json` contract of enroll, the refusals and their exit code 2, and what list shows after each operation.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
let dir: string;

function vigil(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/vigil.js', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const auditFlags = () => ['--audit-dir', join(dir, 'audit'), '--audit-hash-key', join(dir, 'keys', 'hash.key')];

function devices(...args: string[]) {
  return vigil(
    'devices',
    ...args,
    '--pki-dir',
    join(dir, 'pki'),
    '--control-dir',
    join(dir, 'control'),
    ...auditFlags(),
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-devices-cli-'));
  const init = vigil('pki', 'init', '--dir', join(dir, 'pki'), '--json');
  expect(init.status, init.stderr).toBe(0);
  const keys = vigil('audit', 'keygen', '--key-dir', join(dir, 'keys'));
  expect(keys.status, keys.stderr).toBe(0);
}, 60_000);

describe('vigil pki init', () => {
  it('refuses to replace the CA without --force (exit 2)', () => {
    const again = vigil('pki', 'init', '--dir', join(dir, 'pki'));
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('--force');
  });
});

describe('vigil devices', () => {
  it('enroll --json prints exactly device_id, fingerprint, not_after (ISO 8601) and writes the credentials', () => {
    const out = join(dir, 'fleet');
    const r = devices(
      'enroll',
      'cli-1',
      '--out',
      out,
      '--json',
      '--site',
      's1',
      '--patient-ref',
      'p1',
      '--consent',
      'c1',
    );
    expect(r.status, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(Object.keys(printed)).toEqual(['device_id', 'fingerprint', 'not_after']);
    const cert = new X509Certificate(readFileSync(join(out, 'cli-1.crt')));
    expect(printed.device_id).toBe('cli-1');
    expect(printed.fingerprint).toBe(cert.fingerprint256.replaceAll(':', '').toLowerCase());
    expect(printed.not_after).toBe(new Date(cert.validTo).toISOString());
    expect(statSync(join(out, 'cli-1.key')).mode & 0o777).toBe(0o600);
    const lines = readFileSync(join(dir, 'control', 'device-identity.jsonl'), 'utf8')
      .trimEnd()
      .split('\n');
    expect(lines.map((l) => JSON.parse(l).value.kind)).toEqual(['enrolled', 'assigned']);
  }, 60_000);

  it('refuses with exit 2: a partial assignment, a second enrolment, an unknown device, a bad id', () => {
    const out = join(dir, 'fleet');
    expect(devices('enroll', 'cli-2', '--out', out, '--site', 's1').stderr).toContain(
      '--site, --patient-ref and --consent',
    );
    devices('enroll', 'cli-2', '--out', out);
    const twice = devices('enroll', 'cli-2', '--out', out);
    expect(twice.status).toBe(2);
    expect(twice.stderr).toContain('already enrolled');
    const unknown = devices('suspend', 'nobody');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('enrol it first');
    expect(devices('enroll', '../escape', '--out', out).status).toBe(2);
  }, 60_000);

  it('suspend, assign --from, rotate, revoke show in list --json', () => {
    const out = join(dir, 'fleet2');
    devices('enroll', 'cli-3', '--out', out, '--algorithm', 'EdDSA');
    expect(devices('suspend', 'cli-3', '--reason', 'lost', '--actor', 'alice').status).toBe(0);
    expect(
      devices(
        'assign',
        'cli-3',
        '--patient-ref',
        'p7',
        '--site',
        's2',
        '--consent',
        'c',
        '--from',
        '2026-01-01T00:00:00Z',
      ).status,
    ).toBe(0);
    expect(devices('resume', 'cli-3').status).toBe(0);
    const rotated = JSON.parse(devices('rotate', 'cli-3', '--out', out, '--json').stdout);
    let listed = JSON.parse(devices('list', '--json').stdout).find(
      (d: { device_id: string }) => d.device_id === 'cli-3',
    );
    expect(listed.status).toBe('active');
    expect(listed.assignment).toMatchObject({ patient_ref: 'p7', site_id: 's2', from: '2026-01-01T00:00:00.000Z' });
    expect(listed.certificates.map((c: { algorithm: string }) => c.algorithm)).toEqual(['EdDSA', 'EdDSA']);
    expect(listed.certificates[1].fingerprint).toBe(rotated.fingerprint);
    expect(devices('revoke', 'cli-3').status).toBe(0);
    const resume = devices('resume', 'cli-3');
    expect(resume.status).toBe(2);
    expect(resume.stderr).toContain('revocation is final');
    listed = JSON.parse(devices('list', '--json').stdout).find((d: { device_id: string }) => d.device_id === 'cli-3');
    expect(listed.status).toBe('revoked');
    const actors = readFileSync(join(dir, 'control', 'device-identity.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).value)
      .filter((v) => v.device_id === 'cli-3' && v.kind === 'status' && v.status === 'suspended');
    expect(actors).toMatchObject([{ actor: 'alice', reason: 'lost' }]);
  }, 120_000);
});

describe('vigil devices: every change is an audit entry', () => {
  const PATIENT = 'p-secret-4711';
  const control = () => join(dir, 'control-audited');
  const audited = (...args: string[]) =>
    vigil(
      'devices',
      ...args,
      '--pki-dir',
      join(dir, 'pki'),
      '--control-dir',
      control(),
      '--actor',
      'ops-1',
      ...auditFlags(),
    );
  const auditFile = () => join(dir, 'audit', 'audit.jsonl');
  const entries = () =>
    readFileSync(auditFile(), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.kind === 'entry')
      .map((r) => r.entry);

  it('enrol, assign, revoke: entries with actor, role, action and the change key as target; audit verify accepts them; the pseudonym is never stored', () => {
    const before = existsSync(auditFile()) ? entries().length : 0;
    const out = join(dir, 'fleet-audited');
    const enrol = ['enroll', 'aud-1', '--out', out, '--site', 'ward-9', '--patient-ref', PATIENT, '--consent', 'rpm'];
    expect(audited(...enrol).status).toBe(0);
    expect(
      audited('assign', 'aud-1', '--patient-ref', `${PATIENT}-b`, '--site', 'ward-9', '--consent', 'rpm').status,
    ).toBe(0);
    expect(audited('revoke', 'aud-1', '--reason', 'decommissioned').status).toBe(0);

    const changes = readFileSync(join(control(), 'device-identity.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).value);
    const mine = entries().slice(before);
    expect(mine.map((e) => e.action)).toEqual(['device.enroll', 'device.assign', 'device.assign', 'device.revoke']);
    expect(mine.map((e) => e.target)).toEqual(changes.map((c) => `device:aud-1/${c.change_id}`));
    expect(mine.every((e) => e.actor === 'ops-1' && e.role === 'operator' && e.purpose === 'change')).toBe(true);
    expect(mine.every((e) => /^[0-9a-f]{64}$/.test(e.details_sha256))).toBe(true);
    expect(readFileSync(auditFile(), 'utf8')).not.toContain(PATIENT);

    const keyFlags = ['--dir', join(dir, 'audit')];
    expect(vigil('audit', 'checkpoint', ...keyFlags, '--key', join(dir, 'keys', 'checkpoint.key')).status).toBe(0);
    const verify = vigil('audit', 'verify', '--json', ...keyFlags, '--pub', join(dir, 'keys', 'checkpoint.pub'));
    expect(verify.status, verify.stdout).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, entries: before + 4, unsigned_tail: 0 });
  }, 120_000);

  it('an audit log that cannot take an entry refuses the change: nothing is appended to the identity log', () => {
    const r = vigil(
      'devices',
      'enroll',
      'aud-2',
      '--out',
      join(dir, 'fleet-audited'),
      '--pki-dir',
      join(dir, 'pki'),
      '--control-dir',
      control(),
      '--audit-dir',
      join(dir, 'audit'),
      '--audit-hash-key',
      join(dir, 'keys', 'missing.key'),
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('audit hashing key');
    expect(readFileSync(join(control(), 'device-identity.jsonl'), 'utf8')).not.toContain('aud-2');
  }, 60_000);
});
