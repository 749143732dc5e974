/**
 * `vigil trace` answering "which model scored it, and how was it routed" (issue 12), in-process on an embedded store
 * and a file model-rollouts log written through governance/service.ts (test/fixtures/routed-event.ts): each inference's routing
 * decision from its row, the rollout record that routed it with its actor and the approval it rests on (approver,
 * role), the pipeline default with no record; without the log the trace still answers and says it was not read. The
 * whole command on the real stack (signatures, readers, Kafka) is test/integration/trace.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { addPrincipal } from '../../access/principals.ts';
import { generateAuditKeys, KEY_FILES } from '../../audit/keys.ts';
import type { TraceReport } from '../../evidence/trace.ts';
import { landRoutedEvent, type RoutedFixture } from '../../test/fixtures/routed-event.ts';
import { registerTrace } from './trace.ts';

let dir: string;
let fixture: RoutedFixture;
let token: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-trace-routing-'));
  fixture = await landRoutedEvent(dir, join(dir, 'control'), join(dir, 'store'));
  generateAuditKeys(join(dir, 'keys'), 'vigil.test/trace');
  const principals = join(dir, 'principals.json');
  token = addPrincipal(principals, { name: 'auditor-1', roles: ['auditor'], sites: ['*'] }).token;
  vi.stubEnv('VIGIL_PRINCIPALS', principals);
}, 120_000);

afterAll(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

/** `vigil trace <event> <args>` in-process as the auditor; what it printed. */
async function trace(...args: string[]): Promise<string> {
  vi.stubEnv('VIGIL_TOKEN', token);
  const program = new Command().exitOverride();
  registerTrace(program);
  const printed: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed.push(String(chunk));
    return true;
  });
  try {
    await program.parseAsync([
      'node',
      'vigil',
      'trace',
      fixture.event.event_id,
      ...args,
      '--data-dir',
      join(dir, 'store'),
      '--audit-dir',
      join(dir, 'audit'),
      '--audit-hash-key',
      join(dir, 'keys', KEY_FILES.hash),
    ]);
  } finally {
    write.mockRestore();
  }
  return printed.join('');
}

const byVersion = (report: TraceReport) => new Map(report.inferences.map((i) => [`${i.model}@${i.version}`, i]));

describe('vigil trace: how each inference was routed', () => {
  it('shows the routing, the rollout record with its actor and the approval it rests on', async () => {
    const report = JSON.parse(await trace('--json', '--control-dir', join(dir, 'control'))) as TraceReport;
    // The original keys, in their order, then the one added.
    expect(Object.keys(report)).toEqual([
      'event_id',
      'sender',
      'raw',
      'transformations',
      'inferences',
      'alerts',
      'viewed_by',
      'verified',
      'model_rollouts_log',
    ]);
    expect(report.model_rollouts_log).toEqual({
      read: true,
      source: `file:${join(dir, 'control', 'model-rollouts.jsonl')}`,
      problem: null,
    });
    const { canary, shadow, pipeline } = fixture.inferences;
    const { changes } = fixture;
    const inferences = byVersion(report);
    expect([...inferences.keys()].sort()).toEqual(['deterioration@1.1.0', 'deterioration@1.2.0', 'news2@1.0.0']);

    const inCanary = inferences.get('deterioration@1.1.0')!;
    expect(Object.keys(inCanary).slice(0, 6)).toEqual([
      'model',
      'version',
      'artifact_sha256',
      'rollout',
      'score',
      'risk_band',
    ]);
    expect(inCanary).toMatchObject({
      rollout: 'canary',
      artifact_sha256: canary.model_artifact_sha256,
      runtime: 'onnxruntime-node',
      runtime_version: canary.runtime_version,
      config_hash: canary.config_hash,
      rollout_id: changes.canary.change_id,
      routing: { source: 'registry', cohort_bucket: canary.routing!.cohort_bucket, in_canary: true, clinical: true },
      artifact_registered: true,
    });
    expect(canary.routing!.cohort_bucket).toBeLessThan(1000);
    expect(inCanary.rollout_record).toEqual({
      change_id: changes.canary.change_id,
      kind: 'rollout',
      version: '1.1.0',
      routed_version: '1.1.0',
      mode: 'canary',
      at: new Date(changes.canary.at).toISOString(),
      actor: 'ml-lead',
      reason: 'canary at one site',
      percent: 10,
      cohort_expr: 'site=site-a',
      trigger: null,
      approval: {
        change_id: changes.approveCanary.change_id,
        at: new Date(changes.approveCanary.at).toISOString(),
        approver: 'ml-lead',
        role: 'ml-lead',
        reason: 'offline metrics DR-12',
      },
    });

    const inShadow = inferences.get('deterioration@1.2.0')!;
    expect(inShadow).toMatchObject({
      rollout: 'shadow',
      artifact_sha256: shadow.model_artifact_sha256,
      rollout_id: changes.shadow.change_id,
      routing: { source: 'registry', in_canary: true, clinical: false },
      rollout_record: {
        kind: 'rollout',
        mode: 'shadow',
        actor: 'ml-eng',
        reason: 'compare beside live',
        approval: null,
      },
      artifact_registered: true,
    });

    // The pipeline's default: no route, no record; news2 is not in this registry.
    expect(inferences.get('news2@1.0.0')).toMatchObject({
      rollout: 'live',
      rollout_id: null,
      routing: { source: 'pipeline', cohort_bucket: pipeline.routing!.cohort_bucket, in_canary: false, clinical: true },
      rollout_record: null,
      artifact_registered: false,
    });
  });

  it('prints the record and the approval for a terminal', async () => {
    const text = await trace('--control-dir', join(dir, 'control'));
    const { changes } = fixture;
    expect(text).toContain('which model scored it, and how it was routed');
    expect(text).toContain(
      `rollout ${changes.canary.change_id} (canary 10% of site=site-a) at ${new Date(changes.canary.at).toISOString()} by ml-lead: canary at one site`,
    );
    expect(text).toContain(`approved by ml-lead as ml-lead at ${new Date(changes.approveCanary.at).toISOString()}`);
    expect(text).toContain('no approval (a shadow may run unapproved)');
    expect(text).toContain("no rollout record: the pipeline's default version");
    expect(text).toContain(`model-rollouts log: read from file:${join(dir, 'control', 'model-rollouts.jsonl')}`);
  });

  it('works without the log and says it was not read', async () => {
    const empty = join(dir, 'no-control');
    const report = JSON.parse(await trace('--json', '--control-dir', empty)) as TraceReport;
    expect(report.model_rollouts_log).toEqual({
      read: false,
      source: `file:${join(empty, 'model-rollouts.jsonl')}`,
      problem: 'no such file',
    });
    const canary = byVersion(report).get('deterioration@1.1.0')!;
    // What the row records is still shown; what only the log knows is null.
    expect(canary).toMatchObject({
      rollout_id: fixture.changes.canary.change_id,
      routing: { clinical: true, in_canary: true },
      rollout_record: null,
      artifact_registered: null,
    });
    expect(await trace('--control-dir', empty)).toContain(
      `rollout ${fixture.changes.canary.change_id} (the model-rollouts log was not read)`,
    );

    const skipped = JSON.parse(await trace('--json', '--no-model-rollouts')) as TraceReport;
    expect(skipped.model_rollouts_log).toEqual({
      read: false,
      source: 'none',
      problem: 'not asked (--no-model-rollouts)',
    });
    expect(skipped.inferences.every((i) => i.rollout_record === null)).toBe(true);
  });
});
