/**
 * Routing: which versions of a model run on one event, and which of them is clinical. Pure and deterministic: every
 * worker that holds the same routing table decides the same for the same event, and a patient's canary bucket is a
 * hash of the model and the patient pseudonym, so a patient stays on one version across events, workers and restarts,
 * and raising a canary's percent (10 -> 20) keeps every patient who was already in it.
 */
import * as nodeCrypto from 'node:crypto';
import type { Cohort, ModelRollouts, ModelRoute, RoutedVersion, RoutingTable } from '../runtime/models.ts';
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

/** node:crypto's one-shot `hash` (Node >= 20.12) skips the Hash object createHash builds per call. */
const oneShotHash = typeof nodeCrypto.hash === 'function';

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
  const input = `${model}|${patientRef}`;
  const digest = oneShotHash
    ? nodeCrypto.hash('sha256', input, 'buffer')
    : nodeCrypto.createHash('sha256').update(input, 'utf8').digest();
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
  const plan = planOf(model, route, pipelineDefault);
  const bucket = cohortBucket(model, key.patient_ref);
  const templates = inCanary(plan, bucket, key) ? plan.inside! : plan.outside;
  const decisions: RouteDecision[] = new Array(templates.length);
  for (let d = 0; d < templates.length; d++) decisions[d] = withBucket(templates[d]!, bucket);
  return decisions;
}

/** One model's routing compiled for one route: the decisions for an event, as decideRoutes makes them. */
export type CompiledRoute = (key: RoutingKey) => readonly RouteDecision[];

/**
 * decideRoutes for one model and one route, compiled once (per routing-table revision) for the per-record path: the
 * decisions are planned once, a patient's bucket is hashed once (then remembered, up to 2 x 65,536 patients), and
 * the decisions returned are frozen arrays shared by every event of the same bucket and canary state, so a call
 * allocates nothing once its patient was seen. The same decisions, field for field, as
 * `decideRoutes(model, route, pipelineDefault, key)`; compile again when the route changes.
 *
 * @example
 * const route = compileRoute('news2', table.route('news2'), '1.0.0');
 * for (const record of batch) for (const decision of route(record.value.envelope)) run(decision);
 */
export function compileRoute(
  model: string,
  route: ModelRoute | undefined,
  pipelineDefault: string | null,
): CompiledRoute {
  const plan = planRoute(model, route, pipelineDefault);
  if (plan.outside.length === 0 && plan.canary === null) return () => NO_DECISIONS;
  const buckets = new BucketMemo(model);
  // Filled lazily: one frozen array per bucket and canary state (in the canary: only buckets below its share).
  const outside: (readonly RouteDecision[] | undefined)[] = new Array(COHORT_BUCKETS);
  const inside: (readonly RouteDecision[] | undefined)[] = new Array(plan.canary === null ? 0 : COHORT_BUCKETS);
  const frozen = (templates: readonly DecisionTemplate[], bucket: number): readonly RouteDecision[] =>
    Object.freeze(templates.map((t) => Object.freeze(withBucket(t, bucket))));
  return (key) => {
    const bucket = buckets.of(key.patient_ref);
    const canary = inCanary(plan, bucket, key);
    const byBucket = canary ? inside : outside;
    let decisions = byBucket[bucket];
    if (decisions === undefined) {
      decisions = frozen(canary ? plan.inside! : plan.outside, bucket);
      byBucket[bucket] = decisions;
    }
    return decisions;
  };
}

/** A decision before the patient's bucket is known: everything routing decides per route and canary state. */
type DecisionTemplate = Omit<RouteDecision, 'cohort_bucket'>;

/** One route planned: what runs outside the canary, what runs inside it, and who is inside. */
interface RoutePlan {
  readonly model: string;
  readonly route: ModelRoute | undefined;
  readonly pipelineDefault: string | null;
  /** The canary's share as a bucket count (percent * 100, rounded) and its cohort; null without a canary. */
  readonly canary: { readonly buckets: number; readonly cohort: Cohort } | null;
  /** Clinical first (live, else the pipeline default), then the shadows by version; in_canary false. */
  readonly outside: readonly DecisionTemplate[];
  /** The canary (clinical), then the shadows by version; in_canary true. Null without a canary. */
  readonly inside: readonly DecisionTemplate[] | null;
}

