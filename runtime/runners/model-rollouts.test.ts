/**
 * followModelRollouts: the rollouts a worker applies are current before its first batch, change live as records
 * arrive (no reopen), fail the start when the log cannot be read to its end in time, start on the pipeline defaults
 * when the topic does not exist (and adopt it once it does), and count what they applied on /metrics.
 * An in-memory control log stands in for the port (the Kafka and file logs have their own tests); timers are fake.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileControlLog } from '../../adapters/file/control-log.ts';
import { modelChangeKey, parseModelChange } from '../../governance/changes.ts';
import { sampleManifest } from '../../governance/testing.ts';
import type { ModelChange } from '../../governance/types.ts';
import type { ControlLog, FollowOptions } from '../../identity/types.ts';
import { VigilError } from '../errors.ts';
import { silentLogger } from '../log.ts';
import { followModelRollouts, followModelRolloutsLog, MODEL_ROLLOUTS_FILE } from './model-rollouts.ts';

const SHA = 'a'.repeat(64);

/** A control log in memory: follow delivers what it holds, then every append; caughtUp resolves when told. */
class MemoryControlLog implements ControlLog<ModelChange> {
  readonly records: ModelChange[] = [];
  readonly #followers = new Set<(record: ModelChange) => void>();
  /** When set, follow throws it (a topic that does not exist). */
  failFollow: Error | null = null;
  /** When false, caughtUp never resolves (a log that cannot be read to its end). */
  catchesUp = true;
  /** When set, caughtUp rejects with it (the follower failed while reading). */
  caughtUpError: Error | null = null;
  closed = false;

  /** Followers open now (each follow() not yet closed). */
  get openFollowers(): number {
    return this.#followers.size;
  }

