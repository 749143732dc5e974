import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(import.meta.dirname, '..', '..', 'infra', 'prometheus');

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
});