const NO_DECISIONS: readonly RouteDecision[] = Object.freeze([]);

function template(
  model: string,
  version: string,
  mode: RouteDecision['mode'],
  clinical: boolean,
  rolloutId: string | null,
  source: RouteDecision['source'],
  inCanary: boolean,
): DecisionTemplate {
  return { model, version, mode, clinical, rollout_id: rolloutId, source, in_canary: inCanary };
}

/** The decision for a patient: the template with the bucket (fields in one order, so one object shape). */
function withBucket(t: DecisionTemplate, bucket: number): RouteDecision {
  return {
    model: t.model,
    version: t.version,
    mode: t.mode,
    clinical: t.clinical,
    rollout_id: t.rollout_id,
    source: t.source,
    cohort_bucket: bucket,
    in_canary: t.in_canary,
  };
}

function planRoute(model: string, route: ModelRoute | undefined, pipelineDefault: string | null): RoutePlan {
  const byPipeline =
    pipelineDefault === null ? null : template(model, pipelineDefault, 'live', true, null, 'pipeline', false);
  if (route === undefined) {
    return {
      model,
      route,
      pipelineDefault,
      canary: null,
      outside: byPipeline === null ? [] : [byPipeline],
      inside: null,
    };
  }
  const shadows = [...route.shadows].sort((a, b) => compareVersions(a.version, b.version));
  const registry = (routed: RoutedVersion, mode: RouteDecision['mode'], clinical: boolean, inCanary: boolean) =>
    template(model, routed.version, mode, clinical, routed.rollout_id, 'registry', inCanary);
  // One inference per version and event: a shadow of the version already running clinically is not run twice.
  const withShadows = (clinical: DecisionTemplate | null, inCanary: boolean): DecisionTemplate[] => {
    const decisions = clinical === null ? [] : [clinical];
    for (const shadow of shadows) {
      if (shadow.version !== clinical?.version) decisions.push(registry(shadow, 'shadow', false, inCanary));
    }
    return decisions;
  };
  const canary = route.canary;
  return {
    model,
    route,
    pipelineDefault,
    // Rounded: 7% is 700 buckets, not 700.0000000000001 (a float product would take bucket 700 in too).
    canary: canary === null ? null : { buckets: Math.round(canary.percent * 100), cohort: canary.cohort },
    outside: withShadows(route.live !== null ? registry(route.live, 'live', true, false) : byPipeline, false),
    inside: canary === null ? null : withShadows(registry(canary, 'canary', true, true), true),
  };
}

/** Plans of the routes decideRoutes was called with, so a caller passing the same route again does not replan. */
const plans = new WeakMap<ModelRoute, RoutePlan>();

function planOf(model: string, route: ModelRoute | undefined, pipelineDefault: string | null): RoutePlan {
  if (route === undefined) return planRoute(model, route, pipelineDefault);
  const known = plans.get(route);
  if (known !== undefined && known.model === model && known.pipelineDefault === pipelineDefault) return known;
  const plan = planRoute(model, route, pipelineDefault);
  plans.set(route, plan);
  return plan;
}

/** Whether this event is in the canary: its bucket within the share and the event in the cohort. */
function inCanary(plan: RoutePlan, bucket: number, key: RoutingKey): boolean {
  return plan.canary !== null && bucket < plan.canary.buckets && matchesCohort(plan.canary.cohort, key);
}

/**
 * Patients' buckets for one model, so a patient's sha256 is computed once, not per event. Bounded: two generations of
 * at most `capacity` patients each; when the young one fills, the old one is dropped (a patient seen in neither is
 * simply hashed again). Holds pseudonyms in memory only, like the events themselves.
 */
class BucketMemo {
  #young = new Map<string, number>();
  #old = new Map<string, number>();
  constructor(
    readonly model: string,
    readonly capacity = 65_536,
  ) {}

  of(patientRef: string): number {
    const young = this.#young.get(patientRef);
    if (young !== undefined) return young;
    const bucket = this.#old.get(patientRef) ?? cohortBucket(this.model, patientRef);
    if (this.#young.size >= this.capacity) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(patientRef, bucket);
    return bucket;
  }
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
