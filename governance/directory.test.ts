/** The live model directory follows the control log: catch-up, live changes, invalid and refused records counted. */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monotonicFactory } from 'ulid';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileControlLog } from '../adapters/file/control-log.ts';
import { modelChangeKey, parseModelChange } from './changes.ts';
import { openModelDirectory, readModelRegistry } from './directory.ts';
import { sampleManifest } from './testing.ts';
import type { ModelChange } from './types.ts';

const ulid = monotonicFactory();
const sha = 'd'.repeat(64);
const base = (version: string) => ({ change_id: ulid(1), model: 'det', version, at: 1, actor: 'ml-lead', reason: 'r' });
const added = (version: string): ModelChange => ({
  ...base(version),
  kind: 'added',
  artifact_sha256: sha,
  manifest_sha256: sha,
  manifest: sampleManifest('det', version, { artifact: { file: 'model.onnx', sha256: sha } }),
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-model-directory-'));
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

describe('openModelDirectory', () => {
  it('applies the log up to caughtUp, then follows live: the routing table moves with each change', async () => {
    const log = new FileControlLog(join(dir, 'model-rollouts.jsonl'), { parse: parseModelChange, pollMs: 100 });
    const add = added('1.0.0');
    const approval: ModelChange = { ...base('1.0.0'), kind: 'approved', artifact_sha256: sha, role: 'cso' };
    await log.append(modelChangeKey(add), add);
    await log.append(modelChangeKey(approval), approval);
    appendFileSync(log.path, `${JSON.stringify({ key: 'det/x', value: { kind: 'added', model: 'det' } })}\n`);
    // A valid record the rules refuse (live without approval).
    const unapproved: ModelChange = {
      ...base('1.0.0'),
      kind: 'rollout',
      mode: 'live',
      percent: 100,
      cohort: {},
      cohort_expr: '',
      approval_id: null,
    };
    await log.append(modelChangeKey(unapproved), unapproved);

    const directory = await openModelDirectory(log);
    await directory.caughtUp;
    expect(directory.registry.versions('det').map((v) => v.approvals.length)).toEqual([1]);
    expect(directory.invalidRecords()).toBe(2);
    expect(directory.refusedRecords()).toBe(1);
    const before = directory.rollouts.current();
    expect(before.route('det')).toBeUndefined();

    const live: ModelChange = { ...unapproved, change_id: ulid(2), approval_id: approval.change_id };
    await log.append(modelChangeKey(live), live);
    await log.append(modelChangeKey(live), live); // a retried append: applied once
    vi.advanceTimersByTime(100);
    const after = directory.rollouts.current();
    expect(after.revision).toBeGreaterThan(before.revision);
    expect(after.route('det')!.live).toEqual({
      version: '1.0.0',
      rollout_id: live.change_id,
      approved: true,
      artifact_sha256: sha,
    });
    expect(directory.registry.history().map((c) => c.kind)).toEqual(['added', 'approved', 'rollout']);
    await directory.close();

    const read = await readModelRegistry(log);
    expect(read.routingTable().route('det')!.live!.version).toBe('1.0.0');
    await log.close();
  });
});
