/**
 * Model governance: the contract between the model registry (records on the compacted control topic
 * `vigil.control.model-rollouts`, written by `vigil models ...`), the workers (fold the records into a routing table
 * and apply it live, runtime/models.ts RoutingTable) and the reports (history, promotion evidence). Core: imports no
 * adapter.
 *
 * Like the device-identity log, every record has its own key (`<model>/<change_id>`), so compaction never drops one:
 * the topic is the append-only history of who added, approved, rolled out, promoted and rolled back what, and why.
 * The registry's state is the fold of the records in log order (governance/registry.ts).
 */
import type { Cohort, ModelManifest } from '../runtime/models.ts';

export type RolloutMode = 'live' | 'canary' | 'shadow';

interface ChangeBase {
  /** ULID: unique per change. */
  readonly change_id: string;
  /** Model name (a plain folder name: letters, digits, '.', '_', '-'). */
  readonly model: string;
  /** Epoch ms at which the change was made. */
  readonly at: number;
  /** Who made it: a principal name, or `system:drift-guard` for an automatic rollback. */
  readonly actor: string;
  readonly reason: string;
}

/** One record on the model-rollouts control topic. Value = this object as JSON; key = `<model>/<change_id>`. */
export type ModelChange = ChangeBase &
  (
    | {
        /** A version entered the registry: content-addressed by its artifact's SHA-256; the manifest as validated. */
        readonly kind: 'added';
        readonly version: string;
        readonly artifact_sha256: string;
        /** SHA-256 of the manifest file's bytes as added. */
        readonly manifest_sha256: string;
        readonly manifest: ModelManifest;
      }
    | {
        readonly kind: 'approved';
        readonly version: string;
        /** The artifact approved: an approval never carries over to other bytes under the same version. */
        readonly artifact_sha256: string;
        /** The approver's role (e.g. `clinical-safety-officer`, `ml-lead`). */
        readonly role: string;
      }
    | {
        /** A version's routing set: live replaces the live version; canary replaces any canary; shadow adds one. */
        readonly kind: 'rollout';
        readonly version: string;
        readonly mode: RolloutMode;
        /** Canary only: share of the cohort's patients (0 < percent <= 100); 100 for live and shadow. */
        readonly percent: number;
        /** Canary only: the cohort as parsed, and as written (`site=A and firmware=2.1.0`); {} and '' = everyone. */
        readonly cohort: Cohort;
        readonly cohort_expr: string;
        /** change_id of the approval it rests on (null only for shadow, which may run unapproved). */
        readonly approval_id: string | null;
      }
    | {
        /**
         * Takes `version` out of routing. A canary or shadow is removed; a live version is replaced by `restored` (the
         * previous live version), or leaves the model unrouted when there is none.
         */
        readonly kind: 'rollback';
        readonly version: string;
        readonly from_mode: RolloutMode;
        readonly restored: string | null;
        readonly trigger: 'manual' | 'drift';
        /** For a drift rollback: the figures that triggered it (feature -> JS distance, window). */
        readonly evidence: Readonly<Record<string, unknown>> | null;
      }
    | {
        /** The version became live after its acceptance criteria held on the shadow/canary period. */
        readonly kind: 'promoted';
        readonly version: string;
        readonly previous: string | null;
        readonly approval_id: string;
        readonly criteria: readonly CriterionResult[];
        /** The period the criteria were evaluated on (epoch ms, inclusive from, exclusive to). */
        readonly period: { readonly from: number; readonly to: number };
      }
  );

export type ModelChangeKind = ModelChange['kind'];

/** One acceptance criterion as evaluated for a promotion. */
export interface CriterionResult {
  /** e.g. `min_inferences`, `min_agreement_with_live`, `calibration.ece_max`, `subgroup_brier_margin:age:80+`. */
  readonly criterion: string;
  readonly required: string;
  readonly observed: string;
  readonly passed: boolean;
}

/** A version as the registry knows it. */
export interface RegisteredVersion {
  readonly model: string;
  readonly version: string;
  readonly artifact_sha256: string;
  readonly manifest_sha256: string;
  readonly manifest: ModelManifest;
  readonly added: { readonly change_id: string; readonly at: number; readonly actor: string };
  readonly approvals: readonly {
    readonly change_id: string;
    readonly at: number;
    readonly actor: string;
    readonly role: string;
    readonly reason: string;
  }[];
}

/** What routing decided for one event and one model version: recorded on the inference it produced. */
export interface RouteDecision {
  readonly model: string;
  readonly version: string;
  readonly mode: RolloutMode;
  /** Whether this inference is clinical (may alert): live outside a canary cohort, canary inside it; never shadow. */
  readonly clinical: boolean;
  /** change_id of the rollout record that routed it; null when it ran by the pipeline's default. */
  readonly rollout_id: string | null;
  readonly source: 'registry' | 'pipeline';
  /** The patient's canary bucket 0..9999 (sha256 of `<model>|<patient_ref>`), the same for every event of a patient. */
  readonly cohort_bucket: number;
  /** Whether the event is in the canary's cohort and share (false when there is no canary). */
  readonly in_canary: boolean;
}
