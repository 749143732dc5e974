/**
 * The model registry: the fold of the model-rollouts control records in log order (Flink's broadcast state: every
 * worker holds the whole registry and applies each change as it arrives), and the routing table workers read from it.
 *
 * Folding rules, chosen so that replaying the log anywhere gives the same registry:
 * - a change_id is decided once: applied once (a producer retry, a re-read log), and a change refused once stays
 *   refused when its record is seen again later, even where the state has moved on to where it would hold;
 * - a change that breaks a rule below throws VigilError (MODEL_CHANGE_REFUSED, or PROMOTION_REFUSED for a promotion)
 *   and changes nothing: the service refuses it before appending, and a follower skips and counts one that reached
 *   the log anyway (two operators racing), so every replica skips the same records;
 * - `added`: a version enters once; the same version again (other bytes or the same) is refused;
 * - `approved`: of a registered version, naming the artifact registered (an approval never carries over to other
 *   bytes); a version may collect several approvals (roles);
 * - `rollout`: of a registered version. `live` and `canary` rest on an approval of that version; `shadow` may run
 *   unapproved. A version holds one slot at a time: `live` replaces the live version (remembered, for rollback) and
 *   takes the version out of the canary or the shadows; `canary` replaces any canary (the same version again changes
 *   its percent or cohort) and is refused for the live version; `shadow` adds one and is refused for the live version,
 *   the canary or a version already in shadow. Live and shadow run for everyone (percent 100, no cohort); a canary's
 *   cohort text is its cohort's canonical form (governance/cohort.ts formatCohort);
 * - `rollback`: of the version in the slot it names. A canary or shadow is removed; a live version is replaced by the
 *   previous live version (which the record must name as `restored`), or leaves no live version when there is none;
 * - `promoted`: like a live rollout, on an approval, when at least one criterion was evaluated and every one passed,
 *   naming the live version it replaces.
 *
 * A routed version's `rollout_id` is the change that put it in its slot (a rollout, a promotion, or the rollback that
 * restored it), so inferences group by the period each routing was in force.
 */
import { VigilError } from '../runtime/errors.ts';
import type { ModelRoute, RoutedVersion, RoutingTable } from '../runtime/models.ts';
import { formatCohort } from './cohort.ts';
import type { ModelChange, RegisteredVersion } from './types.ts';

type Canary = NonNullable<ModelRoute['canary']>;
type Slot = { readonly version: string; readonly rollout_id: string };

/** Where one model's events go, as folded (approval is looked up when a route is read: it may come later). */
interface RouteState {
  live: Slot | null;
  /** Live versions replaced, most recent last: a live rollback restores the last. */
  readonly previousLive: string[];
  canary: (Slot & Pick<Canary, 'percent' | 'cohort' | 'cohort_expr'>) | null;
  shadows: Slot[];
}

/** What `apply` did with a change. */
export type ApplyOutcome = 'applied' | 'duplicate';

export type ModelChangeListener = (change: ModelChange) => void;

function refuse(change: ModelChange, why: string): never {
  throw new VigilError(
    'MODEL_CHANGE_REFUSED',
    `${change.kind} of ${change.model}@${change.version} (${change.change_id}) refused: ${why}`,
  );
}

export class ModelRegistry {
  readonly #versions = new Map<string, Map<string, RegisteredVersion>>();
  readonly #routes = new Map<string, RouteState>();
  readonly #history: ModelChange[] = [];
  readonly #applied = new Set<string>();
  /** change_ids refused: a repeated record of a refused change is a duplicate, never a late success. */
  readonly #refused = new Set<string>();
  readonly #listeners = new Set<ModelChangeListener>();
  #table: RoutingTable | undefined;

