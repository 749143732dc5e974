/**
 * The rollout record behind an inference and the approval it rests on, resolved from a registry folded from records:
 * a rollout names its approval; a promotion its own; a rollback that restored the previous live version rests on
 * that version's latest approval made before it; a change that routes nothing, or an unknown id, is no record. And a
 * version's history up to the end of a period (approvals, routing, promotions with their criteria).
 */
import { describe, expect, it } from 'vitest';
import { ModelRegistry } from '../governance/registry.ts';
import { sampleManifest } from '../governance/testing.ts';
import type { ModelChange } from '../governance/types.ts';
import { artifactRegistered, routingRecordOf, versionHistories } from './model-routing.ts';

const T0 = Date.UTC(2026, 3, 1);
const HOUR = 3_600_000;
const sha = (v: string) => v.repeat(64).slice(0, 64);
const everyone = { percent: 100, cohort: {}, cohort_expr: '' };

function added(id: string, version: string, at: number, artifact: string): ModelChange {
  const manifest = sampleManifest('deterioration', version, { artifact: { file: 'model.onnx', sha256: artifact } });
  return {
    change_id: id,
    model: 'deterioration',
    version,
    at,
    actor: 'ml-eng',
    reason: 'build',
    kind: 'added',
    artifact_sha256: artifact,
    manifest_sha256: sha('f'),
    manifest,
  };
}

/** 1.0.0 live, 1.1.0 promoted over it, rolled back (1.0.0 restored); 1.0.0 approved again after the rollback. */
function registry(): ModelRegistry {
  const r = new ModelRegistry();
  const base = { model: 'deterioration' };
  const changes: ModelChange[] = [
    added('c01', '1.0.0', T0, sha('a')),
    {
      ...base,
      change_id: 'c02',
      version: '1.0.0',
      at: T0 + HOUR,
      actor: 'dr-jones',
      reason: 'DR-11',
      kind: 'approved',
      artifact_sha256: sha('a'),
      role: 'cso',
    },
    {
      ...base,
      change_id: 'c03',
      version: '1.0.0',
      at: T0 + 2 * HOUR,
      actor: 'ml-lead',
      reason: 'go live',
      kind: 'rollout',
      mode: 'live',
      ...everyone,
      approval_id: 'c02',
    },
    added('c04', '1.1.0', T0 + 3 * HOUR, sha('b')),
    {
      ...base,
      change_id: 'c05',
      version: '1.1.0',
      at: T0 + 4 * HOUR,
      actor: 'dr-ng',
      reason: 'DR-12',
      kind: 'approved',
      artifact_sha256: sha('b'),
      role: 'cso',
    },
    {
      ...base,
      change_id: 'c06',
      version: '1.1.0',
      at: T0 + 5 * HOUR,
      actor: 'ml-lead',
      reason: 'criteria met',
      kind: 'promoted',
      previous: '1.0.0',
      approval_id: 'c05',
      criteria: [{ criterion: 'min_inferences', required: '>= 100', observed: '412', passed: true }],
      period: { from: T0 + 3 * HOUR, to: T0 + 5 * HOUR },
    },
    {
      ...base,
      change_id: 'c07',
      version: '1.1.0',
      at: T0 + 6 * HOUR,
      actor: 'system:drift-guard',
      reason: 'drift',
      kind: 'rollback',
      from_mode: 'live',
      restored: '1.0.0',
      trigger: 'drift',
      evidence: { spo2: 0.4 },
    },
    {
      ...base,
      change_id: 'c08',
      version: '1.0.0',
      at: T0 + 7 * HOUR,
      actor: 'dr-lee',
      reason: 're-review',
      kind: 'approved',
      artifact_sha256: sha('a'),
      role: 'cso',
    },
  ];
  for (const change of changes) r.apply(change);
  return r;
}

describe('routingRecordOf', () => {
  it('resolves a rollout, a promotion and a restoring rollback with the approval each rests on', () => {
    const r = registry();
    expect(routingRecordOf(r, 'deterioration', 'c03')).toMatchObject({
      kind: 'rollout',
      routed_version: '1.0.0',
      mode: 'live',
      actor: 'ml-lead',
      approval: { change_id: 'c02', approver: 'dr-jones', role: 'cso', at: new Date(T0 + HOUR).toISOString() },
    });
    expect(routingRecordOf(r, 'deterioration', 'c06')).toMatchObject({
      kind: 'promoted',
      routed_version: '1.1.0',
      mode: 'live',
      approval: { change_id: 'c05', approver: 'dr-ng' },
    });
    // The rollback restored 1.0.0: its approval then was c02 (c08 came after).
    expect(routingRecordOf(r, 'deterioration', 'c07')).toMatchObject({
      kind: 'rollback',
      version: '1.1.0',
      routed_version: '1.0.0',
      mode: 'live',
      actor: 'system:drift-guard',
      trigger: 'drift',
      approval: { change_id: 'c02', approver: 'dr-jones' },
    });
  });

  it('is null for no rollout id, an approval, an unknown id or another model', () => {
    const r = registry();
    expect(routingRecordOf(r, 'deterioration', null)).toBeNull();
    expect(routingRecordOf(r, 'deterioration', 'c02')).toBeNull();
    expect(routingRecordOf(r, 'deterioration', 'c99')).toBeNull();
    expect(routingRecordOf(r, 'news2', 'c03')).toBeNull();
  });

  it('checks an artifact against the registered version', () => {
    const r = registry();
    expect(artifactRegistered(r, 'deterioration', '1.0.0', sha('a'))).toBe(true);
    expect(artifactRegistered(r, 'deterioration', '1.0.0', sha('b'))).toBe(false);
    expect(artifactRegistered(r, 'news2', '1.0.0', sha('a'))).toBe(false);
  });
});

describe('versionHistories', () => {
  it("gives each registered version's approvals, routing and promotions before the period's end", () => {
    const r = registry();
    const [v100, v110, ...rest] = versionHistories(
      r,
      [
        { model: 'deterioration', version: '1.0.0' },
        { model: 'deterioration', version: '1.1.0' },
        { model: 'deterioration', version: '1.0.0' },
        { model: 'news2', version: '1.0.0' },
      ],
      T0 + 6.5 * HOUR,
    );
    expect(rest).toEqual([]); // duplicates once; news2 is not registered
    expect(v100).toMatchObject({ version: '1.0.0', artifact_sha256: sha('a'), pccp_modification_id: 'PCCP-DET-001' });
    expect(v100!.approvals.map((a) => a.approver)).toEqual(['dr-jones']); // dr-lee's came after the period
    expect(v100!.routing.map((c) => [c.change_id, c.kind, c.routed_version])).toEqual([
      ['c03', 'rollout', '1.0.0'],
      ['c07', 'rollback', '1.0.0'],
    ]);
    expect(v110!.routing.map((c) => c.change_id)).toEqual(['c06', 'c07']);
    expect(v110!.promotions).toEqual([
      {
        change_id: 'c06',
        at: new Date(T0 + 5 * HOUR).toISOString(),
        actor: 'ml-lead',
        previous: '1.0.0',
        period: { from: new Date(T0 + 3 * HOUR).toISOString(), to: new Date(T0 + 5 * HOUR).toISOString() },
        criteria: [{ criterion: 'min_inferences', required: '>= 100', observed: '412', passed: true }],
      },
    ]);
    expect(versionHistories(r, [{ model: 'deterioration', version: '1.1.0' }], T0 + 3 * HOUR)).toEqual([]);
  });
});
