/**
 * The models part of `vigil demo` (`npm start`): what an ML team would see of its models after a run.
 *
 * Before the run, a fresh model registry on the file control log `<control-dir>/model-rollouts.jsonl`, made by the
 * same service calls as `vigil models add|approve|rollout` (governance/service.ts): NEWS2 1.0.0 and deterioration
 * 1.0.0 added, approved and live, deterioration 1.1.0 added and run in shadow beside it (unapproved: a shadow may
 * be). The run follows that log like a worker follows the Kafka topic. After it, the simulated patients' ground-truth
 * outcomes (simulator/outcomes.ts) land in `outcomes`, and the deterioration versions' calibration is computed from the
 * store (governance/calibrate.ts) into `model_calibration`: the calibration line of the summary.
 *
 * The outcome window runs one horizon past the simulation, so every inference of the run has a closed window: the
 * simulated patients' futures are known, unlike a real ward's.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClickHouseStore } from '../../adapters/clickhouse/index.ts';
import { DEFAULT_MODELS_ROOT } from '../../adapters/onnx/model-store.ts';
import { calibrate, type ModelCalibration } from '../../governance/calibrate.ts';
import { readModelRegistry } from '../../governance/directory.ts';
import type { ModelRegistry } from '../../governance/registry.ts';
import { addModel, approveModel, type GovernanceContext, rolloutModel } from '../../governance/service.ts';
import { landOutcomes } from '../../pipelines/outcomes.ts';
import { systemClock } from '../../runtime/clock.ts';
import type { ModelManifest } from '../../runtime/models.ts';
import { MODEL_ROLLOUTS_FILE } from '../../runtime/runners/model-rollouts.ts';
import { outcomesFor } from '../../simulator/outcomes.ts';
import {
  fleetFor,
  resolveSimulateOptions,
  type SimulateOptions,
  horizonMs as simulationSpanMs,
} from '../../simulator/simulate.ts';
import { modelRolloutsLog } from './models.ts';

/** The demo's routing: what `vigil models rollout` would have set. */
const DEMO_ROLLOUTS = [
  { model: 'news2', version: '1.0.0', approve: true, mode: 'live' },
  { model: 'deterioration', version: '1.0.0', approve: true, mode: 'live' },
  { model: 'deterioration', version: '1.1.0', approve: false, mode: 'shadow' },
] as const;

/** The probability model whose calibration the summary shows. */
export const DEMO_CALIBRATED_MODEL = 'deterioration';

const ML_TEAM = 'ml-team-demo';
const SAFETY_OFFICER = 'clinical-safety-demo';

/** Empties the demo's earlier registry, then records the demo's models and their rollouts. */
export async function seedDemoModels(controlDir: string, modelsRoot = DEFAULT_MODELS_ROOT): Promise<ModelRegistry> {
  await rm(join(controlDir, MODEL_ROLLOUTS_FILE), { force: true });
  const log = modelRolloutsLog({ controlDir });
  const ctx: GovernanceContext = { log, clock: systemClock, modelsRoot };
  try {
    for (const r of DEMO_ROLLOUTS) {
      await addModel(ctx, join(modelsRoot, r.model, r.version), { actor: ML_TEAM, reason: 'demo: released build' });
      if (r.approve) {
        await approveModel(ctx, r.model, r.version, {
          actor: SAFETY_OFFICER,
          role: 'clinical-safety-officer',
          reason: 'demo: verification and validation report reviewed',
        });
      }
      await rolloutModel(ctx, r.model, r.version, {
        mode: r.mode,
        actor: ML_TEAM,
        reason: r.mode === 'shadow' ? 'demo: shadow period before promotion' : 'demo: clinical version',
      });
    }
    return await readModelRegistry(log);
  } finally {
    await log.close();
  }
}

/** What the summary shows of the models. */
export interface DemoModels {
  /** Per model: its routing now. */
  readonly routing: Record<string, { live: string | null; canary: string | null; shadows: string[] }>;
  /** Inferences stored, by `<model>@<version>` and rollout mode. */
  readonly inferences: Record<string, Record<string, number>>;
  /** Outcomes landed (the simulated patients' ground truth). */
  readonly outcomes: number;
  /** Calibration of the probability model per version x rollout over every patient (cohort `all`). */
  readonly calibration: readonly DemoCalibration[];
}