  /**
   * Folds one change. Throws VigilError (and changes nothing) when it breaks a rule; listeners run after the registry
   * reflects the change.
   *
   * @example
   * const registry = new ModelRegistry();
   * for (const change of changes) registry.apply(change);
   * registry.routingTable().route('deterioration');
   */
  apply(change: ModelChange): ApplyOutcome {
    if (this.#applied.has(change.change_id) || this.#refused.has(change.change_id)) return 'duplicate';
    try {
      this.#fold(change);
    } catch (error) {
      this.#refused.add(change.change_id);
      throw error;
    }
    this.#applied.add(change.change_id);
    this.#history.push(change);
    this.#table = undefined;
    for (const listener of this.#listeners) listener(change);
    return 'applied';
  }

  #fold(change: ModelChange): void {
    if (change.kind === 'added') {
      const existing = this.version(change.model, change.version);
      if (existing !== undefined) {
        refuse(
          change,
          existing.artifact_sha256 === change.artifact_sha256
            ? 'the version is already registered'
            : `the version is registered with other bytes (artifact sha256 ${existing.artifact_sha256}): a new artifact needs a new version`,
        );
      }
      if (change.manifest.name !== change.model || change.manifest.version !== change.version) {
        refuse(change, `its manifest describes ${change.manifest.name}@${change.manifest.version}`);
      }
      if (change.manifest.artifact.sha256 !== change.artifact_sha256) {
        refuse(change, "the artifact sha256 is not the manifest's");
      }
      let versions = this.#versions.get(change.model);
      if (versions === undefined) {
        versions = new Map();
        this.#versions.set(change.model, versions);
      }
      versions.set(change.version, {
        model: change.model,
        version: change.version,
        artifact_sha256: change.artifact_sha256,
        manifest_sha256: change.manifest_sha256,
        manifest: change.manifest,
        added: { change_id: change.change_id, at: change.at, actor: change.actor },
        approvals: [],
      });
      return;
    }
    const registered = this.version(change.model, change.version);
    if (registered === undefined) refuse(change, 'no such version in the registry (add it first)');
    const route = this.#routeState(change.model);
    switch (change.kind) {
      case 'approved': {
        if (change.artifact_sha256 !== registered.artifact_sha256) {
          refuse(
            change,
            `it approves artifact ${change.artifact_sha256}, the version's is ${registered.artifact_sha256}`,
          );
        }
        const approval = {
          change_id: change.change_id,
          at: change.at,
          actor: change.actor,
          role: change.role,
          reason: change.reason,
        };
        this.#versions.get(change.model)!.set(change.version, {
          ...registered,
          approvals: [...registered.approvals, approval],
        });
        return;
      }
      case 'rollout': {
        const approved =
          change.approval_id !== null && registered.approvals.some((a) => a.change_id === change.approval_id);
        if (change.approval_id !== null && !approved)
          refuse(change, `approval ${change.approval_id} is not one of this version`);
        if (change.mode !== 'shadow' && !approved) {
          refuse(
            change,
            `a ${change.mode} rollout needs an approval of the version (an unapproved version runs only in shadow)`,
          );
        }
        if (
          change.mode !== 'canary' &&
          (change.percent !== 100 || change.cohort_expr !== '' || !isEveryone(change.cohort))
        ) {
          refuse(change, `a ${change.mode} rollout runs for everyone: percent 100, no cohort`);
        }
        // The text is what people read (show, report, trace); the cohort is what routes: they must be one.
        if (change.mode === 'canary' && formatCohort(change.cohort) !== change.cohort_expr) {
          refuse(
            change,
            `its cohort text "${change.cohort_expr}" is not its cohort ("${formatCohort(change.cohort)}")`,
          );
        }
        const slot = { version: change.version, rollout_id: change.change_id };
        if (change.mode === 'live') {
          if (route.live?.version === change.version) refuse(change, 'the version is already live');
          this.#goLive(route, slot);
        } else if (change.mode === 'canary') {
          if (route.live?.version === change.version) refuse(change, 'the version is live');
          route.shadows = route.shadows.filter((s) => s.version !== change.version);
          route.canary = { ...slot, percent: change.percent, cohort: change.cohort, cohort_expr: change.cohort_expr };
        } else {
          if (route.live?.version === change.version) refuse(change, 'the version is live (roll it back first)');
          if (route.canary?.version === change.version)
            refuse(change, 'the version is the canary (roll it back first)');
          if (route.shadows.some((s) => s.version === change.version))
            refuse(change, 'the version is already in shadow');
          route.shadows = [...route.shadows, slot];
        }
        return;
      }
      case 'rollback': {
        if (change.from_mode === 'live') {
          if (route.live?.version !== change.version) refuse(change, 'the version is not live');
          const previous = route.previousLive.at(-1) ?? null;
          if (change.restored !== previous) {
            refuse(
              change,
              `it restores ${change.restored ?? 'nothing'}, the previous live version is ${previous ?? 'none'}`,
            );
          }
          route.previousLive.pop();
          route.live = null;
          if (previous !== null) this.#place(route, { version: previous, rollout_id: change.change_id });
        } else if (change.restored !== null) {
          refuse(change, `a ${change.from_mode} rollback restores nothing`);
        } else if (change.from_mode === 'canary') {
          if (route.canary?.version !== change.version) refuse(change, 'the version is not the canary');
          route.canary = null;
        } else {
          if (!route.shadows.some((s) => s.version === change.version)) refuse(change, 'the version is not in shadow');
          route.shadows = route.shadows.filter((s) => s.version !== change.version);
        }
        return;
      }
      case 'promoted': {
        if (!registered.approvals.some((a) => a.change_id === change.approval_id)) {
          throw new VigilError(
            'PROMOTION_REFUSED',
            `promotion of ${change.model}@${change.version} refused: approval ${change.approval_id} is not one of this version`,
          );
        }
        const failed = change.criteria.filter((c) => !c.passed);
        if (failed.length > 0) throw promotionRefused(change.model, change.version, failed);
        if (change.criteria.length === 0) {
          throw new VigilError(
            'PROMOTION_REFUSED',
            `promotion of ${change.model}@${change.version} refused: no criterion was evaluated`,
          );
        }
        const live = route.live?.version ?? null;
        if (live === change.version) refuse(change, 'the version is already live');
        if (change.previous !== live)
          refuse(change, `it replaces ${change.previous ?? 'nothing'}, the live version is ${live ?? 'none'}`);
        this.#goLive(route, { version: change.version, rollout_id: change.change_id });
        return;
      }
    }
  }

  /** The version goes live: the live one is remembered for rollback. */
  #goLive(route: RouteState, slot: Slot): void {
    if (route.live !== null) route.previousLive.push(route.live.version);
    route.live = null;
    this.#place(route, slot);
  }

  /** Makes `slot` the live version, taking it out of the canary and the shadows. */
  #place(route: RouteState, slot: Slot): void {
    if (route.canary?.version === slot.version) route.canary = null;
    route.shadows = route.shadows.filter((s) => s.version !== slot.version);
    route.live = slot;
  }

  #routeState(model: string): RouteState {
    let route = this.#routes.get(model);
    if (route === undefined) {
      route = { live: null, previousLive: [], canary: null, shadows: [] };
      this.#routes.set(model, route);
    }
    return route;
  }

  /** Model names, in the order they were first added. */
  models(): string[] {
    return [...this.#versions.keys()];
  }

  /** A model's versions, in the order they were added. */
  versions(model: string): RegisteredVersion[] {
    return [...(this.#versions.get(model)?.values() ?? [])];
  }

  version(model: string, version: string): RegisteredVersion | undefined {
    return this.#versions.get(model)?.get(version);
  }

  /** The version's most recent approval, if any. */
  latestApproval(model: string, version: string): RegisteredVersion['approvals'][number] | undefined {
    return this.version(model, version)?.approvals.at(-1);
  }

  /** The live version a live rollback would restore (null: none, the model would have no live version). */
  previousLive(model: string): string | null {
    return this.#routes.get(model)?.previousLive.at(-1) ?? null;
  }

  /**
   * Where the model's events go now; undefined when the registry routes no version of it (never rolled out, or every
   * rollout rolled back), so the pipeline's default runs.
   */
  route(model: string): ModelRoute | undefined {
    const state = this.#routes.get(model);
    if (state === undefined || (state.live === null && state.canary === null && state.shadows.length === 0)) {
      return undefined;
    }
    const routed = (slot: Slot): RoutedVersion => ({
      version: slot.version,
      rollout_id: slot.rollout_id,
      approved: (this.version(model, slot.version)?.approvals.length ?? 0) > 0,
      ...artifactOf(this.version(model, slot.version)),
    });
    return {
      model,
      live: state.live === null ? null : routed(state.live),
      canary:
        state.canary === null
          ? null
          : {
              ...routed(state.canary),
              percent: state.canary.percent,
              cohort: state.canary.cohort,
              cohort_expr: state.canary.cohort_expr,
            },
      shadows: state.shadows.map(routed),
    };
  }

  /** The routes in force as a snapshot: it does not change after later changes (read `routingTable()` again). */
  routingTable(): RoutingTable {
    if (this.#table === undefined) {
      const routes = new Map<string, ModelRoute>();
      for (const model of this.#routes.keys()) {
        const route = this.route(model);
        if (route !== undefined) routes.set(model, route);
      }
      this.#table = { revision: this.#history.length, route: (model) => routes.get(model) };
    }
    return this.#table;
  }

  /** Applied changes in log order, of one model or of all. */
  history(model?: string): ModelChange[] {
    return model === undefined ? [...this.#history] : this.#history.filter((c) => c.model === model);
  }

  /** Number of changes applied (= the routing table's revision). */
  get revision(): number {
    return this.#history.length;
  }

  /** Called after every applied change (not duplicates, not refused ones). Returns an unsubscribe function. */
  onChange(listener: ModelChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

function isEveryone(cohort: object): boolean {
  return Object.values(cohort).every((values) => values === undefined || (values as unknown[]).length === 0);
}

/** The PROMOTION_REFUSED error naming each failed criterion with what it required and what was observed. */
export function promotionRefused(
  model: string,
  version: string,
  failed: readonly { criterion: string; required: string; observed: string }[],
): VigilError {
  const list = failed.map((c) => `${c.criterion} (required ${c.required}, observed ${c.observed})`).join('; ');
  return new VigilError('PROMOTION_REFUSED', `promotion of ${model}@${version} refused: failed ${list}`);
}

/** The registered artifact of a routed version, for the workers to check the bytes they load against. */
function artifactOf(registered: RegisteredVersion | undefined): { artifact_sha256?: string } {
  return registered === undefined ? {} : { artifact_sha256: registered.artifact_sha256 };
}
