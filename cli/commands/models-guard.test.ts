/**
 * `vigil models guard --once` in-process through commander, on the embedded mode's real parts: the file
 * model-rollouts log, an embedded ClickHouse holding drift partials (0003_drift.sql), the file audit store. A canary
 * whose SpO2 drifted past its manifest's thresholds is rolled back by `system:drift-guard` (a record on the log with
 * its evidence, an audit entry); the live version, calm, stays.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { monotonicFactory } from 'ulid';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { MIGRATIONS_DIR } from '../../adapters/clickhouse/migrations.ts';
import { FileControlLog } from '../../adapters/file/control-log.ts';
import { generateAuditKeys, KEY_FILES } from '../../audit/keys.ts';
import { modelChangeKey, parseModelChange } from '../../governance/changes.ts';
import { parseCohort } from '../../governance/cohort.ts';
import { readModelRegistry } from '../../governance/directory.ts';
import { sampleManifest } from '../../governance/testing.ts';
import type { ModelChange } from '../../governance/types.ts';
import type { ModelManifest } from '../../runtime/models.ts';
import { MODEL_ROLLOUTS_FILE, modelRolloutsLog } from './models.ts';
import { guardLoop, registerModelsGuard } from './models-guard.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 5, 8);
const MODEL = 'deterioration';
const ulid = monotonicFactory();
let dir: string;

const sha = (version: string) => version.replaceAll('.', '').padEnd(64, 'a');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-models-guard-'));
  generateAuditKeys(join(dir, 'keys'), 'vigil.test/audit');

  // The registry: 1.0.0 live, 1.1.0 canary at 10% of site-01; both allow an automatic rollback.
  const log = new FileControlLog<ModelChange>(join(dir, 'control', MODEL_ROLLOUTS_FILE), { parse: parseModelChange });
  let at = T0 - 10 * HOUR;
  const base = (version: string) => ({
    change_id: ulid(++at),
    model: MODEL,
    version,
    at,
    actor: 'ml-lead',
    reason: 't',
  });
  const append = (change: ModelChange) => log.append(modelChangeKey(change), change);
  for (const [version, mode] of [
    ['1.0.0', 'live'],
    ['1.1.0', 'canary'],
  ] as const) {
    const manifest: ModelManifest = {
      ...sampleManifest(MODEL, version),
      artifact: { file: 'model.onnx', sha256: sha(version) },
      drift: { js_threshold: 0.1, dataset_share: 0.3, auto_rollback: true },
    };
    await append({
      ...base(version),
      kind: 'added',
      artifact_sha256: sha(version),
      manifest_sha256: 'c'.repeat(64),
      manifest,
    });
    const approval: ModelChange = { ...base(version), kind: 'approved', artifact_sha256: sha(version), role: 'cso' };
    await append(approval);
    const canary = mode === 'canary';
    await append({
      ...base(version),
      kind: 'rollout',
      mode,
      percent: canary ? 10 : 100,
      cohort: parseCohort(canary ? 'site=site-01' : ''),
      cohort_expr: canary ? 'site=site-01' : '',
      approval_id: approval.change_id,
    });
  }
  await log.close();

  // The read store: drift partials of both versions; the canary's SpO2 is far from its reference, live's is not.
  const migrations = join(dir, 'migrations');
  await mkdir(migrations);
  await copyFile(join(MIGRATIONS_DIR, '0003_drift.sql'), join(migrations, '0003_drift.sql'));
  const store = openChdbStore({ path: join(dir, 'clickhouse') });
  await store.migrate({ dir: migrations });
  const features = ['respiratory_rate', 'spo2', 'on_oxygen'];
  await store.insert(
    'drift_reference_bins',
    ['1.0.0', '1.1.0'].flatMap((version) =>
      features.map((feature) => ({
        model_name: MODEL,
        model_version: version,
        feature,
        reference_sha256: 'f'.repeat(64),
        kind: 'continuous',
        bin_labels: ['a', 'b', 'c', 'd'],
        bin_edges: [1, 2, 3],
        ref_counts: [250, 250, 250, 250],
        ref_proportions: [0.25, 0.25, 0.25, 0.25],
        ref_n: 1000,
        ref_missing_rate: 0,
        epsilon: 1e-4,
        js_threshold: 0.1,
        psi_warn: 0.1,
        psi_alert: 0.25,
        min_count: 100,
        noise_z: 3.09,
        dataset_share: 0.5,
        allowed_lateness_ms: HOUR,
        loaded_at: T0,
      })),
    ),
    { dedupToken: 'ref' },
  );
  let offset = 0;
  await store.insert(
    'drift_histograms',
    ['1.0.0', '1.1.0'].flatMap((version) =>
      features.map((feature) => {
        const bins = version === '1.1.0' && feature === 'spo2' ? [5, 5, 40, 450] : [125, 125, 125, 125];
        offset += 10;
        return {
          pipeline: 'vitals@1',
          model_name: MODEL,
          model_version: version,
          site_id: 'site-01',
          firmware_version: '5.12.1',
          window_start: T0,
          window_end: T0 + HOUR,
          feature,
          bin_counts: bins,
          n: 500,
          missing: 0,
          out_of_range: 0,
          source_topic: 'vigil.telemetry.raw',
          source_partition: 0,
          first_offset: offset - 10,
          last_offset: offset - 1,
        };
      }),
    ),
    { dedupToken: 'partials' },
  );
  await store.close();
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function guard(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerModelsGuard(program.command('models'));
  const out: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  try {
    await program.parseAsync(['node', 'vigil', 'models', 'guard', ...args]);
  } finally {
    write.mockRestore();
  }
  return out.join('');
}

const flags = () => [
  '--control-dir',
  join(dir, 'control'),
  '--data-dir',
  join(dir, 'clickhouse'),
  '--audit-dir',
  join(dir, 'audit'),
  '--audit-hash-key',
  join(dir, 'keys', KEY_FILES.hash),
];

describe('vigil models guard --once', () => {
  it('rolls back the drifted canary as system:drift-guard (log record with evidence, audit entry); live stays', async () => {
    const line = JSON.parse(await guard('--once', '--json', ...flags()));
    expect(
      line.checks.map((c: { version: string; mode: string; action: string }) => `${c.version}/${c.mode}:${c.action}`),
    ).toEqual(['1.1.0/canary:rolled_back', '1.0.0/live:ok']);
    expect(line.checks[0].verdict).toMatchObject({ drifted: true, drifted_features: ['spo2'] });

    const log = modelRolloutsLog({ controlDir: join(dir, 'control') });
    const registry = await readModelRegistry(log);
    await log.close();
    expect(registry.route(MODEL)).toMatchObject({ canary: null, live: { version: '1.0.0' } });
    const rollback = registry.history(MODEL).at(-1);
    expect(rollback).toMatchObject({
      kind: 'rollback',
      version: '1.1.0',
      from_mode: 'canary',
      actor: 'system:drift-guard',
      trigger: 'drift',
      evidence: { drifted_features: ['spo2'], js_threshold: 0.1, dataset_share: 0.3 },
    });

    const audit = (await readFile(join(dir, 'audit', 'audit.jsonl'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.kind === 'entry')
      .map((r) => r.entry);
    expect(audit.at(-1)).toMatchObject({
      actor: 'system:drift-guard',
      action: 'model.rollback',
      target: `model:${MODEL}@1.1.0/${rollback!.change_id}`,
    });

    // A second pass finds nothing more to do: the canary is gone, live is calm.
    const text = await guard('--once', ...flags());
    expect(text).toMatch(/deterioration@1\.0\.0 \(live\) ok/);
    expect(text).not.toMatch(/rolled_back/);
  }, 60_000);
});

describe('vigil models guard --every (loop)', () => {
  it('passes until stopped, serving vigil_model_drift_exceeded for each watched version on /metrics', async () => {
    const stop = new AbortController();
    const reports: string[][] = [];
    const scrapes: string[] = [];
    let url = '';
    await guardLoop(
      { every: '300', metricsPort: '0', ...Object.fromEntries(pairs(flags())) },
      (report) => reports.push(report.checks.map((c) => `${c.version}:${c.action}`)),
      {
        signal: stop.signal,
        onMetricsServer: (server) => {
          url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
        },
        // No timer: each wait scrapes once, and the second ends the loop.
        wait: async (ms) => {
          expect(ms).toBe(300_000);
          scrapes.push(await (await fetch(url)).text());
          if (scrapes.length === 2) stop.abort();
        },
      },
    );
    expect(reports).toHaveLength(2);
    expect(reports[1]).toEqual(['1.0.0:ok']); // the canary was rolled back by the first test
    expect(scrapes[1]).toMatch(/^vigil_model_drift_exceeded\{model="deterioration",version="1\.0\.0"\} 0$/m);
    expect(scrapes[1]).not.toMatch(/version="1\.1\.0"/);
  }, 60_000);
});

/** `--flag value` pairs as the camelCase keys commander gives the action. */
function pairs(args: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < args.length; i += 2) {
    const key = args[i]!.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    out.push([key, args[i + 1]!]);
  }
  return out;
}
