/** The wire form of model-rollouts records: strict, keyed one per change. */
import { describe, expect, it } from 'vitest';
import { modelChangeKey, parseModelChange } from './changes.ts';
import { sampleManifest } from './testing.ts';
import type { ModelChange } from './types.ts';

const ID = '01JBZ8Q6W4T3S2R1P0N9M8K7J6';
const base = { change_id: ID, model: 'deterioration', version: '1.0.0', at: 1, actor: 'ml-lead', reason: 'test' };

const valid: ModelChange[] = [
  {
    ...base,
    kind: 'added',
    artifact_sha256: 'a'.repeat(64),
    manifest_sha256: 'c'.repeat(64),
    manifest: sampleManifest(),
  },
  { ...base, kind: 'approved', artifact_sha256: 'a'.repeat(64), role: 'clinical-safety-officer' },
  {
    ...base,
    kind: 'rollout',
    mode: 'canary',
    percent: 10,
    cohort: { sites: ['site-01'] },
    cohort_expr: 'site=site-01',
    approval_id: ID,
  },
  { ...base, kind: 'rollback', from_mode: 'live', restored: '0.9.0', trigger: 'drift', evidence: { spo2: 0.31 } },
  {
    ...base,
    kind: 'promoted',
    previous: null,
    approval_id: ID,
    criteria: [{ criterion: 'min_inferences', required: '>= 100', observed: '120', passed: true }],
    period: { from: 0, to: 10 },
  },
];

describe('parseModelChange', () => {
  it('accepts every kind as written (a JSON round trip changes nothing)', () => {
    for (const change of valid) expect(parseModelChange(JSON.parse(JSON.stringify(change)))).toEqual(change);
  });

  it('refuses an unknown kind, an unknown key, a bad id, a percent out of range', () => {
    expect(() => parseModelChange({ ...valid[1], kind: 'deleted' })).toThrow();
    expect(() => parseModelChange({ ...valid[1], extra: 1 })).toThrow();
    expect(() => parseModelChange({ ...valid[1], change_id: 'not-a-ulid' })).toThrow();
    expect(() => parseModelChange({ ...valid[2], percent: 0 })).toThrow();
    expect(() => parseModelChange({ ...valid[2], percent: 101 })).toThrow();
    expect(() => parseModelChange({ ...valid[1], model: '../x' })).toThrow();
  });

  it('refuses an added record whose manifest names another version', () => {
    expect(() => parseModelChange({ ...valid[0], version: '2.0.0' })).toThrow(/describes deterioration@1.0.0/);
  });
});

describe('modelChangeKey', () => {
  it('is <model>/<change_id>', () => {
    expect(modelChangeKey(valid[0]!)).toBe(`deterioration/${ID}`);
  });
});
