import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const dir = join(root, 'infra', 'prometheus');

function promtool(...args: string[]) {
  return spawnSync('promtool', args, { cwd: dir, encoding: 'utf8' });
}

describe('on-call alert rules (promtool, Debian prometheus package)', () => {
  it('are valid Prometheus rules', () => {
    const result = promtool('check', 'rules', 'rules.yml');
    expect(result.error).toBeUndefined();
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('fire and stay quiet exactly as the rule tests expect', () => {
    const result = promtool('test', 'rules', 'rules.test.yml');
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('never route clinical alerts: no rule reads a clinical metric or topic', () => {
    const result = promtool('check', 'rules', '--lint=all', 'rules.yml');
    expect(result.status).toBe(0);
    const text = spawnSync('cat', ['rules.yml'], { cwd: dir, encoding: 'utf8' }).stdout;
    const exprs = text.split('\n').filter((l) => /^\s+expr:/.test(l) || /^\s{10}/.test(l));
    expect(exprs.join('\n')).not.toMatch(/clinical|news2|risk_band/i);
  });

  it('link runbooks that exist, and page or ticket only', () => {
    const text = readFileSync(join(dir, 'rules.yml'), 'utf8');
    const runbooks = [...text.matchAll(/^\s+runbook:\s*(\S+)\s*$/gm)].map((m) => m[1] as string);
    expect(runbooks.length).toBeGreaterThan(0);
    for (const runbook of runbooks) expect(existsSync(join(root, runbook)), runbook).toBe(true);
    const severities = [...text.matchAll(/severity:\s*(\w+)/g)].map((m) => m[1]);
    expect(severities.length).toBe([...text.matchAll(/^\s+- alert:/gm)].length);
    for (const severity of severities) expect(['page', 'ticket']).toContain(severity);
  });
});
