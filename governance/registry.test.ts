/**
 * The registry's folding rules: approval before live or canary, shadow unapproved, one canary, live replaces live and
 * remembers the previous for rollback, rollbacks of each slot, promotion, history in log order; a refused change
 * changes nothing.
 */
import { monotonicFactory } from 'ulid';
import { beforeEach, describe, expect, it } from 'vitest';
import { VigilError } from '../runtime/errors.ts';
import { parseCohort } from './cohort.ts';
import { ModelRegistry } from './registry.ts';
import { sampleManifest } from './testing.ts';
import type { CriterionResult, ModelChange, RolloutMode } from './types.ts';

const ulid = monotonicFactory();
const MODEL = 'det';
const shaOf = (version: string) => version.replaceAll('.', '').padEnd(64, 'e').slice(0, 64);
let at = 0;
const base = (version: string) => ({
  change_id: ulid(1_000 + at),
  model: MODEL,
  version,
  at: ++at,
  actor: 'ml-lead',
  reason: 'test',
});

function added(version: string, sha = shaOf(version)): ModelChange {
  const manifest = sampleManifest(MODEL, version, { artifact: { file: 'model.onnx', sha256: sha } });
  return { ...base(version), kind: 'added', artifact_sha256: sha, manifest_sha256: 'c'.repeat(64), manifest };
}
function approved(version: string, sha = shaOf(version)): ModelChange {
  return { ...base(version), kind: 'approved', artifact_sha256: sha, role: 'clinical-safety-officer' };
}
function rollout(
  version: string,
  mode: RolloutMode,
  approvalId: string | null,
  percent = 100,
  cohortExpr = '',
): ModelChange {
  return {
    ...base(version),
    kind: 'rollout',
    mode,
    percent,
    cohort: parseCohort(cohortExpr),
    cohort_expr: cohortExpr,
    approval_id: approvalId,
  };
}
function rollback(version: string, fromMode: RolloutMode, restored: string | null): ModelChange {
  return { ...base(version), kind: 'rollback', from_mode: fromMode, restored, trigger: 'manual', evidence: null };
}
function promoted(
  version: string,
  approvalId: string,
  previous: string | null,
  criteria: CriterionResult[],
): ModelChange {
  return {
    ...base(version),
    kind: 'promoted',
    previous,
    approval_id: approvalId,
    criteria,
    period: { from: 0, to: 10 },
  };
}
const pass: CriterionResult = { criterion: 'min_inferences', required: '>= 100', observed: '150', passed: true };

let registry: ModelRegistry;
/** Applies a change and returns its id. */
const apply = (change: ModelChange): string => {
  registry.apply(change);
  return change.change_id;
};
/** Adds and approves a version; returns the approval's id. */
const addApproved = (version: string): string => {
  apply(added(version));
  return apply(approved(version));
};

