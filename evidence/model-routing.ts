/**
 * Model routing as evidence: which record of the model-rollouts control log routed an inference, and what that record
 * rests on (its actor, reason, time and the approval of the version it routed), for `vigil trace` and the
 * model-governance part of `vigil evidence export`.
 *
 * An inference names the routing decision that made it (inference-v2: `rollout_id` = the change_id of the record that
 * put its version in its slot, `routing` = source, cohort bucket, canary, clinical; 0013 stores both). The record is
 * found in the registry folded from the log (governance/registry.ts): a `rollout` (its mode), a `promoted` (live) or
 * a `rollback` that restored the previous live version. The approval it rests on is the one the record names
 * (`approval_id` of a rollout or promotion); a rollback names none, so for the version it restored the approval is
 * that version's latest approval made before the rollback. Nothing here reads a plane or a log: the callers pass the
 * folded registry, or say the log was not read.
 */
import type { ModelRegistry } from '../governance/registry.ts';
import type { ModelChange, RegisteredVersion, RolloutMode } from '../governance/types.ts';

/** Whether the model-rollouts log was read, and from where (`file:<path>` or `kafka:<topic>`). */
export interface RolloutLogStatus {
  readonly read: boolean;
  readonly source: string;
  /** Why it was not read (no file, Kafka unreachable, no topic); null when read. */
  readonly problem: string | null;
}

/** The model-rollouts log as a trace or an export was given it: folded into a registry, or why it was not read. */
export interface ModelRolloutsRead {
  readonly status: RolloutLogStatus;
  /** The registry folded from the log; null when it was not read. */
  readonly registry: ModelRegistry | null;
}

/** An approval as evidence: who approved which version, in which role, when and why. */
export interface ApprovalEvidence {
  readonly change_id: string;
  /** ISO-8601. */
  readonly at: string;
  readonly approver: string;
  readonly role: string;
  readonly reason: string;
}

/** The record of the model-rollouts log that routed an inference's version, and the approval it rests on. */
export interface RoutingRecordEvidence {
  readonly change_id: string;
  /** `rollout`, `promoted` (made live after its criteria held) or `rollback` (restored the previous live version). */
  readonly kind: 'rollout' | 'promoted' | 'rollback';
  /** The version the record names (for a rollback: the version it took out of routing). */
  readonly version: string;
  /** The version the record put in a slot, and the slot: a rollback's restored version goes live. */
  readonly routed_version: string | null;
  readonly mode: RolloutMode;
  /** ISO-8601. */
  readonly at: string;
  readonly actor: string;
  readonly reason: string;
  /** Canary share and cohort as written (`site=site-01`); 100 and '' otherwise. */
  readonly percent: number;
  readonly cohort_expr: string;
  /** Rollbacks: `manual` or `drift` (the drift guard); null otherwise. */
  readonly trigger: 'manual' | 'drift' | null;
  /** null for a shadow rollout (an unapproved version may run in shadow) or a version never approved. */
  readonly approval: ApprovalEvidence | null;
}

type Approval = RegisteredVersion['approvals'][number];
type RoutingChange = Extract<ModelChange, { kind: 'rollout' | 'promoted' | 'rollback' }>;

const iso = (ms: number): string => new Date(ms).toISOString();

function approvalEvidence(approval: Approval | undefined): ApprovalEvidence | null {
  if (approval === undefined) return null;
  return {
    change_id: approval.change_id,
    at: iso(approval.at),
    approver: approval.actor,
    role: approval.role,
    reason: approval.reason,
  };
}

const isRouting = (change: ModelChange): change is RoutingChange =>
  change.kind === 'rollout' || change.kind === 'promoted' || change.kind === 'rollback';

/** The record as evidence, with the approval it rests on resolved from the registry. */
export function routingRecordEvidence(registry: ModelRegistry, change: RoutingChange): RoutingRecordEvidence {
  const approvals = (version: string | null) =>
    version === null ? [] : (registry.version(change.model, version)?.approvals ?? []);
  const base = {
    change_id: change.change_id,
    kind: change.kind,
    version: change.version,
    at: iso(change.at),
    actor: change.actor,
    reason: change.reason,
  };
  switch (change.kind) {
    case 'rollout':
      return {
        ...base,
        routed_version: change.version,
        mode: change.mode,
        percent: change.percent,
        cohort_expr: change.cohort_expr,
        trigger: null,
        approval: approvalEvidence(approvals(change.version).find((a) => a.change_id === change.approval_id)),
      };
    case 'promoted':
      return {
        ...base,
        routed_version: change.version,
        mode: 'live',
        percent: 100,
        cohort_expr: '',
        trigger: null,
        approval: approvalEvidence(approvals(change.version).find((a) => a.change_id === change.approval_id)),
      };
    case 'rollback':
      // The restored version goes back live on the approvals it had then (the record names none).
      return {
        ...base,
        routed_version: change.restored,
        mode: 'live',
        percent: 100,
        cohort_expr: '',
        trigger: change.trigger,
        approval: approvalEvidence(approvals(change.restored).findLast((a) => a.at <= change.at)),
      };
  }
}

