/**
 * Drift -> automatic rollback, end to end on the embedded mode's real parts: a model registry on the file
 * model-rollouts log (the governance service adds news2@1.0.0 and deterioration@1.0.0 and @1.1.0 from the shipped
 * models/, approves both deterioration versions, puts 1.0.0 live and 1.1.0 in canary for half the patients), the
 * vitals chain run embedded with that registry (simulated fleet -> validate -> dedupe -> score -> detect-drift, every
 * output landed in chdb, the drift reference bins of every routed version landed before the first batch), then one
 * pass of the drift guard over what the store holds.
 *
 * A drifted stream (the fleet's patients sicker on most vitals than the population the references were drawn from)
 * makes the canary's figures exceed its manifest's thresholds (deterioration@1.1.0: js 0.1, dataset share 0.5,
 * auto_rollback true): the guard rolls it back as `system:drift-guard`, trigger `drift`, the figures as evidence, and
 * the live version (its manifest says auto_rollback false) is only reported. The same fleet without the shift leaves
 * both versions alone. A small canary (about 35 patients) reads past js_threshold on most features from patient mix
 * alone: the chance gate (drift_reports' chance_js for that many devices) keeps it running, while the same canary on
 * the drifted stream is still rolled back.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileControlLog } from '../adapters/file/control-log.ts';
import { DEFAULT_MODELS_ROOT } from '../adapters/onnx/index.ts';
import { ManualClock, systemClock } from '../runtime/clock.ts';
import type { SourceBatch } from '../runtime/engine.ts';
import { silentLogger } from '../runtime/log.ts';
import { runEmbeddedSession, withEmbeddedStore } from '../runtime/runners/embedded-session.ts';
import { simulatorSource } from '../runtime/runners/embedded-sources.ts';
import { acceptUngated } from '../runtime/runners/ungated.ts';
import { type Envelope, payloadOf, wrapPayload } from '../schemas/types.ts';
import { parseModelChange } from './changes.ts';
import { openModelDirectory, readModelRegistry } from './directory.ts';
import {
  DRIFT_GUARD_ACTOR,
  type DriftWindow,
  driftVerdict,
  type GuardReport,
  guardOnce,
  storeDriftFigures,
} from './drift-guard.ts';
import { addModel, approveModel, type GovernanceContext, rollbackModel, rolloutModel } from './service.ts';
import type { ModelChange } from './types.ts';

const MODEL = 'deterioration';
const SIMULATION = {
  devices: 2000,
  events: 12_000,
  seed: 'drift-rollback',
  biasedFirmware: null,
  duplicateRate: 0,
  replayRate: 0,
  malformedRate: 0,
} as const;

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-drift-rollback-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * Sicker patients than the reference population: faster pulse and breathing, fever, lower blood pressure and SpO2 —
 * five of the seven inputs (and the score they feed) move; on_oxygen and consciousness do not.
 */
function sicker(envelope: Envelope): Envelope {
  const payload = payloadOf(envelope.payload);
  if (payload?.type !== 'vital_signs') return envelope;
  const v = payload.data;
  const shift = (value: number | null, by: number, lo: number, hi: number) =>
    value === null ? null : Math.min(hi, Math.max(lo, value + by));
  return {
    ...envelope,
    payload: wrapPayload('vital_signs', {
      ...v,
      pulse: shift(v.pulse, 25, 30, 180),
      respiratory_rate: shift(v.respiratory_rate, 6, 6, 40),
      temperature_c: v.temperature_c === null ? null : Math.round(Math.min(40.5, v.temperature_c + 1.2) * 10) / 10,
      systolic_bp: shift(v.systolic_bp, -20, 80, 220),
      spo2: shift(v.spo2, -4, 80, 100),
    }),
  };
}

async function* mapped(
  source: AsyncIterable<SourceBatch<Envelope>>,
  change: (e: Envelope) => Envelope,
): AsyncGenerator<SourceBatch<Envelope>> {
  for await (const batch of source) {
    yield { ...batch, records: batch.records.map((r) => ({ ...r, value: change(r.value) })) };
  }
}

interface Scenario {
  readonly report: GuardReport;
  readonly history: readonly ModelChange[];
  readonly route: ReturnType<Awaited<ReturnType<typeof readModelRegistry>>['route']>;
  /** Drift partial rows by `<model>@<version>`. */
  readonly partials: Record<string, number>;
  /** The figures the guard judged the canary (deterioration@1.1.0) on. */
  readonly canaryWindow: DriftWindow | null;
}