function refusedWith(change: ModelChange, code: string, message: RegExp): void {
  const before = { revision: registry.revision, route: registry.route(MODEL), versions: registry.versions(MODEL) };
  let error: unknown;
  try {
    registry.apply(change);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(VigilError);
  expect((error as VigilError).code).toBe(code);
  expect((error as VigilError).message).toMatch(message);
  // Nothing changed.
  expect({ revision: registry.revision, route: registry.route(MODEL), versions: registry.versions(MODEL) }).toEqual(
    before,
  );
}

beforeEach(() => {
  registry = new ModelRegistry();
});

describe('ModelRegistry: versions and approvals', () => {
  it('registers versions in order and keeps their approvals', () => {
    apply(added('1.0.0'));
    const approval = apply(approved('1.0.0'));
    apply(added('1.1.0'));
    expect(registry.models()).toEqual([MODEL]);
    expect(registry.versions(MODEL).map((v) => v.version)).toEqual(['1.0.0', '1.1.0']);
    expect(registry.version(MODEL, '1.0.0')!.approvals.map((a) => [a.change_id, a.role])).toEqual([
      [approval, 'clinical-safety-officer'],
    ]);
    expect(registry.version(MODEL, '1.1.0')!.approvals).toEqual([]);
    expect(registry.route(MODEL)).toBeUndefined();
  });

  it('refuses a version added twice, other bytes under a registered version, and an approval of other bytes', () => {
    apply(added('1.0.0'));
    refusedWith(added('1.0.0'), 'MODEL_CHANGE_REFUSED', /already registered/);
    refusedWith(added('1.0.0', 'f'.repeat(64)), 'MODEL_CHANGE_REFUSED', /registered with other bytes/);
    refusedWith(approved('1.0.0', 'f'.repeat(64)), 'MODEL_CHANGE_REFUSED', /approves artifact/);
    refusedWith(approved('9.9.9'), 'MODEL_CHANGE_REFUSED', /no such version/);
  });

  it('applies a change id once', () => {
    const change = added('1.0.0');
    expect(registry.apply(change)).toBe('applied');
    expect(registry.apply(change)).toBe('duplicate');
    expect(registry.history()).toHaveLength(1);
  });
});

describe('ModelRegistry: rollouts', () => {
  it('needs an approval for live and canary, and lets an unapproved version run in shadow', () => {
    apply(added('1.0.0'));
    refusedWith(rollout('1.0.0', 'live', null), 'MODEL_CHANGE_REFUSED', /needs an approval/);
    refusedWith(rollout('1.0.0', 'canary', null, 10), 'MODEL_CHANGE_REFUSED', /needs an approval/);
    const shadowId = apply(rollout('1.0.0', 'shadow', null));
    expect(registry.route(MODEL)).toEqual({
      model: MODEL,
      live: null,
      canary: null,
      shadows: [{ version: '1.0.0', rollout_id: shadowId, approved: false, artifact_sha256: shaOf('1.0.0') }],
    });
    // An approval that arrives later shows on the route.
    apply(approved('1.0.0'));
    expect(registry.route(MODEL)!.shadows[0]!.approved).toBe(true);
  });

  it("refuses an approval id that is not the version's", () => {
    const other = addApproved('1.0.0');
    apply(added('1.1.0'));
    refusedWith(rollout('1.1.0', 'live', other), 'MODEL_CHANGE_REFUSED', /not one of this version/);
  });

  it('keeps one canary: a new canary replaces it, the same version again changes its percent and cohort', () => {
    const a = addApproved('1.1.0');
    const b = addApproved('1.2.0');
    apply(rollout('1.1.0', 'canary', a, 10, 'site=site-01'));
    const second = apply(rollout('1.2.0', 'canary', b, 5));
    expect(registry.route(MODEL)!.canary).toMatchObject({ version: '1.2.0', rollout_id: second, percent: 5 });
    const third = apply(rollout('1.2.0', 'canary', b, 20, 'site=site-02'));
    expect(registry.route(MODEL)!.canary).toEqual({
      version: '1.2.0',
      rollout_id: third,
      approved: true,
      artifact_sha256: shaOf('1.2.0'),
      percent: 20,
      cohort: { sites: ['site-02'] },
      cohort_expr: 'site=site-02',
    });
  });

  it('refuses a cohort or percent on live and shadow', () => {
    const a = addApproved('1.0.0');
    refusedWith(rollout('1.0.0', 'live', a, 50), 'MODEL_CHANGE_REFUSED', /runs for everyone/);
    refusedWith(rollout('1.0.0', 'shadow', a, 100, 'site=x'), 'MODEL_CHANGE_REFUSED', /runs for everyone/);
  });

  it('live replaces live, remembers the previous, and takes the version out of canary or shadow', () => {
    const a = addApproved('1.0.0');
    const b = addApproved('1.1.0');
    apply(rollout('1.0.0', 'live', a));
    apply(rollout('1.1.0', 'canary', b, 10));
    const live2 = apply(rollout('1.1.0', 'live', b));
    const route = registry.route(MODEL)!;
    expect(route.live).toEqual({
      version: '1.1.0',
      rollout_id: live2,
      approved: true,
      artifact_sha256: shaOf('1.1.0'),
    });
    expect(route.canary).toBeNull();
    expect(registry.previousLive(MODEL)).toBe('1.0.0');
    refusedWith(rollout('1.1.0', 'live', b), 'MODEL_CHANGE_REFUSED', /already live/);
    refusedWith(rollout('1.1.0', 'shadow', b), 'MODEL_CHANGE_REFUSED', /is live/);
    refusedWith(rollout('1.1.0', 'canary', b, 10), 'MODEL_CHANGE_REFUSED', /is live/);
  });

  it('refuses a second shadow of the same version and a shadow of the canary', () => {
    const a = addApproved('1.1.0');
    apply(added('1.2.0'));
    apply(rollout('1.2.0', 'shadow', null));
    refusedWith(rollout('1.2.0', 'shadow', null), 'MODEL_CHANGE_REFUSED', /already in shadow/);
    apply(rollout('1.1.0', 'canary', a, 10));
    refusedWith(rollout('1.1.0', 'shadow', a), 'MODEL_CHANGE_REFUSED', /is the canary/);
  });
});

describe('ModelRegistry: rollbacks', () => {
  it('rolls back a canary and a shadow, leaving the live version', () => {
    const a = addApproved('1.0.0');
    const b = addApproved('1.1.0');
    apply(added('1.2.0'));
    apply(rollout('1.0.0', 'live', a));
    apply(rollout('1.1.0', 'canary', b, 10));
    apply(rollout('1.2.0', 'shadow', null));
    apply(rollback('1.1.0', 'canary', null));
    expect(registry.route(MODEL)!.canary).toBeNull();
    apply(rollback('1.2.0', 'shadow', null));
    expect(registry.route(MODEL)!.shadows).toEqual([]);
    expect(registry.route(MODEL)!.live!.version).toBe('1.0.0');
    refusedWith(rollback('1.1.0', 'canary', null), 'MODEL_CHANGE_REFUSED', /not the canary/);
    refusedWith(rollback('1.2.0', 'shadow', null), 'MODEL_CHANGE_REFUSED', /not in shadow/);
  });

  it('rolls back live to the previous live version, then to none (the model is unrouted)', () => {
    const a = addApproved('1.0.0');
    const b = addApproved('1.1.0');
    apply(rollout('1.0.0', 'live', a));
    apply(rollout('1.1.0', 'live', b));
    refusedWith(rollback('1.1.0', 'live', null), 'MODEL_CHANGE_REFUSED', /previous live version is 1.0.0/);
    refusedWith(rollback('1.0.0', 'live', null), 'MODEL_CHANGE_REFUSED', /not live/);
    const back = apply(rollback('1.1.0', 'live', '1.0.0'));
    expect(registry.route(MODEL)!.live).toEqual({
      version: '1.0.0',
      rollout_id: back,
      approved: true,
      artifact_sha256: shaOf('1.0.0'),
    });
    expect(registry.previousLive(MODEL)).toBeNull();
    apply(rollback('1.0.0', 'live', null));
    expect(registry.route(MODEL)).toBeUndefined();
  });

  it('restores a previous live version that was since put in shadow, taking it out of shadow', () => {
    const a = addApproved('1.0.0');
    const b = addApproved('1.1.0');
    apply(rollout('1.0.0', 'live', a));
    apply(rollout('1.1.0', 'live', b));
    apply(rollout('1.0.0', 'shadow', a));
    apply(rollback('1.1.0', 'live', '1.0.0'));
    expect(registry.route(MODEL)!.live!.version).toBe('1.0.0');
    expect(registry.route(MODEL)!.shadows).toEqual([]);
  });
});

describe('ModelRegistry: promotion', () => {
  it('promotes an approved version whose criteria all passed, replacing the live one', () => {
    const a = addApproved('1.0.0');
    const b = addApproved('1.1.0');
    apply(rollout('1.0.0', 'live', a));
    apply(rollout('1.1.0', 'shadow', b));
    const promotion = apply(promoted('1.1.0', b, '1.0.0', [pass]));
    const route = registry.route(MODEL)!;
    expect(route.live).toEqual({
      version: '1.1.0',
      rollout_id: promotion,
      approved: true,
      artifact_sha256: shaOf('1.1.0'),
    });
    expect(route.shadows).toEqual([]);
    expect(registry.previousLive(MODEL)).toBe('1.0.0');
  });

  it('refuses a failed criterion (naming it), a missing approval, a stale previous', () => {
    const a = addApproved('1.0.0');
    const b = addApproved('1.1.0');
    apply(rollout('1.0.0', 'live', a));
    const failed = { criterion: 'calibration.ece_max', required: '<= 0.05', observed: '0.09', passed: false };
    refusedWith(
      promoted('1.1.0', b, '1.0.0', [pass, failed]),
      'PROMOTION_REFUSED',
      /calibration.ece_max \(required <= 0.05, observed 0.09\)/,
    );
    refusedWith(promoted('1.1.0', a, '1.0.0', [pass]), 'PROMOTION_REFUSED', /not one of this version/);
    refusedWith(promoted('1.1.0', b, null, [pass]), 'MODEL_CHANGE_REFUSED', /live version is 1.0.0/);
  });
});

describe('ModelRegistry: history, table and listeners', () => {
  it('keeps the history in log order, per model or all; the table revision counts applied changes', () => {
    const ids = [apply(added('1.0.0'))];
    ids.push(apply(approved('1.0.0')));
    const other = {
      ...added('2.0.0'),
      model: 'other',
      manifest: sampleManifest('other', '2.0.0', { artifact: { file: 'model.onnx', sha256: shaOf('2.0.0') } }),
    };
    ids.push(apply(other));
    ids.push(apply(rollout('1.0.0', 'live', ids[1]!)));
    expect(registry.history().map((c) => c.change_id)).toEqual(ids);
    expect(registry.history(MODEL).map((c) => c.kind)).toEqual(['added', 'approved', 'rollout']);
    expect(registry.routingTable().revision).toBe(4);
  });

  it('serves a snapshot table and calls listeners after each applied change only', () => {
    const a = addApproved('1.0.0');
    const seen: string[] = [];
    const unsubscribe = registry.onChange((change) =>
      seen.push(`${change.kind}:${registry.route(MODEL)?.live?.version}`),
    );
    const before = registry.routingTable();
    apply(rollout('1.0.0', 'live', a));
    expect(() => registry.apply(rollout('1.0.0', 'live', a))).toThrow(VigilError);
    expect(seen).toEqual(['rollout:1.0.0']);
    expect(before.route(MODEL)).toBeUndefined();
    expect(registry.routingTable().route(MODEL)!.live!.version).toBe('1.0.0');
    expect(registry.routingTable()).toBe(registry.routingTable());
    unsubscribe();
    apply(rollback('1.0.0', 'live', null));
    expect(seen).toHaveLength(1);
  });
});

describe('ModelRegistry: records that must not route (review)', () => {
  it('refuses a promotion that names no criterion: no evidence is not a pass', () => {
    const a = addApproved('1.0.0');
    const b = addApproved('1.1.0');
    apply(rollout('1.0.0', 'live', a));
    refusedWith(promoted('1.1.0', b, '1.0.0', []), 'PROMOTION_REFUSED', /no criterion/);
  });

  it('refuses a canary whose cohort text is not its cohort (the record would show one cohort and route another)', () => {
    const a = addApproved('1.1.0');
    const lying = { ...rollout('1.1.0', 'canary', a, 10, 'site=site-01'), cohort: {} } as ModelChange;
    refusedWith(lying, 'MODEL_CHANGE_REFUSED', /cohort/);
  });

  it('decides a change id once: a refused record repeated later, when it would now hold, changes nothing', () => {
    const a = addApproved('1.0.0');
    const b = addApproved('1.1.0');
    apply(rollout('1.0.0', 'live', a));
    apply(rollout('1.1.0', 'live', b));
    // A stale rollback (it restores nothing while 1.0.0 is the previous live version) is refused...
    const stale = rollback('1.1.0', 'live', null);
    expect(() => registry.apply(stale)).toThrow(VigilError);
    // ...and stays refused when seen again after the state moved on to where it would hold (1.1.0 live, nothing before).
    apply(rollback('1.1.0', 'live', '1.0.0'));
    apply(rollback('1.0.0', 'live', null));
    apply(rollout('1.1.0', 'live', b));
    const before = registry.route(MODEL);
    expect(registry.apply(stale)).toBe('duplicate');
    expect(registry.route(MODEL)).toEqual(before);
    expect(registry.history().map((c) => c.change_id)).not.toContain(stale.change_id);
  });
});
