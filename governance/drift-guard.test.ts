/**
 * The drift guard: the verdict of a manifest's thresholds on a window (pure), the window the figures give (summed
 * partials on embedded ClickHouse, the same JS distance as metrics.ts), and a pass over a real ModelRegistry whose
 * rollback port appends the record the governance service would: which versions are rolled back, which are only
 * reported, what the gauge says.
 */
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { monotonicFactory } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../adapters/clickhouse/chdb.ts';
import { MIGRATIONS_DIR } from '../adapters/clickhouse/migrations.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import {
  chanceJsDistance,
  estimateDevices,
  jsDistance,
  proportions,
  referenceDegreesOfFreedom,
} from '../operators/detect-drift/metrics.ts';
import { ManualClock } from '../runtime/clock.ts';
import { VigilError } from '../runtime/errors.ts';
import type { ModelManifest } from '../runtime/models.ts';
import { parseCohort } from './cohort.ts';
import {
  DRIFT_GUARD_ACTOR,
  type DriftFigures,
  type DriftRollbackRequest,
  type DriftWindow,
  driftVerdict,
  featureDrifted,
  guardOnce,
  latestSufficientWindow,
  registerDriftGuardMetrics,
  storeDriftFigures,
} from './drift-guard.ts';
import { ModelRegistry } from './registry.ts';
import { sampleManifest } from './testing.ts';
import type { ModelChange, RolloutMode } from './types.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 5, 8);
const DRIFT = { js_threshold: 0.1, dataset_share: 0.5, auto_rollback: true } as const;

const windowOf = (features: DriftWindow['features']): DriftWindow => ({ from: T0, to: T0 + HOUR, features });

describe('driftVerdict', () => {
  it('a feature drifts at or above js_threshold; the window when the share reaches dataset_share', () => {
    const window = windowOf([
      { name: 'spo2', js: 0.1 },
      { name: 'pulse', js: 0.0999 },
      { name: 'respiratory_rate', js: 0.4 },
      { name: 'score', js: null },
    ]);
    expect(driftVerdict(DRIFT, window)).toEqual({
      drifted: true,
      share: 0.5,
      drifted_features: ['spo2', 'respiratory_rate'],
    });
    expect(driftVerdict({ ...DRIFT, dataset_share: 0.51 }, window).drifted).toBe(false);
  });

  it('a feature without enough values never drifts; an empty window or no drifted feature is no drift', () => {
    const window = windowOf([
      { name: 'spo2', js: 0.5, sufficient: false },
      { name: 'pulse', js: 0.01, sufficient: true },
    ]);
    expect(driftVerdict(DRIFT, window)).toEqual({ drifted: false, share: 0, drifted_features: [] });
    expect(driftVerdict({ ...DRIFT, dataset_share: 0 }, windowOf([])).drifted).toBe(false);
    expect(driftVerdict({ ...DRIFT, dataset_share: 0 }, window).drifted).toBe(false);
  });

  it('the chance gate: past js_threshold is not enough when chance alone gives that distance for so few devices', () => {
    // What an unbiased canary of ~40 patients reads from patient mix alone (JS 0.12-0.14) against its chance gate.
    const chance = chanceJsDistance(9, 40, 3.09);
    expect(chance).toBeGreaterThan(0.3);
    const window = windowOf([
      { name: 'pulse', js: 0.14, devices: 40, chance_js: chance },
      { name: 'spo2', js: 0.12, devices: 40, chance_js: chance },
      { name: 'respiratory_rate', js: chance, devices: 40, chance_js: chance },
      { name: 'score', js: 0.13, devices: 0, chance_js: null }, // no device sketch: no gate, as in drift_reports
    ]);
    expect(featureDrifted(window.features[0]!, 0.1)).toBe(false);
    expect(driftVerdict(DRIFT, window)).toEqual({
      drifted: true,
      share: 0.5,
      drifted_features: ['respiratory_rate', 'score'],
    });
    // The same figures against a threshold above them: the gate never makes a feature drift on its own.
    expect(driftVerdict({ ...DRIFT, js_threshold: 0.5 }, window).drifted_features).toEqual([]);
  });
});

