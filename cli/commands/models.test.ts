/**
 * `vigil models` in the embedded mode (--control-dir: the file log, a temporary models root and audit log, an
 * embedded store): add -> approve -> rollout -> promote refused on too few inferences, then accepted when the
 * criteria hold; the refusals and their error codes (main.ts maps CONFIG_INVALID to exit 2, the rest to 1); the
 * `--json` keys of list, show and promote; every change an audit entry. The commands run in-process on a fresh
 * commander program each, as cli/main.ts registers them.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { generateAuditKeys } from '../../audit/keys.ts';
import { sampleManifest } from '../../governance/testing.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { AcceptanceCriteria } from '../../runtime/models.ts';
import { registerModels } from './models.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 2);
const iso = (ms: number) => new Date(ms).toISOString();

let dir: string;

/** Runs `vigil models <args>` in-process: what it printed, and the error it ended with (main.ts prints and exits). */
async function models(...args: string[]): Promise<{ stdout: string; error: VigilError | undefined }> {
  const program = new Command().exitOverride();
  registerModels(program);
  const printed: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed.push(String(chunk));
    return true;
  });
  let error: VigilError | undefined;
  try {
    await program.parseAsync(['node', 'vigil', 'models', ...args, ...placeFlags(args[0] ?? '')]);
  } catch (caught) {
    if (!(caught instanceof VigilError)) throw caught;
    error = caught;
  } finally {
    write.mockRestore();
  }
  return { stdout: printed.join(''), error };
}

function placeFlags(subcommand: string): string[] {
  const log = ['--control-dir', join(dir, 'control'), '--models-root', join(dir, 'models')];
  if (subcommand === 'list' || subcommand === 'show') return log;
  const audit = ['--audit-dir', join(dir, 'audit'), '--audit-hash-key', join(dir, 'keys', 'hash.key')];
  return subcommand === 'promote' ? [...log, ...audit, '--data-dir', join(dir, 'store')] : [...log, ...audit];
}

/** A version folder: a stand-in artifact (add hashes it; only the model store runs it) and a valid manifest. */
function versionFolder(version: string, criteria: Partial<AcceptanceCriteria> = {}): string {
  const folder = join(dir, 'build', version);
  mkdirSync(folder, { recursive: true });
  const artifact = Buffer.from(`onnx bytes of deterioration ${version}`);
  writeFileSync(join(folder, 'model.onnx'), artifact);
  const base = sampleManifest('deterioration', version);
  const manifest = {
    ...base,
    artifact: { file: 'model.onnx', sha256: createHash('sha256').update(artifact).digest('hex') },
    acceptance_criteria: { ...base.acceptance_criteria, ...criteria },
  };
  writeFileSync(join(folder, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return folder;
}

const by = (actor: string, reason: string) => ['--by', actor, '--reason', reason];

const logRecords = () =>
  readFileSync(join(dir, 'control', 'model-rollouts.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-models-cli-'));
  generateAuditKeys(join(dir, 'keys'), 'vigil.test/audit');
  // The clinical plane of a shadow period: 1.0.0 live and 1.1.0 in shadow on the same 8 events, one hour apart;
  // patients 1, 2, 5 and 6 had an ICU transfer 30 min after their event.
  const store = openChdbStore({ path: join(dir, 'store') });
  try {
    await store.migrate();
    const rows: string[] = [];
    for (let i = 1; i <= 8; i++) {
      const p = i % 2 === 0 ? 0.4 : 0.2;
      for (const [version, rollout] of [
        ['1.0.0', 'live'],
        ['1.1.0', 'shadow'],
      ] as const) {
        rows.push(
          `('${version}-e${i}', 'e${i}', 'pt-${i}', 'site-01', '2.1.0', 'age:65-79', ` +
            `fromUnixTimestamp64Milli(${T0 + i * HOUR}), fromUnixTimestamp64Milli(${T0 + i * HOUR + 1000}), ` +
            `'deterioration', '${version}', '${'a'.repeat(64)}', 'onnxruntime-node', '1', 'cfg', '${rollout}', ` +
            `'fv${i}', ${p}, '${p >= 0.3 ? 'high' : 'medium'}', 'vitals@1/score/deterioration@${version}', 'dev-${i}')`,
        );
      }
    }
    await store.command(
      `INSERT INTO inferences (inference_id, event_id, patient_ref, site_id, firmware_version, patient_subgroup,
         observed_at, scored_at, model_name, model_version, model_artifact_sha256, runtime, runtime_version,
         config_hash, rollout, feature_vector_hash, score, risk_band, transformation_version, device_id)
       VALUES ${rows.join(', ')}`,
    );
    const outcomes = [1, 2, 5, 6].map(
      (i) =>
        `('o${i}', 'pt-${i}', 'site-01', 'icu_transfer', fromUnixTimestamp64Milli(${T0 + i * HOUR + HOUR / 2}), ` +
        `fromUnixTimestamp64Milli(${T0 + i * HOUR + HOUR}), 'test')`,
    );
    await store.command(
      `INSERT INTO outcomes (outcome_id, patient_ref, site_id, kind, occurred_at, recorded_at, source) VALUES ${outcomes.join(', ')}`,
    );
  } finally {
    await store.close();
  }
}, 120_000);

