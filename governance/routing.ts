/**
 * Routing: which versions of a model run on one event, and which of them is clinical. Pure and deterministic: every
 * worker that holds the same routing table decides the same for the same event, and a patient's canary bucket is a
 * hash of the model and the patient pseudonym, so a patient stays on one version across events, workers and restarts,
 * and raising a canary's percent (10 -> 20) keeps every patient who was already in it.
 */
import { createHash } from 'node:crypto';
import type { ModelRollouts, ModelRoute, RoutedVersion, RoutingTable } from '../runtime/models.ts';
import { matchesCohort } from './cohort.ts';
import type { RouteDecision } from './types.ts';

/** What routing reads of an event: never stored in a log line or a metric label (patient_ref is PHI-adjacent). */
export interface RoutingKey {
  readonly patient_ref: string;
  readonly site_id: string;
  readonly firmware_version: string;
  /** The patient's subgroup (e.g. `age:65-79`), when the event carries one. */
  readonly patient_subgroup: string | null;
  readonly device_batch: string | null;
}

/** Number of canary buckets: a percent maps to `percent * 100` buckets, so 0.01% steps are exact. */
export const COHORT_BUCKETS = 10_000;

/**
 * The patient's canary bucket for a model, 0..9999: the first 4 bytes of sha256(`<model>|<patient_ref>`), big-endian,
 * mod 10000. Per model, so one patient is not in every model's canary at once.
 *
 * @example
 * cohortBucket('deterioration', 'pt-v1-9f2c'); // the same number on every worker, every time
 */
export function cohortBucket(model: string, patientRef: string): number {
  const digest = createHash('sha256').update(`${model}|${patientRef}`, 'utf8').digest();
  return digest.readUInt32BE(0) % COHORT_BUCKETS;
}

/** Orders versions by their dot-separated parts, numerically where both parts are numbers (1.9.0 < 1.10.0). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let k = 0; k < Math.max(pa.length, pb.length); k++) {
    const x = pa[k];
    const y = pb[k];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const nx = /^\d+$/.test(x) ? Number(x) : Number.NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : Number.NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny) && nx !== ny) return nx - ny;
    return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * Which versions run for this event, clinical first, then shadows by version.
 *
 * - `route` undefined (the registry knows nothing of the model): the pipeline's default version runs live.
 * - `route` defined: the registry decides. The canary runs (clinical) when the event matches its cohort and the
 *   patient's bucket is below `percent * 100`; otherwise the live version (clinical). Every shadow runs too, never
 *   clinical. While the registry has no live version of the model (only a shadow or a canary so far, or its live
 *   version rolled back with none before it), the pipeline's default stays the clinical version outside the canary:
 *   adding a shadow never stops a model's clinical scoring.
 *
 * @example
 * const decisions = decideRoutes('news2', table.route('news2'), '1.0.0', { patient_ref, site_id, firmware_version, patient_subgroup: null, device_batch: null });
 */
export function decideRoutes(
  model: string,
  route: ModelRoute | undefined,
  pipelineDefault: string | null,
  key: RoutingKey,
): RouteDecision[] {
  const bucket = cohortBucket(model, key.patient_ref);
  const byPipeline = (): RouteDecision[] =>
    pipelineDefault === null
      ? []
      : [
          {
            model,
            version: pipelineDefault,
            mode: 'live',
            clinical: true,
            rollout_id: null,
            source: 'pipeline',
            cohort_bucket: bucket,
            in_canary: false,
          },
        ];
  if (route === undefined) return byPipeline();
  const canary = route.canary;
  // Rounded: 7% is 700 buckets, not 700.0000000000001 (a float product would take bucket 700 in too).
  const inCanary = canary !== null && bucket < Math.round(canary.percent * 100) && matchesCohort(canary.cohort, key);
  const decide = (routed: RoutedVersion, mode: RouteDecision['mode'], clinical: boolean): RouteDecision => ({
    model,
    version: routed.version,
    mode,
    clinical,
    rollout_id: routed.rollout_id,
    source: 'registry',
    cohort_bucket: bucket,
    in_canary: inCanary,
  });
  const decisions: RouteDecision[] = [];
  if (inCanary && canary !== null) decisions.push(decide(canary, 'canary', true));
  else if (route.live !== null) decisions.push(decide(route.live, 'live', true));
  else decisions.push(...byPipeline().map((d) => ({ ...d, in_canary: inCanary })));
  const shadows = [...route.shadows].sort((a, b) => compareVersions(a.version, b.version));
  // One inference per version and event: a shadow of the version already running clinically is not run twice.
  const running = new Set(decisions.map((d) => d.version));
  for (const shadow of shadows) if (!running.has(shadow.version)) decisions.push(decide(shadow, 'shadow', false));
  return decisions;
}

/** A routing table that routes nothing: every model runs its pipeline default. */
export const EMPTY_ROUTING_TABLE: RoutingTable = { revision: 0, route: () => undefined };

/**
 * Rollouts that never change: the table given (or none, so every model runs its pipeline default). For runs without a
 * registry (tests, `--input` replays) and for library callers.
 *
 * @example
 * const context = { ...base, rollouts: staticRollouts() };
 */
export function staticRollouts(table: RoutingTable = EMPTY_ROUTING_TABLE): ModelRollouts {
  return { current: () => table };
}
