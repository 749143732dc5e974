/**
 * `vigil evidence export`'s model-governance part (issue 12), in-process on an embedded store and a file
 * model-rollouts log written through governance/service.ts with an audit entry per change (test/fixtures/routed-event.ts):
 * the routing of the period's inferences with the record that routed each and its approval, the period's registry
 * changes as on the log, each version's history (approvals by whom, routing), every change paired with its audit
 * entry; `evidence verify` passes and lists the new files. Without the log the bundle says it was not read. The
 * whole export as CLI processes (devices, proofs, promtool) is test/integration/evidence-bundle.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { addPrincipal } from '../../access/principals.ts';
import { generateAuditKeys, KEY_FILES, loadSignerKey } from '../../audit/keys.ts';
import { signStoredLog } from '../../audit/sign.ts';
import { openFileAuditStore } from '../../audit/stores/file.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { T0 } from '../../test/fixtures/clickhouse.ts';
import { landRoutedEvent, type RoutedFixture } from '../../test/fixtures/routed-event.ts';
import { controlAudit } from './control-audit.ts';
import { registerEvidence } from './evidence.ts';

let dir: string;
let fixture: RoutedFixture;
let token: string;

const key = (name: string) => join(dir, 'keys', name);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-evidence-routing-'));
  generateAuditKeys(join(dir, 'keys'), 'vigil.test/evidence');
  const audit = controlAudit({ auditDir: join(dir, 'audit'), auditHashKey: key(KEY_FILES.hash) });
  fixture = await landRoutedEvent(dir, join(dir, 'control'), join(dir, 'store'), audit);
  const store = openFileAuditStore(join(dir, 'audit'));
  try {
    await signStoredLog(store, loadSignerKey(key(KEY_FILES.signer)), new ManualClock(T0));
  } finally {
    await store.close();
  }
  const principals = join(dir, 'principals.json');
  token = addPrincipal(principals, { name: 'auditor-1', roles: ['auditor'], sites: ['*'] }).token;
  vi.stubEnv('VIGIL_PRINCIPALS', principals);
}, 120_000);

afterAll(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

/** `vigil evidence <args>` in-process as the auditor; what it printed. */
async function evidence(...args: string[]): Promise<string> {
  vi.stubEnv('VIGIL_TOKEN', token);
  const program = new Command().exitOverride();
  registerEvidence(program);
  const printed: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed.push(String(chunk));
    return true;
  });
  try {
    await program.parseAsync(['node', 'vigil', 'evidence', ...args]);
  } finally {
    write.mockRestore();
  }
  return printed.join('');
}

const exportTo = (out: string, ...extra: string[]) =>
  evidence(
    'export',
    '--from',
    new Date(T0 - 7 * 86_400_000).toISOString(),
    '--to',
    new Date(T0 + 86_400_000).toISOString(),
    '--out',
    out,
    '--json',
    '--data-dir',
    join(dir, 'store'),
    '--audit-dir',
    join(dir, 'audit'),
    '--audit-hash-key',
    key(KEY_FILES.hash),
    '--key',
    key(KEY_FILES.signer),
    '--pub',
    key(KEY_FILES.verifier),
    '--promtool',
    join(dir, 'no-promtool'),
    ...extra,
  );

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