afterAll(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

// Lenient bounds the 8 events meet (a calibration slope exists: both outcomes at both scores), except the count.
const CRITERIA: Partial<AcceptanceCriteria> = {
  min_inferences: 6,
  min_agreement_with_live: 0.9,
  calibration: { min_outcome_events: 2, citl_abs_max: 0.5, slope_min: -10, slope_max: 10, ece_max: 0.5 },
  subgroup_brier_margin: null,
};

describe('vigil models', () => {
  it('add, approve, rollout live and shadow: each a record on the log with its actor and reason, and an audit entry', async () => {
    const added = await models('add', versionFolder('1.0.0', CRITERIA), '--by', 'ml-anna', '--json');
    expect(added.error).toBeUndefined();
    const record = JSON.parse(added.stdout);
    expect(record).toMatchObject({ kind: 'added', model: 'deterioration', version: '1.0.0', actor: 'ml-anna' });
    expect(readFileSync(join(dir, 'models', 'deterioration', '1.0.0', 'model.onnx'), 'utf8')).toContain('1.0.0');

    expect(
      (
        await models(
          'approve',
          'deterioration@1.0.0',
          '--role',
          'clinical-safety-officer',
          ...by('dr-osei', 'DET-VR-6'),
        )
      ).error,
    ).toBeUndefined();
    expect(
      (await models('rollout', 'deterioration@1.0.0', '--mode', 'live', ...by('ml-anna', 'first live'))).error,
    ).toBeUndefined();
    expect(
      (await models('add', versionFolder('1.1.0', CRITERIA), ...by('ml-anna', 'retrained'))).error,
    ).toBeUndefined();
    const shadow = await models('rollout', 'deterioration@1.1.0', '--mode', 'shadow', ...by('ml-anna', 'beside 1.0.0'));
    expect(shadow.error).toBeUndefined();
    expect(shadow.stdout).toMatch(/^deterioration@1\.1\.0 rolled out shadow \(change [0-9A-Z]{26} by ml-anna\)\n$/);

    const changes = logRecords().map((l) => l.value);
    expect(changes.map((c) => [c.kind, c.version, c.actor])).toEqual([
      ['added', '1.0.0', 'ml-anna'],
      ['approved', '1.0.0', 'dr-osei'],
      ['rollout', '1.0.0', 'ml-anna'],
      ['added', '1.1.0', 'ml-anna'],
      ['rollout', '1.1.0', 'ml-anna'],
    ]);
    const entries = readFileSync(join(dir, 'audit', 'audit.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.kind === 'entry')
      .map((r) => r.entry);
    expect(entries.map((e) => e.action)).toEqual([
      'model.add',
      'model.approve',
      'model.rollout',
      'model.add',
      'model.rollout',
    ]);
    expect(entries.map((e) => e.target)).toEqual(changes.map((c) => `model:deterioration@${c.version}/${c.change_id}`));
  }, 60_000);

  it('refuses: a canary of an unapproved version (MODEL_CHANGE_REFUSED), bad flags (CONFIG_INVALID); nothing appended', async () => {
    const before = logRecords().length;
    const canary = await models(
      'rollout',
      'deterioration@1.1.0',
      '--mode',
      'canary',
      '--percent',
      '10',
      '--cohort',
      'site=site-01',
      ...by('ml-anna', 'try'),
    );
    expect(canary.error?.code).toBe('MODEL_CHANGE_REFUSED');
    expect(canary.error?.message).toContain('shadow only');
    const refusals = [
      await models('approve', 'deterioration@1.1.0', '--by', 'dr-osei', '--reason', 'no role'),
      await models('rollout', 'deterioration@1.1.0', '--mode', 'blue', ...by('ml-anna', 'x')),
      await models('rollout', 'deterioration@1.1.0', '--mode', 'canary', '--percent', '0', ...by('ml-anna', 'x')),
      await models('rollout', 'deterioration@1.1.0', '--mode', 'canary', '--cohort', 'ward=3', ...by('ml-anna', 'x')),
      await models('rollout', 'deterioration', '--mode', 'shadow', ...by('ml-anna', 'x')),
      await models('rollback', 'deterioration', '--by', 'ml-anna'),
      await models('show', 'deterioration@9.9.9'),
    ];
    expect(refusals.map((r) => r.error?.code)).toEqual(Array(refusals.length).fill('CONFIG_INVALID'));
    expect(logRecords()).toHaveLength(before);
  }, 60_000);

  it('promote refuses on too few inferences (naming the criterion, printing every one), then promotes when they hold', async () => {
    const before = logRecords().length;
    // The first 4 events only: 4 inferences < 6.
    const refused = await models(
      'promote',
      'deterioration@1.1.0',
      ...by('ml-anna', 'try'),
      '--since',
      iso(T0),
      '--until',
      iso(T0 + 4.5 * HOUR),
      '--json',
    );
    expect(refused.error?.code).toBe('PROMOTION_REFUSED');
    expect(refused.error?.message).toContain('min_inferences');
    const verdict = JSON.parse(refused.stdout);
    expect(Object.keys(verdict)).toEqual([
      'model',
      'version',
      'live_version',
      'period',
      'passed',
      'criteria',
      'change_id',
    ]);
    expect(verdict).toMatchObject({
      model: 'deterioration',
      version: '1.1.0',
      live_version: '1.0.0',
      period: { from: iso(T0), to: iso(T0 + 4.5 * HOUR) },
      passed: false,
      change_id: null,
    });
    expect(verdict.criteria[0]).toEqual({
      criterion: 'min_inferences',
      required: '>= 6',
      observed: '4',
      passed: false,
    });
    expect(verdict.criteria.map((c: { criterion: string }) => c.criterion)).toEqual([
      'min_inferences',
      'min_agreement_with_live',
      'calibration.min_outcome_events',
      'calibration.citl_abs_max',
      'calibration.slope',
      'calibration.ece_max',
      'subgroup_brier_margin',
    ]);
    expect(logRecords()).toHaveLength(before);

    // Promotion needs an approval even when the criteria hold.
    const period = ['--since', iso(T0), '--until', iso(T0 + 10 * HOUR)];
    const unapproved = await models('promote', 'deterioration@1.1.0', ...by('ml-anna', 'try'), ...period);
    expect(unapproved.error?.code).toBe('PROMOTION_REFUSED');
    expect(unapproved.error?.message).toContain('no approval');
    expect(unapproved.stdout).toMatch(/min_inferences +>= 6 +8 +yes/);

    await models('approve', 'deterioration@1.1.0', '--role', 'ml-lead', ...by('dr-osei', 'DET-VR-7'));
    const promoted = await models(
      'promote',
      'deterioration@1.1.0',
      ...by('ml-anna', 'criteria held'),
      ...period,
      '--json',
    );
    expect(promoted.error).toBeUndefined();
    const accepted = JSON.parse(promoted.stdout);
    expect(accepted).toMatchObject({ passed: true });
    const last = logRecords().at(-1).value;
    expect(last).toMatchObject({
      kind: 'promoted',
      version: '1.1.0',
      previous: '1.0.0',
      actor: 'ml-anna',
      reason: 'criteria held',
      period: { from: T0, to: T0 + 10 * HOUR },
    });
    expect(accepted.change_id).toBe(last.change_id);
    expect(last.criteria).toEqual(accepted.criteria);
  }, 120_000);

  it('list --json and show --json: stable keys, routing now, the full history with actors and reasons', async () => {
    const list = JSON.parse((await models('list', '--json')).stdout);
    expect(list).toEqual([
      {
        model: 'deterioration',
        live: '1.1.0',
        canary: null,
        shadows: [],
        versions: [
          { version: '1.0.0', artifact_sha256: expect.stringMatching(/^[0-9a-f]{64}$/), approved: true, mode: null },
          { version: '1.1.0', artifact_sha256: expect.stringMatching(/^[0-9a-f]{64}$/), approved: true, mode: 'live' },
        ],
      },
    ]);

    const show = JSON.parse((await models('show', 'deterioration', '--json')).stdout);
    expect(Object.keys(show)).toEqual(['model', 'route', 'versions', 'history']);
    expect(show.route).toEqual({
      live: { version: '1.1.0', rollout_id: expect.any(String) },
      canary: null,
      shadows: [],
    });
    expect(Object.keys(show.versions[0])).toEqual([
      'version',
      'artifact_sha256',
      'manifest_sha256',
      'output',
      'pccp_modification_id',
      'added',
      'approvals',
      'mode',
    ]);
    expect(show.versions[1].approvals).toEqual([
      { change_id: expect.any(String), at: expect.any(String), actor: 'dr-osei', role: 'ml-lead', reason: 'DET-VR-7' },
    ]);
    expect(
      show.history.map((h: { kind: string; actor: string; reason: string }) => [h.kind, h.actor, h.reason]),
    ).toEqual([
      ['added', 'ml-anna', 'added'],
      ['approved', 'dr-osei', 'DET-VR-6'],
      ['rollout', 'ml-anna', 'first live'],
      ['added', 'ml-anna', 'retrained'],
      ['rollout', 'ml-anna', 'beside 1.0.0'],
      ['approved', 'dr-osei', 'DET-VR-7'],
      ['promoted', 'ml-anna', 'criteria held'],
    ]);
    expect(show.history[0]).not.toHaveProperty('manifest');
    expect(show.history[0].at).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);

    const one = JSON.parse((await models('show', 'deterioration@1.0.0', '--json')).stdout);
    expect(one.versions.map((v: { version: string }) => v.version)).toEqual(['1.0.0']);
    expect(one.history.map((h: { kind: string }) => h.kind)).toEqual(['added', 'approved', 'rollout']);

    const text = (await models('show', 'deterioration')).stdout;
    expect(text).toContain('routing: live 1.1.0; canary -; shadows -');
    expect(text).toContain('promoted 1.1.0 over 1.0.0');
  }, 60_000);

  it('rollback without --version takes the live version out and restores the previous one', async () => {
    const r = await models('rollback', 'deterioration', ...by('ml-anna', 'alert rate doubled'), '--json');
    expect(r.error).toBeUndefined();
    expect(JSON.parse(r.stdout)).toMatchObject({
      kind: 'rollback',
      version: '1.1.0',
      from_mode: 'live',
      restored: '1.0.0',
      trigger: 'manual',
      actor: 'ml-anna',
    });
    const list = JSON.parse((await models('list', '--json')).stdout);
    expect(list[0].live).toBe('1.0.0');
  }, 60_000);
});