/** The figures the summary shows of one calibration (governance/calibrate.ts computes them). */
export type DemoCalibration = Pick<
  ModelCalibration,
  'model' | 'version' | 'rollout' | 'n' | 'events' | 'citl' | 'slope' | 'ece15' | 'brier' | 'auroc'
>;

/**
 * After the run: lands the simulated outcomes, computes and stores the calibration, and gathers what the summary shows.
 */
export async function demoModels(
  store: ClickHouseStore,
  registry: ModelRegistry,
  simulation: SimulateOptions,
): Promise<DemoModels> {
  const options = resolveSimulateOptions(simulation);
  const start = options.startTime;
  const end = start + simulationSpanMs(options);
  const manifest = registry.versions(DEMO_CALIBRATED_MODEL)[0]?.manifest as ModelManifest;
  if (manifest.output.kind !== 'probability') throw new Error(`${DEMO_CALIBRATED_MODEL} is not a probability model`);
  const { horizon_ms: horizonMs, kinds } = manifest.output.outcome;
  const outcomes = outcomesFor(fleetFor(simulation), {
    seed: options.seed,
    startTime: start,
    endTime: end + horizonMs,
  });
  const landed = await landOutcomes(store, outcomes);
  const rows = await calibrate(store, {
    model: DEMO_CALIBRATED_MODEL,
    window: { from: start, to: end },
    horizonMs,
    kinds,
    now: end + horizonMs,
  });
  const counted = await store.query<{ model: string; version: string; rollout: string; n: string | number }>(
    `SELECT model_name AS model, model_version AS version, toString(rollout) AS rollout, count() AS n
     FROM inferences_current GROUP BY model, version, rollout ORDER BY model, version, rollout`,
  );
  const inferences: Record<string, Record<string, number>> = {};
  for (const c of counted) {
    const ref = `${c.model}@${c.version}`;
    inferences[ref] = { ...inferences[ref], [c.rollout]: Number(c.n) };
  }
  const routing: DemoModels['routing'] = {};
  for (const model of registry.models()) {
    const route = registry.route(model);
    routing[model] = {
      live: route?.live?.version ?? null,
      canary: route?.canary ? `${route.canary.version} (${route.canary.percent}%)` : null,
      shadows: route?.shadows.map((s) => s.version) ?? [],
    };
  }
  return { routing, inferences, outcomes: landed, calibration: rows.filter((r) => r.cohort === 'all').map(brief) };
}

function brief(r: ModelCalibration): DemoCalibration {
  return {
    model: r.model,
    version: r.version,
    rollout: r.rollout,
    n: r.n,
    events: r.events,
    citl: r.citl,
    slope: r.slope,
    ece15: r.ece15,
    brier: r.brier,
    auroc: r.auroc,
  };
}

/** The summary's lines for the models. */
export function printDemoModels(models: DemoModels, controlDir: string, write: (line: string) => void): void {
  write(`\nModels (the registry's history: vigil models show <name> --control-dir ${controlDir})`);
  for (const [model, r] of Object.entries(models.routing)) {
    const parts = [`live ${r.live ?? '(pipeline default)'}`];
    if (r.canary) parts.push(`canary ${r.canary}`);
    if (r.shadows.length > 0) parts.push(`shadow ${r.shadows.join(', ')}`);
    write(`  ${model.padEnd(14)} ${parts.join('; ')}`);
  }
  for (const [ref, byRollout] of Object.entries(models.inferences)) {
    const counts = Object.entries(byRollout).map(([mode, n]) => `${n.toLocaleString('en')} ${mode}`);
    write(`  ${ref.padEnd(22)} inferences: ${counts.join(', ')}`);
  }
  write(`  outcomes landed: ${models.outcomes.toLocaleString('en')} (the simulated patients' ground truth)`);
  for (const c of models.calibration) {
    const f = (x: number | null, d = 3) => (x === null ? 'n/a' : x.toFixed(d));
    write(
      `  calibration ${c.model}@${c.version} (${c.rollout}): n ${c.n.toLocaleString('en')}, events ` +
        `${c.events.toLocaleString('en')}, CITL ${f(c.citl)}, slope ${f(c.slope, 2)}, ECE ${f(c.ece15)}, ` +
        `Brier ${f(c.brier)}, AUROC ${f(c.auroc)}`,
    );
  }
  if (models.calibration.length > 0) {
    write(
      '  (the simulator compresses episodes into the run, so a short run strains a 12-hour horizon: slopes far below 1 ' +
        'here; the model card, models/deterioration/README.md, gives the figures on 48-hour simulations)',
    );
  }
}
