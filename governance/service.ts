/**
 * The model registry's operations (`vigil models add|approve|rollout|rollback|promote`): each reads the control log to
 * caught-up, builds the change, checks it against the registry's rules by folding it into that fresh copy (a change
 * the rules refuse throws and nothing is appended), appends it (key `<model>/<change_id>`), then records its audit
 * entry. The log is the only state: two operators racing both append, and the fold (governance/registry.ts) decides
 * deterministically, skipping on every replica the change that no longer holds.
 *
 * Decisions:
 * - `add` is content-addressed: the version folder is validated (strict manifest, the artifact's and reference's
 *   sha256) and copied into `<modelsRoot>/<name>/<version>/` before the record is appended (an append that fails
 *   leaves an unregistered folder, never a registered version without its files). The same bytes again is a no-op
 *   returning the existing record; other bytes under a registered or stored version are refused: a new artifact needs
 *   a new version.
 * - A rollout, rollback or promotion names the approval it rests on (the version's latest); an unapproved version may
 *   run in shadow only.
 * - Audit as in identity/service.ts: the audit log must answer `ready()` before anything changes, and the entry is
 *   appended after the change is durable; an entry that cannot be appended fails the operation (AUDIT_UNAVAILABLE)
 *   naming the change.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { monotonicFactory } from 'ulid';
import { z } from 'zod';
import type { ControlAudit } from '../identity/service.ts';
import type { ControlLog } from '../identity/types.ts';
import type { Clock } from '../runtime/clock.ts';
import { VigilError } from '../runtime/errors.ts';
import type { ModelManifest } from '../runtime/models.ts';
import { modelChangeKey, modelChangeSchema } from './changes.ts';
import { formatCohort, parseCohort } from './cohort.ts';
import { readModelRegistry } from './directory.ts';
import { MODEL_SEGMENT, parseManifest } from './manifest.ts';
import { type ModelRegistry, promotionRefused } from './registry.ts';
import type { CriterionResult, ModelChange, RegisteredVersion, RolloutMode } from './types.ts';

export interface GovernanceContext {
  readonly log: ControlLog<ModelChange>;
  /** Where each change is recorded as an audit entry; absent only for library callers (tests, simulator). */
  readonly audit?: ControlAudit;
  readonly clock: Clock;
  /** The model store's folder: `add` copies versions into `<modelsRoot>/<name>/<version>/`. */
  readonly modelsRoot: string;
  /** change_id factory (a ULID by default). */
  readonly newId?: () => string;
}

/** Who makes a change and why: every record carries both. */
export interface ChangeAuthor {
  readonly actor: string;
  readonly reason: string;
}

type ChangeBody = ModelChange extends infer C
  ? C extends ModelChange
    ? Omit<C, 'change_id' | 'model' | 'version' | 'at' | 'actor' | 'reason'>
    : never
  : never;

const nextUlid = monotonicFactory();

const AUDIT_ACTIONS = {
  added: 'model.add',
  approved: 'model.approve',
  rollout: 'model.rollout',
  rollback: 'model.rollback',
  promoted: 'model.promote',
} as const satisfies Record<ModelChange['kind'], string>;

/** The audit action of a model change. */
export const auditActionOfModelChange = (change: ModelChange): string => AUDIT_ACTIONS[change.kind];

/** The audit target of a model change: `model:<name>@<version>/<change_id>`, so evidence pairs the two logs. */
export const auditTargetOfModelChange = (change: ModelChange): string =>
  `model:${change.model}@${change.version}/${change.change_id}`;

const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function requireAuthor(by: ChangeAuthor): void {
  if (by.actor.trim() === '') throw new VigilError('CONFIG_INVALID', 'a model change needs an actor (--by)');
  if (by.reason.trim() === '') throw new VigilError('CONFIG_INVALID', 'a model change needs a reason (--reason)');
}

/** Refuses to change anything while the audit log cannot take an entry; then reads the registry as the log holds it. */
async function prepare(ctx: GovernanceContext, by: ChangeAuthor): Promise<ModelRegistry> {
  requireAuthor(by);
  await ctx.audit?.ready();
  return readModelRegistry(ctx.log);
}

/**
 * Checks the change against the rules (folding it into the caller's fresh registry: throws, nothing appended, when it
 * breaks one), appends it, then records its audit entry.
 */