describe('latestSufficientWindow', () => {
  it('takes the latest window with a sufficient feature: a window just opened says nothing yet', () => {
    const row = (start: number, feature: string, js: number, sufficient: boolean) => ({
      window_start: start,
      window_end: start + HOUR,
      feature,
      n: sufficient ? 5_000 : 12,
      js_distance: js,
      sufficient,
      devices: 300,
      chance_js: 0.12,
    });
    const window = latestSufficientWindow([
      row(T0, 'spo2', 0.05, true),
      row(T0 + HOUR, 'spo2', 0.3, true),
      row(T0 + HOUR, 'pulse', 0.02, false),
      row(T0 + 2 * HOUR, 'spo2', 0.9, false),
    ]);
    expect(window).toEqual({
      from: T0 + HOUR,
      to: T0 + 2 * HOUR,
      features: [
        { name: 'spo2', js: 0.3, n: 5_000, sufficient: true, devices: 300, chance_js: 0.12 },
        { name: 'pulse', js: 0.02, n: 12, sufficient: false, devices: 300, chance_js: 0.12 },
      ],
    });
    expect(latestSufficientWindow([row(T0, 'spo2', 0.9, false)])).toBeNull();
  });
});

// --- figures from embedded ClickHouse --------------------------------------------------------------------------------

describe('storeDriftFigures (embedded ClickHouse, 0003_drift.sql)', () => {
  let dir: string;
  let store: ClickHouseStore;
  const REF = [0.25, 0.25, 0.25, 0.25];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vigil-drift-guard-'));
    const migrations = join(dir, 'migrations');
    await mkdir(migrations);
    await copyFile(join(MIGRATIONS_DIR, '0003_drift.sql'), join(migrations, '0003_drift.sql'));
    store = openChdbStore({ path: join(dir, 'clickhouse') });
    await store.migrate({ dir: migrations });
    const reference = (model: string, version: string, feature: string) => ({
      model_name: model,
      model_version: version,
      feature,
      reference_sha256: 'f'.repeat(64),
      kind: 'continuous',
      bin_labels: ['a', 'b', 'c', 'd'],
      bin_edges: [1, 2, 3],
      ref_counts: [250, 250, 250, 250],
      ref_proportions: REF,
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
    });
    await store.insert(
      'drift_reference_bins',
      ['spo2', 'pulse'].map((f) => reference('news2', '1.0.0', f)),
      { dedupToken: 'ref' },
    );
    let offset = 0;
    const partial = (site: string, start: number, feature: string, counts: number[], version = '1.0.0') => {
      offset += 10;
      return {
        pipeline: 'vitals@1',
        model_name: 'news2',
        model_version: version,
        site_id: site,
        firmware_version: '5.12.1',
        window_start: start,
        window_end: start + HOUR,
        feature,
        bin_counts: counts,
        n: counts.reduce((a, b) => a + b, 0),
        missing: 0,
        out_of_range: 0,
        source_topic: 'vigil.telemetry.raw',
        source_partition: 0,
        first_offset: offset - 10,
        last_offset: offset - 1,
      };
    };
    await store.insert(
      'drift_histograms',
      [
        // Hour 0: SpO2 shifted at both sites (summed: [10, 30, 60, 100] + [10, 20, 70, 100]), pulse as the reference.
        partial('site-a', T0, 'spo2', [10, 30, 60, 100]),
        partial('site-b', T0, 'spo2', [10, 20, 70, 100]),
        partial('site-a', T0, 'pulse', [50, 50, 50, 50]),
        partial('site-b', T0, 'pulse', [50, 50, 50, 50]),
        partial('site-a', T0, '_devices', [3, 0, 4, 1]),
        // Hour 1 has just opened: too few values for a verdict.
        partial('site-a', T0 + HOUR, 'spo2', [0, 0, 0, 9]),
        partial('site-a', T0 + HOUR, 'pulse', [0, 0, 0, 9]),
        // Another version of the model: not read.
        partial('site-a', T0, 'spo2', [0, 0, 0, 500], '1.1.0'),
      ],
      { dedupToken: 'partials' },
    );
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('sums a version partials over sites, skips the device sketch and an open window, with metrics.ts numbers', async () => {
    const window = await storeDriftFigures(store).latestWindow('news2', '1.0.0');
    expect(window).not.toBeNull();
    expect(window!.from).toBe(T0);
    expect(window!.to).toBe(T0 + HOUR);
    const byName = Object.fromEntries(window!.features.map((f) => [f.name, f]));
    expect(Object.keys(byName).sort()).toEqual(['pulse', 'spo2']);
    expect(byName['spo2']!.n).toBe(400);
    expect(byName['spo2']!.js).toBeCloseTo(jsDistance(proportions([20, 50, 130, 200]), REF), 12);
    expect(byName['pulse']!.js).toBeCloseTo(0, 12);
    // The chance gate of drift_reports, from the version's summed device sketch, with metrics.ts numbers.
    const devices = estimateDevices([3, 0, 4, 1]);
    expect(byName['spo2']!.devices).toBeCloseTo(devices, 9);
    expect(byName['spo2']!.chance_js).toBeCloseTo(chanceJsDistance(referenceDegreesOfFreedom(REF), devices, 3.09), 9);
    // SpO2 is past js_threshold, but about six devices give such a distance by chance: no drift, as drift_reports says.
    expect(byName['spo2']!.js).toBeGreaterThan(0.1);
    expect(byName['spo2']!.js).toBeLessThan(byName['spo2']!.chance_js!);
    expect(driftVerdict(DRIFT, window!)).toEqual({ drifted: false, share: 0, drifted_features: [] });
    const [report] = await store.query(
      `SELECT countIf(drifted) AS drifted FROM drift_reports WHERE model_version = '1.0.0' AND feature = 'spo2'
         AND site_id = 'site-a' AND window_start = fromUnixTimestamp64Milli(${T0}, 'UTC')`,
    );
    expect(Number(report!['drifted'])).toBe(0);
    // Without a sketch the gate is off, as in drift_reports: the same figures drift.
    const ungated = { ...window!, features: window!.features.map((f) => ({ ...f, chance_js: null })) };
    expect(driftVerdict(DRIFT, ungated)).toEqual({ drifted: true, share: 0.5, drifted_features: ['spo2'] });
  });

  it('a version without partials (or without a reference) has no figures', async () => {
    expect(await storeDriftFigures(store).latestWindow('news2', '9.9.9')).toBeNull();
    expect(await storeDriftFigures(store).latestWindow('news2', '1.1.0')).toBeNull(); // no reference rows
  });
});