/** The canary of a scenario: half the patients, or a small cohort like the integration test's (10% of one site). */
interface Canary {
  readonly percent: number;
  readonly cohortExpr?: string;
  readonly simulation?: { readonly devices: number; readonly events: number };
}
const HALF: Canary = { percent: 50 };
/**
 * A small canary: 10% of a 400-device fleet (about 35 patients, like the integration test's 10% of one site), with
 * enough readings per patient (100) that its hourly windows hold the reference's min_count values.
 */
const SMALL: Canary = { percent: 10, simulation: { devices: 400, events: 40_000 } };

/** A fresh registry, the vitals chain over the (drifted or not) fleet with it, one guard pass. */
async function scenario(name: string, drifted: boolean, canary: Canary = HALF): Promise<Scenario> {
  const root = join(dir, name);
  const logPath = join(root, 'control', 'model-rollouts.jsonl');
  const log = new FileControlLog<ModelChange>(logPath, { parse: parseModelChange });
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 5));
  const ctx: GovernanceContext = { log, clock, modelsRoot: join(root, 'models') };
  const by = { actor: 'ml-lead', reason: 'drift rollback test' };
  for (const [model, version] of [
    ['news2', '1.0.0'],
    [MODEL, '1.0.0'],
    [MODEL, '1.1.0'],
  ] as const) {
    await addModel(ctx, join(DEFAULT_MODELS_ROOT, model, version), by);
  }
  for (const version of ['1.0.0', '1.1.0']) {
    await approveModel(ctx, MODEL, version, { actor: 'dr-safety', role: 'clinical-safety-officer', reason: 'ok' });
  }
  await rolloutModel(ctx, MODEL, '1.0.0', { ...by, mode: 'live' });
  await rolloutModel(ctx, MODEL, '1.1.0', {
    ...by,
    mode: 'canary',
    percent: canary.percent,
    ...(canary.cohortExpr ? { cohortExpr: canary.cohortExpr } : {}),
  });

  // A fresh pipeline per scenario: its operators keep routing state keyed by the table's revision, and every
  // scenario's registry reaches the same revision (7 changes), so a reused definition would route by the last one's.
  // (A query string makes vite evaluate the definition module again; the operators' modules stay shared.)
  const definitionModule = `${new URL('../pipelines/vitals.ts', import.meta.url).pathname}?scenario=${name}`;
  const fresh: typeof import('../pipelines/vitals.ts') = await import(/* @vite-ignore */ definitionModule);
  const vitals = fresh.default;
  const directory = await openModelDirectory(new FileControlLog<ModelChange>(logPath, { parse: parseModelChange }));
  await directory.caughtUp;
  try {
    return await withEmbeddedStore({ dataDir: join(root, 'clickhouse'), log: silentLogger }, async (store) => {
      const source = simulatorSource({ simulation: { ...SIMULATION, ...canary.simulation }, clock: systemClock });
      await runEmbeddedSession(acceptUngated(vitals), drifted ? mapped(source, sicker) : source, store, silentLogger, {
        rollouts: directory.rollouts,
        modelsRoot: ctx.modelsRoot,
      });
      const partials: Record<string, number> = {};
      for (const row of await store.query(
        `SELECT model_name, model_version, count() AS n FROM drift_histograms FINAL GROUP BY model_name, model_version`,
      )) {
        partials[`${row['model_name']}@${row['model_version']}`] = Number(row['n']);
      }
      const canaryWindow = await storeDriftFigures(store).latestWindow(MODEL, '1.1.0');
      const report = await guardOnce({
        readRegistry: () => readModelRegistry(log),
        figures: storeDriftFigures(store),
        rollback: (model, request) => rollbackModel(ctx, model, request),
        clock,
        log: silentLogger,
      });
      const registry = await readModelRegistry(log);
      return { report, history: registry.history(MODEL), route: registry.route(MODEL), partials, canaryWindow };
    });
  } finally {
    await directory.close();
    await log.close();
  }
}

