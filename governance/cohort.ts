/**
 * Canary cohorts as people write them: `site=site-01,site-02 and firmware=2.1.0 and subgroup=age:65-79 and batch=B7`.
 * Each clause names one dimension (`site`, `firmware`, `subgroup`, `batch`) once, with one or more comma-separated
 * values; an event matches when every named dimension holds one of its values. The empty expression is everyone.
 *
 * `formatCohort` writes the canonical form (dimensions in the order above, values as given), so
 * `parseCohort(formatCohort(c))` equals `c` and the text stored on a rollout record reads back to its cohort.
 */
import { VigilError } from '../runtime/errors.ts';
import type { Cohort } from '../runtime/models.ts';
import type { RoutingKey } from './routing.ts';

/** Dimension names of the grammar, in canonical order, and the Cohort field each fills. */
const DIMENSIONS = [
  ['site', 'sites'],
  ['firmware', 'firmware'],
  ['subgroup', 'subgroups'],
  ['batch', 'device_batches'],
] as const satisfies readonly (readonly [string, keyof Cohort])[];

type Dimension = (typeof DIMENSIONS)[number][0];

/** A value: no whitespace, no comma, no '=' (those are the grammar's). */
const VALUE = /^[^\s,=]+$/;

function refuse(expr: string, why: string): never {
  throw new VigilError(
    'CONFIG_INVALID',
    `cohort ${JSON.stringify(expr)}: ${why}; write e.g. "site=site-01,site-02 and firmware=2.1.0 and subgroup=age:65-79 and batch=B7" (or "" for everyone)`,
  );
}

/**
 * Parses a cohort expression; VigilError CONFIG_INVALID saying what is wrong.
 *
 * @example
 * parseCohort('site=site-01 and firmware=2.1.0,2.1.1'); // { sites: ['site-01'], firmware: ['2.1.0', '2.1.1'] }
 * parseCohort(''); // {} (everyone)
 */
export function parseCohort(expr: string): Cohort {
  const trimmed = expr.trim();
  if (trimmed === '') return {};
  const cohort: { -readonly [K in keyof Cohort]: string[] } = {};
  for (const clause of trimmed.split(/\s+and\s+/i)) {
    const eq = clause.indexOf('=');
    if (eq === -1) refuse(expr, `"${clause}" is not <dimension>=<values>`);
    const name = clause.slice(0, eq).trim().toLowerCase();
    const dimension = DIMENSIONS.find(([d]) => d === name);
    if (dimension === undefined) {
      refuse(expr, `unknown dimension "${name}" (known: ${DIMENSIONS.map(([d]) => d).join(', ')})`);
    }
    const field = dimension[1];
    if (cohort[field] !== undefined) refuse(expr, `"${name}" is given twice (list its values after one "=")`);
    const values = clause
      .slice(eq + 1)
      .split(',')
      .map((v) => v.trim());
    for (const value of values) {
      if (!VALUE.test(value)) refuse(expr, `"${name}" has an empty or malformed value "${value}"`);
    }
    if (new Set(values).size !== values.length) refuse(expr, `"${name}" lists a value twice`);
    cohort[field] = values;
  }
  return cohort;
}

/** The canonical text of a cohort ('' for everyone). */
export function formatCohort(cohort: Cohort): string {
  const clauses: string[] = [];
  for (const [name, field] of DIMENSIONS) {
    const values = cohort[field];
    if (values !== undefined && values.length > 0) clauses.push(`${name satisfies Dimension}=${values.join(',')}`);
  }
  return clauses.join(' and ');
}

/** Whether an event is in the cohort: every dimension the cohort names holds the event's value. */
export function matchesCohort(cohort: Cohort, key: RoutingKey): boolean {
  const holds = (values: readonly string[] | undefined, value: string | null): boolean =>
    values === undefined || values.length === 0 || (value !== null && values.includes(value));
  return (
    holds(cohort.sites, key.site_id) &&
    holds(cohort.firmware, key.firmware_version) &&
    holds(cohort.subgroups, key.patient_subgroup) &&
    holds(cohort.device_batches, key.device_batch)
  );
}