// --- the guard over a real registry ----------------------------------------------------------------------------------

const ulid = monotonicFactory();
let at = 0;

function manifestWith(model: string, version: string, drift: Partial<ModelManifest['drift']>): ModelManifest {
  const manifest = sampleManifest(model, version);
  return { ...manifest, drift: { ...manifest.drift, ...DRIFT, ...drift } };
}

/** A registry where `model` has live versions 1.0.0 then 1.1.0 (1.0.0 remembered) and a canary 2.0.0. */
function registryWith(model: string, drift: Partial<ModelManifest['drift']>, versions = ['1.0.0', '1.1.0', '2.0.0']) {
  const registry = new ModelRegistry();
  const base = (version: string) => ({
    change_id: ulid(1_000 + ++at),
    model,
    version,
    at,
    actor: 'ml-lead',
    reason: 'test',
  });
  const sha = (version: string) => version.replaceAll('.', '').padEnd(64, 'e');
  const approvals = new Map<string, string>();
  for (const version of versions) {
    const manifest = manifestWith(model, version, drift);
    registry.apply({
      ...base(version),
      kind: 'added',
      artifact_sha256: sha(version),
      manifest_sha256: 'c'.repeat(64),
      manifest: { ...manifest, artifact: { file: 'model.onnx', sha256: sha(version) } },
    });
    const approval = { ...base(version), kind: 'approved' as const, artifact_sha256: sha(version), role: 'cso' };
    registry.apply(approval);
    approvals.set(version, approval.change_id);
  }
  const rollout = (version: string, mode: RolloutMode, percent = 100, cohortExpr = '') =>
    registry.apply({
      ...base(version),
      kind: 'rollout',
      mode,
      percent,
      cohort: parseCohort(cohortExpr),
      cohort_expr: cohortExpr,
      approval_id: approvals.get(version) ?? null,
    });
  return { registry, rollout, base };
}

