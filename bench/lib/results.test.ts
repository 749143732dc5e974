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

  it('the markdown shows the alert run (runs.alerts) when it ran: from receipt and from observed_at', () => {
    const alerts = {
      ...latest.runs.vigil,
      events_per_s: 2_990,
      p50_ms: 26.8,
      p99_ms: 71.5,
      latency: { target_rate: 3_000, achieved_rate: 2_987, events: 59_914, max_ms: 134 },
      latency_note: 'receipt -> commit of the alert record',
      observed_p50_ms: 117.9,
      observed_p99_ms: 301.9,
      alert_records: 986,
    };
    const text = markdown({ ...latest, runs: { ...latest.runs, alerts } });
    expect(text).toMatch(/^\| alerts \| 2,990 \|.*\| 26\.8 \| 71\.5 \|/m);
    expect(text).toContain('observed_at p50 117.9 ms, p99 301.9 ms');
    const { ceiling, vigil, naive, embedded } = latest.runs;
    expect(markdown({ ...latest, runs: { ceiling, vigil, naive, embedded } })).not.toMatch(/^\| alerts \|/m);
  });

  it('revision() names this checkout (or says unknown outside one)', () => {
    const inCheckout = existsSync(join(REPO, '.git'));
    expect(revision()).toMatch(inCheckout ? /^[0-9a-f]{12}(-dirty)?$/ : /^unknown$/);
  });
});