async function commit(
  ctx: GovernanceContext,
  registry: ModelRegistry,
  model: string,
  version: string,
  by: ChangeAuthor,
  body: ChangeBody,
): Promise<ModelChange> {
  const at = ctx.clock.now();
  const change = {
    change_id: ctx.newId?.() ?? nextUlid(at),
    model,
    version,
    at,
    actor: by.actor,
    reason: by.reason,
    ...body,
  } as ModelChange;
  // What every follower will parse: a change the schema refuses (a reason over its cap) would be skipped everywhere.
  const checked = modelChangeSchema.safeParse(change);
  if (!checked.success) {
    throw new VigilError(
      'CONFIG_INVALID',
      `the ${change.kind} record would not be valid:\n${z.prettifyError(checked.error)}`,
      {
        cause: checked.error,
      },
    );
  }
  registry.apply(change);
  await ctx.log.append(modelChangeKey(change), change);
  if (ctx.audit) {
    const entry = {
      actor: change.actor,
      action: auditActionOfModelChange(change),
      target: auditTargetOfModelChange(change),
      details: change,
      at,
    };
    await ctx.audit.record(entry).catch((error: unknown) => {
      throw new VigilError(
        'AUDIT_UNAVAILABLE',
        `${modelChangeKey(change)} is durable on the model-rollouts log but its audit entry could not be appended ` +
          `(${error instanceof Error ? error.message : String(error)}): the evidence export lists it as unaudited`,
        { cause: error },
      );
    });
  }
  return change;
}

function registered(registry: ModelRegistry, model: string, version: string, action: string): RegisteredVersion {
  const found = registry.version(model, version);
  if (found === undefined) {
    throw new VigilError(
      'MODEL_CHANGE_REFUSED',
      `cannot ${action} ${model}@${version}: no such version in the registry (add it first: vigil models add <dir>)`,
    );
  }
  return found;
}

/** A file the manifest names, inside the version folder, whose bytes match its sha256. */
function readNamedFile(dir: string, entry: string, file: { readonly file: string; readonly sha256: string }): Buffer {
  const path = resolve(dir, file.file);
  const inside = relative(dir, path);
  if (inside === '' || inside.startsWith('..') || inside.startsWith(sep)) {
    throw new VigilError('MODEL_INTEGRITY_FAILED', `${dir}: the manifest's ${entry} file points outside the folder`);
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new VigilError('MODEL_NOT_FOUND', `${dir}: ${entry} file ${file.file} named by the manifest is missing`, {
      cause: error,
    });
  }
  const actual = sha256Hex(bytes);
  if (actual !== file.sha256) {
    throw new VigilError(
      'MODEL_INTEGRITY_FAILED',
      `${dir}: ${entry} ${file.file} has sha256 ${actual}, the manifest says ${file.sha256}`,
    );
  }
  return bytes;
}

/** A version folder as found on disk: its manifest (validated) and the sha256 of what the registry records. */
interface VersionFolder {
  readonly manifest: ModelManifest;
  readonly manifestSha256: string;
  readonly artifactSha256: string;
}

