/**
 * The real CLI (`node bin/vigil.js pki|devices ...`) in the embedded mode (--control-dir: the file log, no services):
 * the `--json` contract of enroll, the refusals and their exit code 2, and what list shows after each operation.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
let dir: string;

function vigil(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/vigil.js', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function devices(...args: string[]) {
  return vigil('devices', ...args, '--pki-dir', join(dir, 'pki'), '--control-dir', join(dir, 'control'));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-devices-cli-'));
  const init = vigil('pki', 'init', '--dir', join(dir, 'pki'), '--json');
  expect(init.status, init.stderr).toBe(0);
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
