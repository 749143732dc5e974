/**
 * Routing decisions: deterministic buckets, patients stable across events and percent changes, the canary's share
 * within tolerance, and the order and flags of the decisions.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ModelRoute } from '../runtime/models.ts';
import { parseCohort } from './cohort.ts';
import {
  COHORT_BUCKETS,
  cohortBucket,
  compareVersions,
  compileRoute,
  decideRoutes,
  type RoutingKey,
  staticRollouts,
} from './routing.ts';

const key = (patient: string, over: Partial<RoutingKey> = {}): RoutingKey => ({
  patient_ref: patient,
  site_id: 'site-01',
  firmware_version: '2.1.0',
  patient_subgroup: null,
  device_batch: null,
  ...over,
});

function route(percent: number, cohortExpr = '', shadows: string[] = []): ModelRoute {
  return {
    model: 'det',
    live: { version: '1.0.0', rollout_id: 'R-LIVE', approved: true },
    canary: {
      version: '1.1.0',
      rollout_id: 'R-CANARY',
      approved: true,
      percent,
      cohort: parseCohort(cohortExpr),
      cohort_expr: cohortExpr,
    },
    shadows: shadows.map((version) => ({ version, rollout_id: `R-${version}`, approved: false })),
  };
}

const clinicalVersion = (r: ModelRoute, patient: string, over: Partial<RoutingKey> = {}) =>
  decideRoutes('det', r, null, key(patient, over)).find((d) => d.clinical)?.version;

describe('cohortBucket', () => {
  it('is the first 4 bytes of sha256(model|patient) big-endian mod 10000', () => {
    const digest = createHash('sha256').update('det|pt-42').digest();
    expect(cohortBucket('det', 'pt-42')).toBe(digest.readUInt32BE(0) % 10_000);
    expect(cohortBucket('det', 'pt-42')).toBe(cohortBucket('det', 'pt-42'));
  });

  it('differs between models for most patients (one patient is not in every canary)', () => {
    let same = 0;
    for (let i = 0; i < 1000; i++) if (cohortBucket('a', `p${i}`) === cohortBucket('b', `p${i}`)) same++;
    expect(same).toBeLessThan(5);
  });
});

describe('decideRoutes', () => {
  it('runs the pipeline default live when the registry has no route for the model', () => {
    const [decision, ...rest] = decideRoutes('news2', undefined, '1.0.0', key('pt-1'));
    expect(rest).toEqual([]);
    expect(decision).toEqual({
      model: 'news2',
      version: '1.0.0',
      mode: 'live',
      clinical: true,
      rollout_id: null,
      source: 'pipeline',
      cohort_bucket: cohortBucket('news2', 'pt-1'),
      in_canary: false,
    });
    expect(decideRoutes('news2', undefined, null, key('pt-1'))).toEqual([]);
  });

  it('ignores the pipeline default once the registry has a live version', () => {
    const decisions = decideRoutes('det', route(0), '0.9.0', key('pt-1'));
    expect(decisions.map((d) => [d.version, d.source])).toEqual([['1.0.0', 'registry']]);
  });

  it('keeps the pipeline default clinical while the registry routes only a shadow (a shadow never stops scoring)', () => {
    const shadowOnly: ModelRoute = {
      model: 'det',
      live: null,
      canary: null,
      shadows: [{ version: '1.1.0', rollout_id: 'R-S', approved: false }],
    };
    const decisions = decideRoutes('det', shadowOnly, '1.0.0', key('pt-1'));
    expect(decisions.map((d) => [d.version, d.mode, d.clinical, d.source, d.rollout_id])).toEqual([
      ['1.0.0', 'live', true, 'pipeline', null],
      ['1.1.0', 'shadow', false, 'registry', 'R-S'],
    ]);
    // A shadow of the version already running clinically does not run a second time.
    const same = { ...shadowOnly, shadows: [{ version: '1.0.0', rollout_id: 'R-S', approved: false }] };
    expect(decideRoutes('det', same, '1.0.0', key('pt-1')).map((d) => d.mode)).toEqual(['live']);
  });

  it('puts clinical first, then every shadow by version, never clinical', () => {
    const decisions = decideRoutes('det', route(0, '', ['1.10.0', '1.2.0']), null, key('pt-1'));
    expect(decisions.map((d) => [d.version, d.mode, d.clinical, d.rollout_id, d.source])).toEqual([
      ['1.0.0', 'live', true, 'R-LIVE', 'registry'],
      ['1.2.0', 'shadow', false, 'R-1.2.0', 'registry'],
      ['1.10.0', 'shadow', false, 'R-1.10.0', 'registry'],
    ]);
  });

  it('keeps a patient on one version across events', () => {
    const r = route(30);
    for (let p = 0; p < 200; p++) {
      const first = clinicalVersion(r, `pt-${p}`);
      for (let e = 0; e < 5; e++) expect(clinicalVersion(r, `pt-${p}`)).toBe(first);
    }
  });

  it('keeps the first 10% in the canary when the percent goes from 10 to 20', () => {
    let moved = 0;
    let joined = 0;
    for (let p = 0; p < 5000; p++) {
      const at10 = clinicalVersion(route(10), `pt-${p}`);
      const at20 = clinicalVersion(route(20), `pt-${p}`);
      if (at10 === '1.1.0' && at20 !== '1.1.0') moved++;
      if (at10 !== '1.1.0' && at20 === '1.1.0') joined++;
    }
    expect(moved).toBe(0);
    expect(joined).toBeGreaterThan(300);
  });

  it('sends 10% of 20,000 synthetic patients of the cohort to the canary, within tolerance, and no one outside it', () => {
    const r = route(10, 'site=site-01');
    let inCanary = 0;
    let outsideSite = 0;
    for (let p = 0; p < 20_000; p++) {
      const decisions = decideRoutes('det', r, null, key(`pt-v1-${p.toString(16)}`));
      if (decisions[0]!.mode === 'canary') {
        inCanary++;
        expect(decisions[0]!.in_canary).toBe(true);
        expect(decisions[0]!.rollout_id).toBe('R-CANARY');
      }
      if (clinicalVersion(r, `pt-v1-${p.toString(16)}`, { site_id: 'site-02' }) === '1.1.0') outsideSite++;
    }
    // Binomial(20000, 0.1): sd = 42.4; 4 sd either side.
    expect(Math.abs(inCanary / 20_000 - 0.1)).toBeLessThan(0.0085);
    expect(outsideSite).toBe(0);
  });

  it('takes exactly percent * 100 buckets (1.1% is buckets 0..109, whatever the float product says)', () => {
    const patients = Array.from({ length: 40_000 }, (_, p) => `pt-${p}`);
    const at110 = patients.find((p) => cohortBucket('det', p) === 110)!;
    const at109 = patients.find((p) => cohortBucket('det', p) === 109)!;
    expect(1.1 * 100).toBeGreaterThan(110); // the float trap this guards against
    expect(clinicalVersion(route(1.1), at110)).toBe('1.0.0');
    expect(clinicalVersion(route(1.1), at109)).toBe('1.1.0');
  });

  it('routes everyone to the canary at 100% of an everyone cohort', () => {
    for (let p = 0; p < 100; p++) expect(clinicalVersion(route(100), `pt-${p}`)).toBe('1.1.0');
  });
});

describe('compileRoute', () => {
  const shadow = (version: string) => ({ version, rollout_id: `R-${version}`, approved: false });
  const routes: readonly (readonly [string, ModelRoute | undefined, string | null])[] = [
    ['no route', undefined, '1.0.0'],
    ['no route, no default', undefined, null],
    ['live only', { model: 'det', live: route(0).live, canary: null, shadows: [] }, '0.9.0'],
    ['canary 10% of everyone + shadows out of order', route(10, '', ['1.10.0', '1.2.0']), null],
    ['canary 30% of a site, a shadow of the canary version', route(30, 'site=site-01', ['1.1.0', '2.0.0']), '0.9.0'],
    ['canary 0%', route(0, '', ['2.0.0']), null],
    ['canary 100% of firmware 2.1.0', route(100, 'firmware=2.1.0', ['2.0.0']), null],
    ['canary 1.1%', route(1.1), null],
    // Outside 0..100 (the registry refuses these; routing still decides like decideRoutes, and does not throw).
    ['canary -5%', route(-5, '', ['2.0.0']), null],
    ['canary 150%', route(150, '', ['2.0.0']), null],
    [
      'no live: canary + a shadow of the default',
      { ...route(20, 'site=site-02'), live: null, shadows: [shadow('1.0.0')] },
      '1.0.0',
    ],
    ['no live, no default', { ...route(20), live: null }, null],
    ['shadow only', { model: 'det', live: null, canary: null, shadows: [shadow('1.1.0'), shadow('1.0.0')] }, '1.0.0'],
  ];

  it.each(routes)('decides exactly what decideRoutes decides: %s', (_name, r, pipelineDefault) => {
    const compiled = compileRoute('det', r, pipelineDefault);
    for (let p = 0; p < 3000; p++) {
      const k = key(`pt-${p}`, {
        site_id: p % 3 === 0 ? 'site-02' : 'site-01',
        firmware_version: p % 5 === 0 ? '2.0.9' : '2.1.0',
      });
      // Twice: the second call is served from what the first remembered.
      expect(compiled(k)).toEqual(decideRoutes('det', r, pipelineDefault, k));
      expect(compiled(k)).toEqual(decideRoutes('det', r, pipelineDefault, k));
    }
  });

  it('returns one frozen array for every event of a bucket and canary state', () => {
    const compiled = compileRoute('det', route(10, 'site=site-01', ['2.0.0']), null);
    const first = compiled(key('pt-1'));
    expect(compiled(key('pt-1'))).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(first.every((d) => Object.isFrozen(d))).toBe(true);
    // In the canary's share at site-01; the same patient at another site is outside the cohort: another array.
    const inShare = Array.from({ length: 2000 }, (_, p) => `pt-${p}`).find((p) => cohortBucket('det', p) < 1000)!;
    const inside = compiled(key(inShare));
    const outside = compiled(key(inShare, { site_id: 'site-02' }));
    expect(inside[0]!.mode).toBe('canary');
    expect(outside[0]!.mode).toBe('live');
    expect(outside).not.toBe(inside);
    expect(compiled(key(inShare))).toBe(inside);
  });

  it('stays exact past its memory of patients (buckets of forgotten patients are hashed again)', () => {
    const compiled = compileRoute('det', route(50), null);
    const count = 140_000; // more than two generations of 65,536
    for (let p = 0; p < count; p++) compiled(key(`pt-${p}`));
    for (const p of [0, 1, 65_535, 65_536, 131_071, count - 1]) {
      const decisions = compiled(key(`pt-${p}`));
      expect(decisions[0]!.cohort_bucket).toBe(cohortBucket('det', `pt-${p}`));
      expect(decisions).toEqual(decideRoutes('det', route(50), null, key(`pt-${p}`)));
    }
    expect(COHORT_BUCKETS).toBe(10_000);
  });
});

describe('compareVersions', () => {
  it('orders numeric parts numerically', () => {
    expect(['1.10.0', '1.9.0', '1.0.0', '1.0', '1.0.0-rc1'].sort(compareVersions)).toEqual([
      '1.0',
      '1.0.0',
      '1.0.0-rc1',
      '1.9.0',
      '1.10.0',
    ]);
  });
});

describe('staticRollouts', () => {
  it('serves the table given, or one that routes nothing', () => {
    expect(staticRollouts().current().route('news2')).toBeUndefined();
    expect(staticRollouts().current().revision).toBe(0);
    const table = { revision: 7, route: () => route(10) };
    expect(staticRollouts(table).current()).toBe(table);
  });
});