describe('drift past the manifest thresholds rolls a canary back', () => {
  it('drifted inputs: the canary deterioration@1.1.0 is rolled back by system:drift-guard with its evidence', async () => {
    const { report, history, route, partials } = await scenario('drifted', true);
    // Every routed version was measured, each under its own name (news2 by its pipeline default).
    expect(Object.keys(partials).sort()).toEqual(['deterioration@1.0.0', 'deterioration@1.1.0', 'news2@1.0.0']);

    const checks = report.checks.map((c) => `${c.model}@${c.version}/${c.mode}:${c.action}`);
    // The canary first (the less proven version); live drifted too, but its manifest does not allow a rollback.
    expect(checks).toEqual(['deterioration@1.1.0/canary:rolled_back', 'deterioration@1.0.0/live:exceeded']);
    const canary = report.checks[0]!;
    expect(canary.verdict!.drifted).toBe(true);
    expect(canary.verdict!.share).toBeGreaterThanOrEqual(0.5);
    expect(canary.verdict!.drifted_features).toEqual(
      expect.arrayContaining(['pulse', 'respiratory_rate', 'temperature_c', 'score']),
    );
    expect(canary.verdict!.drifted_features).not.toContain('consciousness');

    // The registry: no canary, 1.0.0 still live; the rollback recorded like any other change, with its evidence.
    expect(route).toMatchObject({ canary: null, live: { version: '1.0.0' } });
    const rollback = history.at(-1) as ModelChange & { evidence: Record<string, unknown> };
    expect(rollback).toMatchObject({
      kind: 'rollback',
      version: '1.1.0',
      from_mode: 'canary',
      actor: DRIFT_GUARD_ACTOR,
      trigger: 'drift',
      evidence: { js_threshold: 0.1, dataset_share: 0.5, drifted_features: canary.verdict!.drifted_features },
    });
    const js = rollback.evidence['js'] as Record<string, number | null>;
    expect(Object.keys(js).sort()).toEqual(
      [
        'consciousness',
        'on_oxygen',
        'pulse',
        'respiratory_rate',
        'score',
        'spo2',
        'systolic_bp',
        'temperature_c',
      ].sort(),
    );
    expect(js['pulse']).toBeGreaterThan(0.1);
    expect(rollback.reason).toMatch(/drift past the manifest's thresholds/);
  }, 120_000);

  it('the same fleet without drift: both versions judged ok, nothing rolled back', async () => {
    const { report, history, route, partials } = await scenario('calm', false);
    expect(Object.keys(partials).sort()).toEqual(['deterioration@1.0.0', 'deterioration@1.1.0', 'news2@1.0.0']);
    expect(report.checks.map((c) => `${c.model}@${c.version}/${c.mode}:${c.action}`)).toEqual([
      'deterioration@1.1.0/canary:ok',
      'deterioration@1.0.0/live:ok',
    ]);
    for (const check of report.checks) expect(check.verdict!.drifted_features).toEqual([]);
    expect(route).toMatchObject({ canary: { version: '1.1.0', percent: 50 }, live: { version: '1.0.0' } });
    expect(history.some((c) => c.kind === 'rollback')).toBe(false);
  }, 120_000);

  it('a small unbiased canary is not rolled back: patient mix reads past js_threshold but within chance', async () => {
    const { report, history, route, canaryWindow } = await scenario('small-calm', false, SMALL);
    expect(report.checks.map((c) => `${c.model}@${c.version}/${c.mode}:${c.action}`)).toEqual([
      'deterioration@1.1.0/canary:ok',
      'deterioration@1.0.0/live:ok',
    ]);
    expect(route).toMatchObject({ canary: { version: '1.1.0', percent: 10 }, live: { version: '1.0.0' } });
    expect(history.some((c) => c.kind === 'rollback')).toBe(false);

    // Why the gate matters: about 35 patients, and most features past js 0.1 from who they are alone (seeded: 5 of
    // 8, JS 0.12-0.15), each well within the distance chance gives that many devices (0.35-0.41).
    const window = canaryWindow!;
    const devices = window.features[0]!.devices!;
    expect(devices).toBeGreaterThan(20);
    expect(devices).toBeLessThan(50);
    const pastThreshold = window.features.filter((f) => f.js !== null && f.js >= 0.1);
    expect(pastThreshold.length / window.features.length).toBeGreaterThanOrEqual(0.5);
    for (const f of pastThreshold) expect(f.js!).toBeLessThan(f.chance_js!);
    // Without the gate this canary would have been rolled back while healthy.
    const ungated = { ...window, features: window.features.map((f) => ({ ...f, chance_js: null })) };
    expect(driftVerdict({ js_threshold: 0.1, dataset_share: 0.5, auto_rollback: true }, ungated).drifted).toBe(true);
  }, 120_000);

  it('the same small canary with drifted inputs is still rolled back: the shift is far beyond chance', async () => {
    const { report, route, canaryWindow } = await scenario('small-drifted', true, SMALL);
    expect(report.checks.map((c) => `${c.model}@${c.version}/${c.mode}:${c.action}`)).toEqual([
      'deterioration@1.1.0/canary:rolled_back',
      'deterioration@1.0.0/live:exceeded',
    ]);
    expect(report.checks[0]!.verdict!.drifted_features).toEqual(
      expect.arrayContaining(['pulse', 'respiratory_rate', 'temperature_c', 'score']),
    );
    const pulse = canaryWindow!.features.find((f) => f.name === 'pulse')!;
    expect(pulse.js!).toBeGreaterThan(pulse.chance_js!);
    expect(route).toMatchObject({ canary: null, live: { version: '1.0.0' } });
  }, 120_000);
});
