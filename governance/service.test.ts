/**
 * The governance operations over a real file control log in a temporary folder and a recording audit port: each
 * operation appends one record and one audit entry; a refusal appends nothing; `add` copies the version folder into
 * the store and is content-addressed.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileControlLog } from '../adapters/file/control-log.ts';
import type { ControlAudit, ControlChange } from '../identity/service.ts';
import { ManualClock } from '../runtime/clock.ts';
import { VigilError } from '../runtime/errors.ts';
import type { ModelManifest } from '../runtime/models.ts';
import { parseModelChange } from './changes.ts';
import { readModelRegistry } from './directory.ts';
import {
  addModel,
  approveModel,
  type GovernanceContext,
  promoteModel,
  rollbackModel,
  rolloutModel,
} from './service.ts';
import { sampleManifest } from './testing.ts';
import type { CriterionResult, ModelChange } from './types.ts';

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

let work: string;
let log: FileControlLog<ModelChange>;
let audit: ControlAudit & { entries: ControlChange[]; unavailable: boolean };
let ctx: GovernanceContext;
const clock = new ManualClock(Date.UTC(2026, 10, 1));
const by = { actor: 'ml-lead', reason: 'test' };
const pass: CriterionResult = { criterion: 'min_inferences', required: '>= 100', observed: '150', passed: true };

/** Writes a version folder (a stand-in artifact: `add` hashes it, never runs it) and returns its path. */
function versionFolder(
  version: string,
  artifact = `onnx bytes of ${version}`,
  over: Partial<ModelManifest> = {},
): string {
  const dir = join(work, 'build', version);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), artifact);
  const manifest = sampleManifest('det', version, {
    artifact: { file: 'model.onnx', sha256: sha256(artifact) },
    ...over,
  });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

function records(): ModelChange[] {
  if (!existsSync(log.path)) return [];
  return readFileSync(log.path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const { key, value } = JSON.parse(line) as { key: string; value: unknown };
      const change = parseModelChange(value);
      expect(key).toBe(`${change.model}/${change.change_id}`);
      return change;
    });
}

/** Expects the operation to be refused with `code`, and nothing appended to either log. */
async function refused(operation: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const before = { log: records().length, audit: audit.entries.length };
  const error = await operation.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VigilError);
  expect((error as VigilError).code).toBe(code);
  expect((error as VigilError).message).toMatch(message);
  expect({ log: records().length, audit: audit.entries.length }).toEqual(before);
}

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'vigil-governance-'));
  log = new FileControlLog(join(work, 'control', 'model-rollouts.jsonl'), { parse: parseModelChange });
  audit = {
    entries: [],
    unavailable: false,
    async ready() {
      if (this.unavailable) throw new Error('audit store unreachable');
    },
    async record(change) {
      this.entries.push(change);
    },
  };
  ctx = { log, audit, clock, modelsRoot: join(work, 'models') };
});

afterEach(async () => {
  await log.close();
  rmSync(work, { recursive: true, force: true });
});

