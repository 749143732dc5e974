import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './proc.ts';
import { type BenchResults, markdown, RUN_NAMES, revision } from './results.ts';

const latest = JSON.parse(readFileSync(join(REPO, 'bench', 'results', 'latest.json'), 'utf8')) as BenchResults;

describe('benchmark results', () => {
  it('the committed latest.json keeps the keys outside checks read (issue 4)', () => {
    for (const name of RUN_NAMES) {
      const run = latest.runs[name];
      for (const key of ['events_per_s', 'cpu_us_per_event', 'peak_rss_mb'] as const) {
        expect(run[key], `${name}.${key}`).toBeGreaterThan(0);
      }
      expect(run).toHaveProperty('p50_ms');
      expect(run).toHaveProperty('p99_ms');
    }
    expect(latest.ratios.vigil_over_ceiling).toBeGreaterThan(0);
    expect(latest.ratios.vigil_over_naive).toBeGreaterThan(0);
    expect(latest.machine.cores).toBeGreaterThan(0);
    expect(latest.revision).toMatch(/^([0-9a-f]{12}(-dirty)?|unknown)$/);
  });

  it('the ratios are the ones the run figures give', () => {
    const { ceiling, vigil, naive } = latest.runs;
    expect(latest.ratios.vigil_over_ceiling).toBeCloseTo(vigil.events_per_s / ceiling.events_per_s, 2);
    expect(latest.ratios.vigil_over_naive).toBeCloseTo(vigil.events_per_s / naive.events_per_s, 0);
  });

  it('the markdown names the machine, the versions and the commit measured, and prints the ratios', () => {
    const text = markdown(latest);
    expect(text).toContain(`code ${latest.revision}`);
    expect(text).toContain(`${latest.machine.cores} cores`);
    expect(text).toMatch(/vigil \/ ceiling = \*\*[\d.]+\*\*/);
    for (const name of RUN_NAMES) expect(text).toMatch(new RegExp(`^\\| ${name} \\|`, 'm'));
  });

  it('revision() names this checkout (or says unknown outside one)', () => {
    const inCheckout = existsSync(join(REPO, '.git'));
    expect(revision()).toMatch(inCheckout ? /^[0-9a-f]{12}(-dirty)?$/ : /^unknown$/);
  });
});