/** The rollback port as governance/service.ts implements it: a rollback record folded into the registry. */
function rollbackInto(registry: ModelRegistry, calls: { model: string; request: DriftRollbackRequest }[]) {
  return async (model: string, request: DriftRollbackRequest) => {
    calls.push({ model, request });
    const route = registry.route(model)!;
    const fromMode: RolloutMode = route.canary?.version === request.version ? 'canary' : 'live';
    const change: ModelChange = {
      change_id: ulid(1_000 + ++at),
      model,
      version: request.version,
      at,
      actor: request.actor,
      reason: request.reason,
      kind: 'rollback',
      from_mode: fromMode,
      restored: fromMode === 'live' ? registry.previousLive(model) : null,
      trigger: request.trigger,
      evidence: request.evidence,
    };
    registry.apply(change);
    return change;
  };
}

/** Figures per `model@version`: drifted (SpO2 and RR far off), calm, or none. */
function figures(map: Record<string, 'drifted' | 'calm'>): DriftFigures {
  return {
    async latestWindow(model, version) {
      const state = map[`${model}@${version}`];
      if (state === undefined) return null;
      const far = state === 'drifted' ? 0.4 : 0.02;
      return windowOf([
        { name: 'spo2', js: far, n: 5_000, sufficient: true },
        { name: 'respiratory_rate', js: far, n: 5_000, sufficient: true },
        { name: 'on_oxygen', js: 0.01, n: 5_000, sufficient: true },
      ]);
    },
  };
}

async function gauge(metrics: Registry): Promise<Record<string, number>> {
  const json = await metrics.getMetricsAsJSON();
  const exceeded = json.find((m) => m.name === 'vigil_model_drift_exceeded')!;
  return Object.fromEntries(
    (exceeded.values as { labels: Record<string, string>; value: number }[]).map((v) => [
      `${v.labels['model']}@${v.labels['version']}`,
      v.value,
    ]),
  );
}