  async append(_key: string, record: ModelChange): Promise<void> {
    this.records.push(record);
    for (const deliver of this.#followers) deliver(record);
  }

  async follow(onRecord: (record: ModelChange) => void, _options?: FollowOptions) {
    if (this.failFollow) throw this.failFollow;
    for (const record of this.records) onRecord(record);
    this.#followers.add(onRecord);
    const failed = this.caughtUpError;
    return {
      caughtUp: failed
        ? Promise.reject(failed)
        : this.catchesUp
          ? Promise.resolve()
          : new Promise<void>(() => undefined),
      close: async () => {
        this.#followers.delete(onRecord);
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.#followers.clear();
  }
}

let seq = 0;
const base = (kind: string) => ({
  change_id: `01HZX${String(++seq).padStart(21, '0')}`,
  model: 'deterioration',
  at: 1_767_000_000_000 + seq,
  actor: 'ml-lead',
  reason: `it ${kind}`,
});

function added(version: string): ModelChange {
  return {
    ...base('add'),
    kind: 'added',
    version,
    artifact_sha256: SHA,
    manifest_sha256: 'c'.repeat(64),
    manifest: sampleManifest('deterioration', version, { artifact: { file: 'model.onnx', sha256: SHA } }),
  };
}

function approved(version: string): ModelChange {
  return { ...base('approve'), kind: 'approved', version, artifact_sha256: SHA, role: 'clinical-safety-officer' };
}

function rollout(version: string, mode: 'live' | 'shadow', approvalId: string | null): ModelChange {
  return {
    ...base('rollout'),
    kind: 'rollout',
    version,
    mode,
    percent: 100,
    cohort: {},
    cohort_expr: '',
    approval_id: approvalId,
  };
}

async function append(log: MemoryControlLog, change: ModelChange): Promise<void> {
  await log.append(modelChangeKey(change), change);
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return Number(value?.value ?? Number.NaN);
}

describe('followModelRollouts', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('follows no registry when told so: no rollouts for the operators, the pipeline defaults run', async () => {
    const followed = await followModelRollouts({ kind: 'none' }, { log: silentLogger });
    expect(followed.rollouts).toBeUndefined();
    expect(followed.table().revision).toBe(0);
    expect(followed.table().route('deterioration')).toBeUndefined();
    await followed.close();
  });

  it('is current before the first batch and applies later changes live, without a reopen', async () => {
    const log = new MemoryControlLog();
    const add = added('1.0.0');
    const approval = approved('1.0.0');
    for (const change of [add, approval, rollout('1.0.0', 'live', approval.change_id)]) await append(log, change);
    const metrics = new Registry();
    const followed = await followModelRolloutsLog(log, { log: silentLogger, metrics });
    const rollouts = followed.rollouts;
    if (!rollouts) throw new Error('expected rollouts');
    expect(rollouts.current().revision).toBe(3);
    expect(rollouts.current().route('deterioration')?.live?.version).toBe('1.0.0');
    expect(await metricValue(metrics, 'vigil_model_rollout_revision')).toBe(3);

    await append(log, added('1.1.0'));
    const shadow = rollout('1.1.0', 'shadow', null);
    await append(log, shadow);
    // The same object the operators hold now routes the shadow too.
    expect(rollouts.current().revision).toBe(5);
    expect(
      rollouts
        .current()
        .route('deterioration')
        ?.shadows.map((s) => [s.version, s.rollout_id]),
    ).toEqual([['1.1.0', shadow.change_id]]);
    expect(await metricValue(metrics, 'vigil_model_rollout_revision')).toBe(5);
    expect(await metricValue(metrics, 'vigil_model_rollout_changes_total', { kind: 'added' })).toBe(1);
    expect(await metricValue(metrics, 'vigil_model_rollout_changes_total', { kind: 'rollout' })).toBe(1);
    expect(await metricValue(metrics, 'vigil_model_rollout_changes_total', { kind: 'rollback' })).toBe(0);

    // A record the registry's rules refuse (a live rollout of an unapproved version) is skipped and counted.
    await append(log, rollout('1.1.0', 'live', null));
    expect(rollouts.current().revision).toBe(5);
    expect(followed.invalidRecords()).toBe(1);
    expect(await metricValue(metrics, 'vigil_model_rollout_invalid_records')).toBe(1);

    await followed.close();
    expect(log.closed).toBe(true);
  });

  it('refuses to start when the log is not read to its end in time (a rollback may be missing)', async () => {
    const log = new MemoryControlLog();
    log.catchesUp = false;
    const started = followModelRolloutsLog(log, { log: silentLogger, caughtUpWithinMs: 5_000 });
    const refused = expect(started).rejects.toMatchObject({ code: 'KAFKA_UNAVAILABLE' });
    await vi.advanceTimersByTimeAsync(5_000);
    await refused;
    expect(log.closed).toBe(true);
  });

  it('starts on the pipeline defaults when the topic does not exist, and adopts it once it does', async () => {
    const log = new MemoryControlLog();
    log.failFollow = new VigilError('CONFIG_INVALID', 'topic it.vigil.control.model-rollouts does not exist');
    const followed = await followModelRolloutsLog(log, { log: silentLogger, retryMissingMs: 10_000 });
    expect(followed.rollouts?.current().revision).toBe(0);
    expect(followed.rollouts?.current().route('deterioration')).toBeUndefined();

    log.failFollow = null;
    const add = added('1.0.0');
    const approval = approved('1.0.0');
    for (const change of [add, approval, rollout('1.0.0', 'live', approval.change_id)]) await append(log, change);
    expect(followed.rollouts?.current().revision).toBe(0); // not looked again yet
    await vi.advanceTimersByTimeAsync(10_000);
    expect(followed.rollouts?.current().revision).toBe(3);
    expect(followed.rollouts?.current().route('deterioration')?.live?.version).toBe('1.0.0');
    await followed.close();
  });

  it('closes a follower that failed while catching up on a retry, before looking again', async () => {
    const log = new MemoryControlLog();
    log.failFollow = new VigilError('CONFIG_INVALID', 'topic it.vigil.control.model-rollouts does not exist');
    const followed = await followModelRolloutsLog(log, { log: silentLogger, retryMissingMs: 10_000 });
    log.failFollow = null;
    log.caughtUpError = new VigilError('KAFKA_UNAVAILABLE', 'the consumer crashed');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(log.openFollowers).toBe(0);
    log.caughtUpError = null;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(log.openFollowers).toBe(1);
    await followed.close();
    expect(log.openFollowers).toBe(0);
  });

  it('fails the start on any other error (Kafka unreachable): nothing runs on a guess', async () => {
    const log = new MemoryControlLog();
    log.failFollow = new VigilError('KAFKA_UNAVAILABLE', 'cannot reach Kafka');
    await expect(followModelRolloutsLog(log, { log: silentLogger })).rejects.toMatchObject({
      code: 'KAFKA_UNAVAILABLE',
    });
    expect(log.closed).toBe(true);
  });

  it('follows the file log of a control directory (vigil models --control-dir), new lines included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-rollouts-'));
    try {
      const writer = new FileControlLog(join(dir, MODEL_ROLLOUTS_FILE), { parse: parseModelChange });
      const add = added('1.0.0');
      const approval = approved('1.0.0');
      for (const change of [add, approval]) await writer.append(modelChangeKey(change), change);
      const followed = await followModelRollouts({ kind: 'file', controlDir: dir }, { log: silentLogger });
      expect(followed.rollouts?.current().revision).toBe(2);
      expect(followed.rollouts?.current().route('deterioration')).toBeUndefined();
      const live = rollout('1.0.0', 'live', approval.change_id);
      await writer.append(modelChangeKey(live), live);
      await vi.advanceTimersByTimeAsync(200); // the follower's poll
      expect(followed.rollouts?.current().route('deterioration')?.live).toEqual({
        version: '1.0.0',
        rollout_id: live.change_id,
        approved: true,
        artifact_sha256: SHA,
      });
      expect(followed.invalidRecords()).toBe(0);
      await followed.close();
      await writer.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