describe('vigil evidence export: model governance', () => {
  it('holds the routing, the registry changes with their approvals and audit entries, and verifies', async () => {
    const out = join(dir, 'bundle');
    const summary = JSON.parse(await exportTo(out, '--control-dir', join(dir, 'control')));
    // 3 added, 2 approved, 3 rollouts; each with its audit entry, proven against the checkpoint.
    expect(summary).toMatchObject({ model_rollouts_read: true, model_changes: 8, unaudited_model_changes: 0 });
    expect(summary.proofs).toBe(8);

    const { changes, inferences } = fixture;
    const routing = readJson(join(out, 'model-governance/routing.json'));
    const canary = routing.routes.find((r: { model_version: string }) => r.model_version === '1.1.0');
    expect(canary).toMatchObject({
      model_name: 'deterioration',
      model_artifact_sha256: inferences.canary.model_artifact_sha256,
      rollout: 'canary',
      rollout_id: changes.canary.change_id,
      routing_source: 'registry',
      in_canary: true,
      clinical: true,
      inferences: 1,
      artifact_registered: true,
      rollout_record: {
        kind: 'rollout',
        mode: 'canary',
        percent: 10,
        cohort_expr: 'site=site-a',
        actor: 'ml-lead',
        approval: { change_id: changes.approveCanary.change_id, approver: 'ml-lead', role: 'ml-lead' },
      },
    });
    const shadow = routing.routes.find((r: { model_version: string }) => r.model_version === '1.2.0');
    expect(shadow).toMatchObject({
      clinical: false,
      rollout_record: { mode: 'shadow', actor: 'ml-eng', approval: null },
    });
    const news2 = routing.routes.find((r: { model_name: string }) => r.model_name === 'news2');
    expect(news2).toMatchObject({ rollout_id: null, routing_source: 'pipeline', rollout_record: null });

    const models = readJson(join(out, 'model-governance/models-in-use.json'));
    const canaryUse = models.models.find((m: { model_version: string }) => m.model_version === '1.1.0');
    expect(canaryUse.rollout_ids).toEqual([changes.canary.change_id]);

    const lines = readFileSync(join(out, 'model-governance/registry-changes.jsonl'), 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l).kind)).toEqual([
      'added',
      'approved',
      'rollout',
      'added',
      'approved',
      'rollout',
      'added',
      'rollout',
    ]);

    // Which versions were approved by whom (1.0.0 ran in no inference of the period, but changed in it).
    const { versions } = readJson(join(out, 'model-governance/versions.json'));
    expect(
      versions.map((v: { version: string; approvals: { approver: string; role: string }[] }) => [
        v.version,
        v.approvals.map((a) => `${a.approver}/${a.role}`),
      ]),
    ).toEqual([
      ['1.1.0', ['ml-lead/ml-lead']],
      ['1.2.0', []],
      ['1.0.0', ['dr-jones/clinical-safety-officer']],
    ]);
    const live = versions.find((v: { version: string }) => v.version === '1.0.0');
    expect(live.routing).toEqual([
      expect.objectContaining({ change_id: changes.live.change_id, mode: 'live', actor: 'ml-lead' }),
    ]);

    const governance = readJson(join(out, 'model-governance/summary.json'));
    expect(governance).toMatchObject({
      log: { read: true, problem: null },
      changes: 8,
      by_kind: { added: 3, approved: 2, rollout: 3 },
      models: ['deterioration', 'news2'],
      unaudited: [],
      unknown_rollout_ids: [],
      unregistered_routed_artifacts: [],
    });

    const manifest = readJson(join(out, 'manifest.json'));
    const paths: string[] = manifest.files.map((f: { path: string }) => f.path);
    expect(paths.filter((p) => p.startsWith('model-governance/'))).toEqual([
      'model-governance/models-in-use.json',
      'model-governance/registry-changes.jsonl',
      'model-governance/routing.json',
      'model-governance/summary.json',
      'model-governance/versions.json',
    ]);
    const verified = JSON.parse(await evidence('verify', out, '--json', '--pub', key(KEY_FILES.verifier)));
    expect(verified).toEqual({ ok: true, files: paths.length, proofs: 8, problems: [] });
  });

  it('says the log was not read without it, and still holds what the inferences record', async () => {
    const out = join(dir, 'bundle-no-log');
    const summary = JSON.parse(await exportTo(out, '--no-model-rollouts'));
    expect(summary).toMatchObject({ model_rollouts_read: false, model_changes: 0, unaudited_model_changes: 0 });
    const governance = readJson(join(out, 'model-governance/summary.json'));
    expect(governance.log).toEqual({ read: false, source: 'none', problem: 'not asked (--no-model-rollouts)' });
    expect(governance.unknown_rollout_ids).toBeNull();
    const routing = readJson(join(out, 'model-governance/routing.json'));
    expect(routing.routes).toHaveLength(3);
    expect(
      routing.routes.map((r: { rollout_id: string | null; rollout_record: unknown }) => [
        r.rollout_id !== null,
        r.rollout_record,
      ]),
    ).toEqual([
      [true, null],
      [true, null],
      [false, null],
    ]);
    const verified = JSON.parse(await evidence('verify', out, '--json', '--pub', key(KEY_FILES.verifier)));
    expect(verified.ok).toBe(true);
  });
});
