/** Cohort expressions: the grammar, its canonical form (round trip) and its refusals. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VigilError } from '../runtime/errors.ts';
import type { Cohort } from '../runtime/models.ts';
import { formatCohort, matchesCohort, parseCohort } from './cohort.ts';
import type { RoutingKey } from './routing.ts';

const key = (over: Partial<RoutingKey> = {}): RoutingKey => ({
  patient_ref: 'pt-1',
  site_id: 'site-01',
  firmware_version: '2.1.0',
  patient_subgroup: 'age:65-79',
  device_batch: 'B7',
  ...over,
});

describe('parseCohort', () => {
  it('parses every dimension, several values, any case of "and"', () => {
    expect(parseCohort('site=site-01,site-02 and firmware=2.1.0 AND subgroup=age:65-79 and batch=B7')).toEqual({
      sites: ['site-01', 'site-02'],
      firmware: ['2.1.0'],
      subgroups: ['age:65-79'],
      device_batches: ['B7'],
    });
  });

  it('reads the empty expression as everyone', () => {
    expect(parseCohort('')).toEqual({});
    expect(parseCohort('   ')).toEqual({});
  });

  it('round-trips: format(parse(x)) is canonical and parse(format(c)) is c', () => {
    const cohorts: Cohort[] = [
      {},
      { sites: ['a'] },
      { firmware: ['2.1.0', '2.1.1'], device_batches: ['B7'] },
      { sites: ['s1', 's2'], firmware: ['f'], subgroups: ['age:80+'], device_batches: ['b'] },
    ];
    for (const cohort of cohorts) expect(parseCohort(formatCohort(cohort))).toEqual(cohort);
    expect(formatCohort(parseCohort('batch=B7 and  site = s1 , s2'))).toBe('site=s1,s2 and batch=B7');
  });

  it('round-trips any cohort of well-formed values (property)', () => {
    const value = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9:._+-]{0,11}$/);
    const values = fc.uniqueArray(value, { minLength: 1, maxLength: 4 });
    const cohort = fc.record(
      { sites: values, firmware: values, subgroups: values, device_batches: values },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(cohort, (c) => {
        expect(parseCohort(formatCohort(c))).toEqual(c);
      }),
    );
  });

  it.each([
    ['site', 'is not <dimension>=<values>'],
    ['ward=7', 'unknown dimension "ward"'],
    ['site=a and site=b', 'given twice'],
    ['site=', 'empty or malformed value'],
    ['site=a,,b', 'empty or malformed value'],
    ['site=a,a', 'lists a value twice'],
    ['site=a or site=b', 'malformed value'],
  ])('refuses %j: %s', (expr, why) => {
    expect(() => parseCohort(expr)).toThrow(VigilError);
    expect(() => parseCohort(expr)).toThrow(why);
  });
});

describe('matchesCohort', () => {
  it('matches everyone on the empty cohort', () => {
    expect(matchesCohort({}, key({ patient_subgroup: null, device_batch: null }))).toBe(true);
  });

  it('needs every named dimension to hold', () => {
    const cohort = parseCohort('site=site-01,site-02 and firmware=2.1.0');
    expect(matchesCohort(cohort, key())).toBe(true);
    expect(matchesCohort(cohort, key({ site_id: 'site-02' }))).toBe(true);
    expect(matchesCohort(cohort, key({ site_id: 'site-03' }))).toBe(false);
    expect(matchesCohort(cohort, key({ firmware_version: '2.0.0' }))).toBe(false);
  });

  it('does not match a subgroup or batch the event does not carry', () => {
    expect(matchesCohort(parseCohort('subgroup=age:65-79'), key({ patient_subgroup: null }))).toBe(false);
    expect(matchesCohort(parseCohort('batch=B7'), key({ device_batch: null }))).toBe(false);
    expect(matchesCohort(parseCohort('batch=B7'), key())).toBe(true);
  });
});