describe('guardOnce', () => {
  it('rolls back a drifted canary whose manifest allows it, as system:drift-guard with the figures as evidence', async () => {
    const { registry, rollout } = registryWith('det', {});
    rollout('1.0.0', 'live');
    rollout('1.1.0', 'live');
    rollout('2.0.0', 'canary', 10, 'site=site-01');
    const calls: { model: string; request: DriftRollbackRequest }[] = [];
    const metrics = new Registry();
    const report = await guardOnce({
      readRegistry: async () => registry,
      figures: figures({ 'det@2.0.0': 'drifted', 'det@1.1.0': 'drifted' }),
      rollback: rollbackInto(registry, calls),
      clock: new ManualClock(T0 + 2 * HOUR),
      metrics: registerDriftGuardMetrics(metrics),
    });
    // The canary goes first; the live version waits for the next pass (one rollback per model per pass).
    expect(report.checks.map((c) => `${c.version}/${c.mode}:${c.action}`)).toEqual([
      '2.0.0/canary:rolled_back',
      '1.1.0/live:held',
    ]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.request).toMatchObject({
      version: '2.0.0',
      actor: DRIFT_GUARD_ACTOR,
      trigger: 'drift',
      evidence: {
        window: { from: new Date(T0).toISOString(), to: new Date(T0 + HOUR).toISOString() },
        js: { spo2: 0.4, respiratory_rate: 0.4, on_oxygen: 0.01 },
        drifted_features: ['spo2', 'respiratory_rate'],
        js_threshold: 0.1,
        dataset_share: 0.5,
      },
    });
    expect(calls[0]!.request.reason).toMatch(/spo2, respiratory_rate/);
    expect(registry.route('det')?.canary).toBeNull();
    expect(registry.history('det').at(-1)).toMatchObject({ kind: 'rollback', actor: DRIFT_GUARD_ACTOR });
    expect(await gauge(metrics)).toEqual({ 'det@2.0.0': 1, 'det@1.1.0': 1 });

    // Next pass: the live version is rolled back, restoring 1.0.0; then 1.0.0 is calm.
    const next = await guardOnce({
      readRegistry: async () => registry,
      figures: figures({ 'det@1.1.0': 'drifted', 'det@1.0.0': 'calm' }),
      rollback: rollbackInto(registry, calls),
      clock: new ManualClock(T0 + 3 * HOUR),
      metrics: registerDriftGuardMetrics(new Registry()),
    });
    expect(next.checks.map((c) => `${c.version}/${c.mode}:${c.action}`)).toEqual(['1.1.0/live:rolled_back']);
    expect(registry.route('det')?.live?.version).toBe('1.0.0');
  });

  it('only reports when the manifest does not allow it, and never leaves a model without a live version', async () => {
    const noAuto = registryWith('nea', { auto_rollback: false });
    noAuto.rollout('1.0.0', 'live');
    const alone = registryWith('solo', {}, ['1.0.0']);
    alone.rollout('1.0.0', 'live');
    const both = {
      models: () => ['nea', 'solo'],
      route: (m: string) => (m === 'nea' ? noAuto.registry : alone.registry).route(m),
      version: (m: string, v: string) => (m === 'nea' ? noAuto.registry : alone.registry).version(m, v),
      previousLive: (m: string) => (m === 'nea' ? noAuto.registry : alone.registry).previousLive(m),
    };
    const calls: { model: string; request: DriftRollbackRequest }[] = [];
    const metrics = new Registry();
    const report = await guardOnce({
      readRegistry: async () => both,
      figures: figures({ 'nea@1.0.0': 'drifted', 'solo@1.0.0': 'drifted' }),
      rollback: async (model, request) => {
        calls.push({ model, request });
      },
      clock: new ManualClock(T0),
      metrics: registerDriftGuardMetrics(metrics),
    });
    expect(report.checks.map((c) => `${c.model}@${c.version}:${c.action}`)).toEqual([
      'nea@1.0.0:exceeded',
      'solo@1.0.0:held',
    ]);
    expect(report.checks[1]!.detail).toMatch(/no previous live/);
    expect(calls).toEqual([]);
    expect(await gauge(metrics)).toEqual({ 'nea@1.0.0': 1, 'solo@1.0.0': 1 });
  });

  it('calm or unmeasured versions: gauge 0 or absent, nothing rolled back; a refused rollback is reported', async () => {
    const { registry, rollout } = registryWith('det', {});
    rollout('1.0.0', 'live');
    rollout('1.1.0', 'live');
    rollout('2.0.0', 'canary', 50);
    const metrics = registerDriftGuardMetrics(new Registry());
    const calm = await guardOnce({
      readRegistry: async () => registry,
      figures: figures({ 'det@1.1.0': 'calm' }),
      rollback: async () => {
        throw new Error('must not be called');
      },
      clock: new ManualClock(T0),
      metrics,
    });
    expect(calm.checks.map((c) => `${c.version}:${c.action}`)).toEqual(['2.0.0:no_figures', '1.1.0:ok']);
    const registryOfMetrics = new Registry();
    registryOfMetrics.registerMetric(metrics.exceeded);
    expect(await gauge(registryOfMetrics)).toEqual({ 'det@1.1.0': 0 });

    const refused = await guardOnce({
      readRegistry: async () => registry,
      figures: figures({ 'det@2.0.0': 'drifted' }),
      rollback: async () => {
        throw new VigilError('MODEL_CHANGE_REFUSED', 'det@2.0.0 is not the canary any more');
      },
      clock: new ManualClock(T0),
    });
    expect(refused.checks[0]).toMatchObject({ action: 'failed', detail: expect.stringMatching(/not the canary/) });
  });
});