function readVersionFolder(dir: string): VersionFolder {
  const path = join(dir, 'manifest.json');
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new VigilError('MODEL_NOT_FOUND', `${path} does not exist: a version folder holds manifest.json`, {
      cause: error,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new VigilError('MODEL_INTEGRITY_FAILED', `${path} is not JSON`, { cause: error });
  }
  const manifest = parseManifest(json, path);
  const artifact = readNamedFile(dir, 'artifact', manifest.artifact);
  if (manifest.reference !== null) readNamedFile(dir, 'reference', manifest.reference);
  return { manifest, manifestSha256: sha256Hex(bytes), artifactSha256: sha256Hex(artifact) };
}

/** Copies the folder into the store (through a temporary sibling, so a half-copied version is never seen). */
function storeVersionFolder(dir: string, target: string, folder: VersionFolder): void {
  if (resolve(dir) === resolve(target)) return; // added from where the store keeps it
  const label = `${folder.manifest.name}@${folder.manifest.version}`;
  if (existsSync(target)) {
    let stored: VersionFolder;
    try {
      stored = readVersionFolder(target);
    } catch (error) {
      throw new VigilError(
        'MODEL_CHANGE_REFUSED',
        `${label}: ${target} already exists and is not a valid copy of it; move it away first`,
        { cause: error },
      );
    }
    if (stored.artifactSha256 !== folder.artifactSha256 || stored.manifestSha256 !== folder.manifestSha256) {
      throw new VigilError(
        'MODEL_CHANGE_REFUSED',
        `${label}: ${target} already holds other bytes (a new artifact or manifest needs a new version)`,
      );
    }
    return;
  }
  mkdirSync(dirname(target), { recursive: true });
  const temporary = `${target}.adding-${process.pid}`;
  rmSync(temporary, { recursive: true, force: true });
  cpSync(dir, temporary, { recursive: true });
  renameSync(temporary, target);
}

/**
 * Adds a version from its folder (`manifest.json` + the files it names): validated strictly, content-addressed by
 * its artifact's sha256, copied into the store, recorded as `added`.
 *
 * @example
 * const { version } = await addModel(ctx, 'build/deterioration/1.1.0', { actor: 'ml-lead', reason: 'retrained on Q3 data' });
 */
export async function addModel(
  ctx: GovernanceContext,
  dir: string,
  by: ChangeAuthor,
): Promise<{ change: ModelChange; version: RegisteredVersion }> {
  const folder = readVersionFolder(dir);
  const { name, version } = folder.manifest;
  const registry = await prepare(ctx, by);
  const existing = registry.version(name, version);
  if (existing !== undefined) {
    if (existing.artifact_sha256 === folder.artifactSha256 && existing.manifest_sha256 === folder.manifestSha256) {
      const change = registry.history(name).find((c) => c.kind === 'added' && c.version === version)!;
      return { change, version: existing };
    }
    throw new VigilError(
      'MODEL_CHANGE_REFUSED',
      `${name}@${version} is registered with other bytes (artifact ${existing.artifact_sha256}, manifest ` +
        `${existing.manifest_sha256}): a new artifact or manifest needs a new version`,
    );
  }
  storeVersionFolder(dir, join(ctx.modelsRoot, name, version), folder);
  const change = await commit(ctx, registry, name, version, by, {
    kind: 'added',
    artifact_sha256: folder.artifactSha256,
    manifest_sha256: folder.manifestSha256,
    manifest: folder.manifest,
  });
  return { change, version: registry.version(name, version)! };
}

/**
 * Records an approval of a version's artifact by a principal in a role.
 *
 * @example
 * await approveModel(ctx, 'deterioration', '1.1.0', { actor: 'dr-jones', role: 'clinical-safety-officer', reason: 'validation report DR-12' });
 */
export async function approveModel(
  ctx: GovernanceContext,
  model: string,
  version: string,
  options: ChangeAuthor & { readonly role: string },
): Promise<ModelChange> {
  if (options.role.trim() === '') throw new VigilError('CONFIG_INVALID', 'an approval needs a role (--role)');
  const registry = await prepare(ctx, options);
  const target = registered(registry, model, version, 'approve');
  return commit(ctx, registry, model, version, options, {
    kind: 'approved',
    artifact_sha256: target.artifact_sha256,
    role: options.role,
  });
}

/**
 * Routes a version: `live` (replaces the live version), `canary` (for `percent`% of the cohort's patients; default
 * 100), or `shadow` (scored and stored beside live, never clinical). Live and canary need an approval.
 *
 * @example
 * await rolloutModel(ctx, 'deterioration', '1.1.0', { mode: 'canary', percent: 10, cohortExpr: 'site=site-01', actor: 'ml-lead', reason: 'canary at one site' });
 */
export async function rolloutModel(
  ctx: GovernanceContext,
  model: string,
  version: string,
  options: ChangeAuthor & { readonly mode: RolloutMode; readonly percent?: number; readonly cohortExpr?: string },
): Promise<ModelChange> {
  const cohort = parseCohort(options.cohortExpr ?? '');
  const percent = options.percent ?? 100;
  if (!(percent > 0 && percent <= 100)) {
    throw new VigilError('CONFIG_INVALID', `--percent must be in (0, 100]: got ${percent}`);
  }
  if (options.mode !== 'canary' && (percent !== 100 || formatCohort(cohort) !== '')) {
    throw new VigilError(
      'CONFIG_INVALID',
      `a ${options.mode} rollout runs for every patient: --percent and --cohort are for a canary only`,
    );
  }
  const registry = await prepare(ctx, options);
  registered(registry, model, version, `roll out (${options.mode})`);
  const approval = registry.latestApproval(model, version);
  if (approval === undefined && options.mode !== 'shadow') {
    throw new VigilError(
      'MODEL_CHANGE_REFUSED',
      `${model}@${version} has no approval: it may run in shadow only until approved (vigil models approve)`,
    );
  }
  return commit(ctx, registry, model, version, options, {
    kind: 'rollout',
    mode: options.mode,
    percent,
    cohort,
    cohort_expr: formatCohort(cohort),
    approval_id: approval?.change_id ?? null,
  });
}

/**
 * Takes a version out of routing: by default the canary if one runs, else the live version, which the previous live
 * version replaces (none: the model has no live version left and its pipeline default scores it).
 *
 * @example
 * await rollbackModel(ctx, 'deterioration', { actor: 'ml-lead', reason: 'agreement fell at site-01' });
 */
export async function rollbackModel(
  ctx: GovernanceContext,
  model: string,
  options: ChangeAuthor & {
    readonly version?: string;
    readonly trigger?: 'manual' | 'drift';
    readonly evidence?: Readonly<Record<string, unknown>>;
  },
): Promise<ModelChange> {
  if (!MODEL_SEGMENT.test(model)) throw new VigilError('CONFIG_INVALID', `not a model name: ${JSON.stringify(model)}`);
  const registry = await prepare(ctx, options);
  const route = registry.route(model);
  const slotOf = (version: string): RolloutMode | undefined => {
    if (route?.live?.version === version) return 'live';
    if (route?.canary?.version === version) return 'canary';
    if (route?.shadows.some((s) => s.version === version)) return 'shadow';
    return undefined;
  };
  const version = options.version ?? route?.canary?.version ?? route?.live?.version;
  if (version === undefined) {
    throw new VigilError('MODEL_CHANGE_REFUSED', `${model}: nothing to roll back (no canary and no live version)`);
  }
  const fromMode = slotOf(version);
  if (fromMode === undefined) {
    throw new VigilError('MODEL_CHANGE_REFUSED', `${model}@${version} is not routed: nothing to roll back`);
  }
  return commit(ctx, registry, model, version, options, {
    kind: 'rollback',
    from_mode: fromMode,
    restored: fromMode === 'live' ? registry.previousLive(model) : null,
    trigger: options.trigger ?? 'manual',
    evidence: options.evidence ?? null,
  });
}

/**
 * Makes a version live after its acceptance criteria held on its shadow or canary period (`criteria` as evaluated by
 * governance/promotion.ts). Refuses, PROMOTION_REFUSED naming each failed criterion, when any failed, when none was
 * evaluated, when the version has no approval, or when the live version is no longer the one the criteria compared
 * with (`liveVersion`).
 *
 * @example
 * await promoteModel(ctx, 'deterioration', '1.1.0', { actor: 'ml-lead', reason: 'criteria met', criteria, period: { from, to } });
 */
export async function promoteModel(
  ctx: GovernanceContext,
  model: string,
  version: string,
  options: ChangeAuthor & {
    readonly criteria: readonly CriterionResult[];
    readonly period: { readonly from: number; readonly to: number };
    /**
     * The live version the criteria compared the candidate with (null: none). When given, the promotion is refused if
     * the registry's live version is another by now (an operator changed it meanwhile): the criteria no longer hold
     * for the version the promotion would replace.
     */
    readonly liveVersion?: string | null;
  },
): Promise<ModelChange> {
  const failed = options.criteria.filter((c) => !c.passed);
  if (failed.length > 0) throw promotionRefused(model, version, failed);
  if (options.criteria.length === 0) {
    throw new VigilError('PROMOTION_REFUSED', `promotion of ${model}@${version} refused: no criterion was evaluated`);
  }
  const registry = await prepare(ctx, options);
  registered(registry, model, version, 'promote');
  const approval = registry.latestApproval(model, version);
  if (approval === undefined) {
    throw new VigilError(
      'PROMOTION_REFUSED',
      `promotion of ${model}@${version} refused: the version has no approval (vigil models approve)`,
    );
  }
  const live = registry.route(model)?.live?.version ?? null;
  if (options.liveVersion !== undefined && options.liveVersion !== live) {
    throw new VigilError(
      'PROMOTION_REFUSED',
      `promotion of ${model}@${version} refused: its criteria were evaluated against live ` +
        `${options.liveVersion ?? '(none)'}, but the live version is now ${live ?? '(none)'}: evaluate them again`,
    );
  }
  return commit(ctx, registry, model, version, options, {
    kind: 'promoted',
    previous: live,
    approval_id: approval.change_id,
    criteria: options.criteria,
    period: options.period,
  });
}