/**
 * The record that routed an inference: the model's change `rolloutId` if it is a rollout, promotion or rollback the
 * registry applied; null when there is none (the pipeline's default ran, or the log does not hold it).
 *
 * @example
 * const registry = await readModelRegistry(modelRolloutsLog({ controlDir }));
 * routingRecordOf(registry, 'deterioration', inference.rollout_id)?.approval?.approver; // 'dr-jones'
 */
export function routingRecordOf(
  registry: ModelRegistry,
  model: string,
  rolloutId: string | null,
): RoutingRecordEvidence | null {
  if (rolloutId === null) return null;
  const change = registry.history(model).find((c) => c.change_id === rolloutId);
  return change !== undefined && isRouting(change) ? routingRecordEvidence(registry, change) : null;
}

/** Whether the registry holds `model@version` with exactly this artifact (false: unregistered or other bytes). */
export function artifactRegistered(
  registry: ModelRegistry,
  model: string,
  version: string,
  artifactSha256: string,
): boolean {
  return registry.version(model, version)?.artifact_sha256 === artifactSha256;
}

/** A version's registry record up to `to` (epoch ms, exclusive): registration, approvals, routing, promotions. */
export interface VersionHistory {
  readonly model: string;
  readonly version: string;
  readonly artifact_sha256: string;
  readonly manifest_sha256: string;
  readonly pccp_modification_id: string;
  readonly intended_use: string;
  readonly added: { readonly change_id: string; readonly at: string; readonly actor: string };
  readonly approvals: readonly ApprovalEvidence[];
  /** Rollouts of the version, promotions to it, and rollbacks of it or restoring it, in log order. */
  readonly routing: readonly RoutingRecordEvidence[];
  /** Its promotions with the acceptance criteria as evaluated and the period they were evaluated on. */
  readonly promotions: readonly {
    readonly change_id: string;
    readonly at: string;
    readonly actor: string;
    readonly previous: string | null;
    readonly period: { readonly from: string; readonly to: string };
    readonly criteria: Extract<ModelChange, { kind: 'promoted' }>['criteria'];
  }[];
}

/**
 * The registry history of the given versions as it stood before `to`: what an auditor asks of a version that ran
 * ("approved by whom, routed how"). Versions the registry does not know are left out (they ran by a pipeline default).
 *
 * @example
 * versionHistories(registry, [{ model: 'deterioration', version: '1.1.0' }], Date.parse('2026-12-01T00:00:00Z'));
 */
export function versionHistories(
  registry: ModelRegistry,
  versions: readonly { readonly model: string; readonly version: string }[],
  to: number,
): VersionHistory[] {
  const out: VersionHistory[] = [];
  const seen = new Set<string>();
  for (const { model, version } of versions) {
    const key = `${model}@${version}`;
    const registered = registry.version(model, version);
    if (seen.has(key) || registered === undefined || registered.added.at >= to) continue;
    seen.add(key);
    const changes = registry.history(model).filter((c) => c.at < to);
    const routing = changes
      .filter(isRouting)
      .filter((c) => c.version === version || (c.kind === 'rollback' && c.restored === version))
      .map((c) => routingRecordEvidence(registry, c));
    const promotions = changes.flatMap((c) =>
      c.kind === 'promoted' && c.version === version
        ? [
            {
              change_id: c.change_id,
              at: iso(c.at),
              actor: c.actor,
              previous: c.previous,
              period: { from: iso(c.period.from), to: iso(c.period.to) },
              criteria: c.criteria,
            },
          ]
        : [],
    );
    out.push({
      model,
      version,
      artifact_sha256: registered.artifact_sha256,
      manifest_sha256: registered.manifest_sha256,
      pccp_modification_id: registered.manifest.pccp.modification_id,
      intended_use: registered.manifest.intended_use,
      added: { change_id: registered.added.change_id, at: iso(registered.added.at), actor: registered.added.actor },
      approvals: registered.approvals.filter((a) => a.at < to).flatMap((a) => approvalEvidence(a) ?? []),
      routing,
      promotions,
    });
  }
  return out;
}
