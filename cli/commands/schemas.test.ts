/**
 * The real CLI (`node bin/vigil.js schemas check`) on fixture trees: a breaking change fails with exit 1 and a message
 * naming subject, versions and avsc's resolver error; a compatible change passes.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const trees = 'test/fixtures/schemas';

function vigil(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/vigil.js', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('vigil schemas check', () => {
  it('passes on a compatible change (field added with a default, field removed, int -> long, enum grown)', () => {
    const r = vigil('schemas', 'check', '--dir', `${trees}/compatible`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('ok    reading (test.readings-value): v2 against v1 (BACKWARD_TRANSITIVE)');
    expect(r.stdout).toContain('golden fixtures: 4 of 4 decode with the newest reader');
  });

  it('fails on breaking changes, naming subject, versions and the resolver error of each', () => {
    const r = vigil('schemas', 'check', '--dir', `${trees}/breaking`);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(
      'v2 cannot read data written with v1: field Reading.value: cannot read "int" as "string"',
    );
    expect(r.stdout).toContain(
      'v2 cannot read data written with v1: no matching field for default-less vigil.test.Reading.ward_id',
    );
    expect(r.stdout).toMatch(/FAIL {2}enum-symbol-removed .*\n.*field Status\.state: .*symbols degraded removed/);
    expect(r.stderr).toContain('schemas check failed: 3 problem(s)');
  });

  it('checks transitively: v3 reads v2 but not v1, and that fails', () => {
    const r = vigil('schemas', 'check', '--dir', `${trees}/breaking-transitive`, '--json');
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      'counter (test.counters-value): v3 cannot read data written with v1: no matching field for default-less vigil.test.Counter.window_ms',
    ]);
    expect(r.stderr).toContain('v3 cannot read data written with v1');
  });

  it("passes on this repo's schemas, with current generated types and decoding golden fixtures", () => {
    const r = vigil('schemas', 'check', '--json');
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.types.status).toBe('current');
    expect(report.fixtures.checked).toBeGreaterThan(0);
    expect(report.fixtures.problems).toEqual([]);
  });

  it('exits 2 on a tree it cannot read', () => {
    const r = vigil('schemas', 'check', '--dir', `${trees}/does-not-exist`);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/CONFIG_INVALID: .*subjects\.json/);
  });
});