describe('addModel', () => {
  it('validates, copies the folder into the store, appends one record and one audit entry', async () => {
    const dir = versionFolder('1.0.0');
    const { change, version } = await addModel(ctx, dir, by);
    expect(change.kind).toBe('added');
    expect(version.artifact_sha256).toBe(sha256('onnx bytes of 1.0.0'));
    expect(version.manifest_sha256).toBe(sha256(readFileSync(join(dir, 'manifest.json'))));
    expect(readFileSync(join(work, 'models', 'det', '1.0.0', 'model.onnx'), 'utf8')).toBe('onnx bytes of 1.0.0');
    expect(records()).toEqual([change]);
    expect(audit.entries).toEqual([
      {
        actor: 'ml-lead',
        action: 'model.add',
        target: `model:det@1.0.0/${change.change_id}`,
        details: change,
        at: clock.now(),
      },
    ]);
  });

  it('is a no-op for the same bytes again, and refuses other bytes under the same version', async () => {
    const first = await addModel(ctx, versionFolder('1.0.0'), by);
    const again = await addModel(ctx, versionFolder('1.0.0'), by);
    expect(again.change).toEqual(first.change);
    expect(records()).toHaveLength(1);
    expect(audit.entries).toHaveLength(1);
    await refused(addModel(ctx, versionFolder('1.0.0', 'other bytes'), by), 'MODEL_CHANGE_REFUSED', /other bytes/);
  });

  it('refuses a folder already in the store with other bytes, a tampered artifact, an invalid manifest', async () => {
    mkdirSync(join(work, 'models', 'det', '2.0.0'), { recursive: true });
    writeFileSync(join(work, 'models', 'det', '2.0.0', 'manifest.json'), '{}');
    await refused(addModel(ctx, versionFolder('2.0.0'), by), 'MODEL_CHANGE_REFUSED', /already exists/);

    const dir = versionFolder('3.0.0');
    writeFileSync(join(dir, 'model.onnx'), 'tampered');
    await refused(addModel(ctx, dir, by), 'MODEL_INTEGRITY_FAILED', /sha256/);

    const bad = versionFolder('4.0.0');
    const manifest = JSON.parse(readFileSync(join(bad, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(bad, 'manifest.json'), JSON.stringify({ ...manifest, surprise: true }));
    await refused(addModel(ctx, bad, by), 'MODEL_INTEGRITY_FAILED', /surprise/);
    expect(existsSync(join(work, 'models', 'det', '4.0.0'))).toBe(false);
  });

  it('adds a version from where the store keeps it, without copying it onto itself', async () => {
    const dir = versionFolder('1.0.0');
    const inStore = join(work, 'models', 'det', '1.0.0');
    mkdirSync(join(work, 'models', 'det'), { recursive: true });
    renameSync(dir, inStore);
    const { version } = await addModel(ctx, inStore, by);
    expect(version.artifact_sha256).toBe(sha256('onnx bytes of 1.0.0'));
    expect(readdirSync(join(work, 'models', 'det'))).toEqual(['1.0.0']);
  });

  it('refuses the same artifact under a changed manifest (the manifest is part of what is approved)', async () => {
    await addModel(ctx, versionFolder('1.0.0'), by);
    const dir = versionFolder('1.0.0', 'onnx bytes of 1.0.0', { intended_use: 'Something else entirely.' });
    await refused(addModel(ctx, dir, by), 'MODEL_CHANGE_REFUSED', /other bytes/);
  });

  it('fails naming the change when its audit entry cannot be appended after it is durable', async () => {
    audit.record = async () => {
      throw new Error('store down');
    };
    const error = await addModel(ctx, versionFolder('1.0.0'), by).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    const [change] = records();
    expect((error as Error).message).toContain(`det/${change!.change_id} is durable`);
  });

  it('changes nothing while the audit log cannot take an entry', async () => {
    audit.unavailable = true;
    await expect(addModel(ctx, versionFolder('1.0.0'), by)).rejects.toThrow(/unreachable/);
    expect(records()).toEqual([]);
    expect(existsSync(join(work, 'models', 'det', '1.0.0'))).toBe(false);
  });
});

describe('approve, rollout, rollback, promote', () => {
  it('records each operation once in the log and the audit log, in order, with its actor', async () => {
    await addModel(ctx, versionFolder('1.0.0'), by);
    await addModel(ctx, versionFolder('1.1.0'), by);
    const approval = await approveModel(ctx, 'det', '1.0.0', { actor: 'dr-jones', role: 'cso', reason: 'DR-12' });
    await rolloutModel(ctx, 'det', '1.0.0', { mode: 'live', ...by });
    await rolloutModel(ctx, 'det', '1.1.0', { mode: 'shadow', ...by });
    await approveModel(ctx, 'det', '1.1.0', { actor: 'dr-jones', role: 'cso', reason: 'DR-13' });
    await rollbackModel(ctx, 'det', { version: '1.1.0', ...by });
    const canary = await rolloutModel(ctx, 'det', '1.1.0', {
      mode: 'canary',
      percent: 10,
      cohortExpr: 'firmware=2.1.0 and site=site-01',
      ...by,
    });
    const promotion = await promoteModel(ctx, 'det', '1.1.0', { ...by, criteria: [pass], period: { from: 0, to: 1 } });

    const logged = records();
    expect(logged.map((c) => [c.kind, c.version, c.actor])).toEqual([
      ['added', '1.0.0', 'ml-lead'],
      ['added', '1.1.0', 'ml-lead'],
      ['approved', '1.0.0', 'dr-jones'],
      ['rollout', '1.0.0', 'ml-lead'],
      ['rollout', '1.1.0', 'ml-lead'],
      ['approved', '1.1.0', 'dr-jones'],
      ['rollback', '1.1.0', 'ml-lead'],
      ['rollout', '1.1.0', 'ml-lead'],
      ['promoted', '1.1.0', 'ml-lead'],
    ]);
    expect(audit.entries.map((e) => e.action)).toEqual([
      'model.add',
      'model.add',
      'model.approve',
      'model.rollout',
      'model.rollout',
      'model.approve',
      'model.rollback',
      'model.rollout',
      'model.promote',
    ]);
    expect(audit.entries.map((e) => e.target)).toEqual(logged.map((c) => `model:det@${c.version}/${c.change_id}`));
    expect(canary).toMatchObject({
      cohort: { sites: ['site-01'], firmware: ['2.1.0'] },
      cohort_expr: 'site=site-01 and firmware=2.1.0',
    });
    expect(logged[3]).toMatchObject({ kind: 'rollout', approval_id: approval.change_id });
    expect(promotion).toMatchObject({ kind: 'promoted', previous: '1.0.0' });

    const registry = await readModelRegistry(log);
    expect(registry.route('det')).toMatchObject({
      live: { version: '1.1.0', rollout_id: promotion.change_id },
      canary: null,
    });
  });

  it('refuses live and canary of an unapproved version, and appends nothing', async () => {
    await addModel(ctx, versionFolder('1.0.0'), by);
    await refused(rolloutModel(ctx, 'det', '1.0.0', { mode: 'live', ...by }), 'MODEL_CHANGE_REFUSED', /no approval/);
    await refused(
      rolloutModel(ctx, 'det', '1.0.0', { mode: 'canary', percent: 10, ...by }),
      'MODEL_CHANGE_REFUSED',
      /shadow only/,
    );
    await refused(
      rolloutModel(ctx, 'det', '9.0.0', { mode: 'shadow', ...by }),
      'MODEL_CHANGE_REFUSED',
      /no such version/,
    );
    await refused(approveModel(ctx, 'det', '9.0.0', { ...by, role: 'cso' }), 'MODEL_CHANGE_REFUSED', /no such version/);
    await refused(
      rolloutModel(ctx, 'det', '1.0.0', { mode: 'shadow', percent: 10, ...by }),
      'CONFIG_INVALID',
      /canary only/,
    );
    await refused(
      rolloutModel(ctx, 'det', '1.0.0', { mode: 'canary', cohortExpr: 'ward=1', ...by }),
      'CONFIG_INVALID',
      /ward/,
    );
    await refused(
      rolloutModel(ctx, 'det', '1.0.0', { mode: 'shadow', actor: '', reason: 'x' }),
      'CONFIG_INVALID',
      /actor/,
    );
    await refused(
      rolloutModel(ctx, 'det', '1.0.0', { mode: 'shadow', actor: 'ml-lead', reason: 'x'.repeat(5000) }),
      'CONFIG_INVALID',
      /would not be valid[\s\S]*reason/,
    );
  });

  it('rolls back the canary by default, then the live version restoring the previous one', async () => {
    await addModel(ctx, versionFolder('1.0.0'), by);
    await addModel(ctx, versionFolder('1.1.0'), by);
    await addModel(ctx, versionFolder('1.2.0'), by);
    for (const v of ['1.0.0', '1.1.0', '1.2.0']) await approveModel(ctx, 'det', v, { ...by, role: 'cso' });
    await rolloutModel(ctx, 'det', '1.0.0', { mode: 'live', ...by });
    await rolloutModel(ctx, 'det', '1.1.0', { mode: 'live', ...by });
    await rolloutModel(ctx, 'det', '1.2.0', { mode: 'canary', percent: 10, ...by });

    const first = await rollbackModel(ctx, 'det', { ...by, trigger: 'drift', evidence: { spo2: 0.4 } });
    expect(first).toMatchObject({
      version: '1.2.0',
      from_mode: 'canary',
      restored: null,
      trigger: 'drift',
      evidence: { spo2: 0.4 },
    });
    const second = await rollbackModel(ctx, 'det', by);
    expect(second).toMatchObject({ version: '1.1.0', from_mode: 'live', restored: '1.0.0', trigger: 'manual' });
    expect((await readModelRegistry(log)).route('det')!.live!.version).toBe('1.0.0');
    await refused(rollbackModel(ctx, 'det', { ...by, version: '1.2.0' }), 'MODEL_CHANGE_REFUSED', /not routed/);
    await rollbackModel(ctx, 'det', by);
    await refused(rollbackModel(ctx, 'det', by), 'MODEL_CHANGE_REFUSED', /nothing to roll back/);
  });

  it('refuses a promotion whose criteria were evaluated against another live version than the one it replaces', async () => {
    for (const version of ['1.0.0', '1.1.0', '1.2.0']) {
      await addModel(ctx, versionFolder(version), by);
      await approveModel(ctx, 'det', version, { actor: 'dr-jones', role: 'cso', reason: 'DR-12' });
    }
    await rolloutModel(ctx, 'det', '1.0.0', { mode: 'live', ...by });
    await rolloutModel(ctx, 'det', '1.2.0', { mode: 'shadow', ...by });
    // The criteria were evaluated against live 1.0.0; meanwhile another operator made 1.1.0 live.
    await rolloutModel(ctx, 'det', '1.1.0', { mode: 'live', ...by });
    const period = { from: 0, to: 1 };
    await refused(
      promoteModel(ctx, 'det', '1.2.0', { ...by, criteria: [pass], period, liveVersion: '1.0.0' }),
      'PROMOTION_REFUSED',
      /evaluated against live 1\.0\.0.*live version is now 1\.1\.0/,
    );
    const promotion = await promoteModel(ctx, 'det', '1.2.0', {
      ...by,
      criteria: [pass],
      period,
      liveVersion: '1.1.0',
    });
    expect(promotion).toMatchObject({ kind: 'promoted', previous: '1.1.0' });
  });

  it('refuses a promotion naming each failed criterion, without criteria, or without approval', async () => {
    await addModel(ctx, versionFolder('1.0.0'), by);
    const failedA = { criterion: 'min_agreement_with_live', required: '>= 0.9', observed: '0.71', passed: false };
    const failedB = { criterion: 'calibration.ece_max', required: '<= 0.05', observed: '0.08', passed: false };
    const period = { from: 0, to: 1 };
    await refused(
      promoteModel(ctx, 'det', '1.0.0', { ...by, criteria: [pass, failedA, failedB], period }),
      'PROMOTION_REFUSED',
      /min_agreement_with_live \(required >= 0.9, observed 0.71\); calibration.ece_max/,
    );
    await refused(
      promoteModel(ctx, 'det', '1.0.0', { ...by, criteria: [], period }),
      'PROMOTION_REFUSED',
      /no criterion/,
    );
    await refused(
      promoteModel(ctx, 'det', '1.0.0', { ...by, criteria: [pass], period }),
      'PROMOTION_REFUSED',
      /no approval/,
    );
  });
});
