/**
 * The drift guard: reads the latest drift window of every model version that is clinical now (the canary, the live
 * version), judges it against that version's manifest thresholds (`manifest.drift`), and where the manifest allows it
 * (`drift.auto_rollback`) takes the version out of routing with a rollback record like any other — actor
 * `system:drift-guard`, trigger `drift`, the figures as evidence — through the governance service's rollbackModel.
 * It also reports each verdict as the operational gauge `vigil_model_drift_exceeded{model,version}` (rule
 * VigilModelDriftExceeded, docs/runbooks/model-drift.md). Clinical alerts never pass through here.
 *
 * Where the figures come from: detect-drift emits partial histograms per (model version, firmware, site, window,
 * feature) that land in `drift_histograms`; the reference they are binned against is `drift_reference_bins`
 * (infra/clickhouse/migrations/0003_drift.sql). A version's window here is the sum of its partials over every
 * firmware, site and pipeline (the whole population the version scores), measured with the same SQL functions as
 * `drift_reports` (vigil_js_distance), the feature `sufficient` when it holds the reference's min_count values. The
 * latest window with at least one sufficient feature is judged (a window that has just opened has too few values to
 * say anything, and must not read as "no drift"). A version without figures (detect-drift does not run for it) gets
 * no verdict: nothing is set and nothing is done.
 *
 * The chance gate: a small cohort differs from the reference by patient mix alone (an unbiased canary of ~40 patients
 * reads JS 0.12-0.14 on some features), so a feature counts as drifted only when its JS distance is at or above the
 * manifest's `js_threshold` AND at or above `chance_js`, the distance chance alone exceeds once in a thousand for that
 * many distinct devices — the gate `drift_reports` applies, computed by the same SQL functions of 0003_drift.sql
 * (`vigil_estimate_devices` on the version's summed `_devices` sketches, `vigil_chance_js` at the reference's
 * `noise_z` and `vigil_reference_df`). Without a sketch (devices 0) or with noise_z 0 the gate is off, as there.
 *
 * Safety: at most one rollback per model per pass (the canary first: it is the less proven version; the registry is
 * read again next pass), and a live version is never rolled back automatically when the registry has no previous
 * live version to restore — that would leave the model without a clinical version; the gauge still fires.
 *
 * Core apart from wiring: the registry view, the figures and the rollback are ports; cli/commands/models-guard.ts
 * wires the control log, the read store and governance/service.ts.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import type { Clock } from '../runtime/clock.ts';
import { describeError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';
import type { ModelManifest, ModelRoute } from '../runtime/models.ts';
import type { RegisteredVersion } from './types.ts';

/** The actor of every automatic rollback (governance/types.ts ChangeBase.actor). */
export const DRIFT_GUARD_ACTOR = 'system:drift-guard';
/** How far back from a version's latest window the guard looks for one with enough values. */
export const DEFAULT_LOOKBACK_MS = 6 * 3_600_000;

/** One feature of one window: its JS distance (base 2) to the reference, null when it had no value. */
export interface WindowFeature {
  readonly name: string;
  readonly js: number | null;
  /** Non-missing values in the window. */
  readonly n?: number;
  /** Enough values for a verdict (n >= the reference's min_count); absent = sufficient. */
  readonly sufficient?: boolean;
  /** Distinct devices behind the window (sketch estimate; 0 when unknown). */
  readonly devices?: number;
  /**
   * The JS distance chance alone rarely exceeds for `devices` devices (drift_reports' `chance_js`); null or absent:
   * no gate (no device sketch, or noise_z 0).
   */
  readonly chance_js?: number | null;
}

/** A model version's drift figures for one event-time window [from, to) (epoch ms). */
export interface DriftWindow {
  readonly features: readonly WindowFeature[];
  readonly from: number;
  readonly to: number;
}

export interface DriftVerdict {
  /** The share of drifted features reached the manifest's dataset_share (and at least one feature drifted). */
  readonly drifted: boolean;
  /** Drifted features / features in the window (0 for an empty window). */
  readonly share: number;
  readonly drifted_features: readonly string[];
}

/**
 * Whether one feature drifted under a manifest's threshold: enough values, JS distance at or above `jsThreshold`, and
 * beyond chance for its sample (at or above `chance_js` when the gate is on) — the `drifted` of `drift_reports`
 * (0003_drift.sql) and metrics.ts `featureDrift`, with the manifest's threshold in place of the operator's. Pure.
 */
export function featureDrifted(feature: WindowFeature, jsThreshold: number): boolean {
  if (feature.sufficient === false || feature.js === null) return false;
  const chance = feature.chance_js ?? null;
  return feature.js >= jsThreshold && (chance === null || feature.js >= chance);
}

/**
 * The verdict of the manifest's drift thresholds on one window: a feature drifts when `featureDrifted` says so
 * (enough values, JS at or above `js_threshold` and beyond chance for its number of devices); the window drifts when
 * the share of drifted features reaches `dataset_share`. Pure.
 *
 * @example
 * driftVerdict({ js_threshold: 0.1, dataset_share: 0.25, auto_rollback: true },
 *   { from, to, features: [{ name: 'spo2', js: 0.31, chance_js: 0.12 }, { name: 'pulse', js: 0.14, chance_js: 0.3 }] });
 * // { drifted: true, share: 0.5, drifted_features: ['spo2'] }  (pulse: past 0.1 but within chance for its devices)
 */
export function driftVerdict(drift: ModelManifest['drift'], window: DriftWindow): DriftVerdict {
  const drifted_features = window.features.filter((f) => featureDrifted(f, drift.js_threshold)).map((f) => f.name);
  const total = window.features.length;
  const share = total === 0 ? 0 : drifted_features.length / total;
  return { drifted: drifted_features.length > 0 && share >= drift.dataset_share, share, drifted_features };
}

// --- figures from the read store ------------------------------------------------------------------------------------

/** Where the guard reads a version's drift figures. */
export interface DriftFigures {
  /** The latest window of `model@version` with at least one sufficient feature, or null when there is none. */
  latestWindow(model: string, version: string): Promise<DriftWindow | null>;
}

/** One row of `driftWindowsQuery`: one feature of one window, the version's partials summed. */
export interface DriftWindowRow {
  readonly window_start: number;
  readonly window_end: number;
  readonly feature: string;
  readonly n: number;
  readonly js_distance: number | null;
  readonly sufficient: boolean;
  /** Distinct devices of the window, the version's `_devices` sketches summed (0: no sketch). */
  readonly devices: number;
  /** `vigil_chance_js` for those devices at the reference's noise_z; null when the gate is off. */
  readonly chance_js: number | null;
}

/** The start (epoch ms) of a version's latest drift window, or null when it has no partials. */
export function latestWindowStartQuery(model: string, version: string) {
  return {
    sql: `
SELECT toUnixTimestamp64Milli(max(window_start)) AS latest, count() AS partials
FROM drift_histograms
WHERE model_name = {model:String} AND model_version = {version:String}`,
    params: { model, version },
    decode: (row: Record<string, unknown>): number | null =>
      Number(row['partials']) > 0 ? Number(row['latest']) : null,
  };
}

/**
 * Every feature of every window of `model@version` starting in [from, to), its partials summed over firmware, site and
 * pipeline, measured against the reference with the functions of 0003_drift.sql as the `drift_reports` view does:
 * the JS distance, `sufficient`, the distinct devices (the version's `_devices` sketches summed, then
 * `vigil_estimate_devices`) and the chance gate `chance_js` (`vigil_chance_js`, NULL when there is no sketch or
 * noise_z is 0).
 */
export function driftWindowsQuery(model: string, version: string, from: number, to: number) {
  return {
    sql: `
SELECT
    toUnixTimestamp64Milli(h.window_start) AS window_start,
    toUnixTimestamp64Milli(h.window_end) AS window_end,
    h.feature AS feature,
    h.n AS n,
    if(h.n > 0, vigil_js_distance(vigil_proportions(h.bin_counts), r.ref_proportions), NULL) AS js_distance,
    h.n >= r.min_count AS sufficient,
    h.devices AS devices,
    if(h.devices > 0 AND r.noise_z > 0,
       vigil_chance_js(vigil_reference_df(r.ref_proportions), h.devices, r.noise_z), NULL) AS chance_js
FROM
(
    SELECT
        *,
        max(if(feature = '_devices', vigil_estimate_devices(bin_counts), 0))
            OVER (PARTITION BY window_start, window_end) AS devices
    FROM
    (
        SELECT window_start, window_end, feature, sumForEach(bin_counts) AS bin_counts, sum(n) AS n
        FROM drift_histograms FINAL
        WHERE model_name = {model:String} AND model_version = {version:String}
            AND window_start >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
            AND window_start < fromUnixTimestamp64Milli({to:Int64}, 'UTC')
        GROUP BY window_start, window_end, feature
    )
) AS h
INNER JOIN
(
    SELECT feature, ref_proportions, min_count, noise_z
    FROM drift_reference_bins FINAL
    WHERE model_name = {model:String} AND model_version = {version:String}
) AS r ON h.feature = r.feature
WHERE length(h.bin_counts) = length(r.ref_proportions)
ORDER BY window_start, feature`,
    params: { model, version, from, to },
    decode: (row: Record<string, unknown>): DriftWindowRow => ({
      window_start: Number(row['window_start']),
      window_end: Number(row['window_end']),
      feature: String(row['feature']),
      n: Number(row['n']),
      js_distance: nullableNumber(row['js_distance']),
      sufficient: row['sufficient'] === true || row['sufficient'] === 1 || row['sufficient'] === '1',
      devices: Number(row['devices'] ?? 0),
      chance_js: nullableNumber(row['chance_js']),
    }),
  };
}

function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** The latest window among `rows` with at least one sufficient feature (null when none has). Pure. */
export function latestSufficientWindow(rows: readonly DriftWindowRow[]): DriftWindow | null {
  const windows = new Map<number, { to: number; features: WindowFeature[] }>();
  for (const row of rows) {
    let w = windows.get(row.window_start);
    if (!w) {
      w = { to: row.window_end, features: [] };
      windows.set(row.window_start, w);
    }
    w.features.push({
      name: row.feature,
      js: row.js_distance,
      n: row.n,
      sufficient: row.sufficient,
      devices: row.devices,
      chance_js: row.chance_js,
    });
  }
  const starts = [...windows.keys()].sort((a, b) => b - a);
  for (const from of starts) {
    const w = windows.get(from)!;
    if (w.features.some((f) => f.sufficient)) return { from, to: w.to, features: w.features };
  }
  return null;
}

/**
 * Drift figures from a ClickHouse store (embedded chdb or a server: cli/store.ts openReadStore).
 *
 * @example
 * const figures = storeDriftFigures(openReadStore({ dataDir }));
 * const window = await figures.latestWindow('news2', '1.0.0');
 */
export function storeDriftFigures(store: ClickHouseStore, lookbackMs = DEFAULT_LOOKBACK_MS): DriftFigures {
  return {
    async latestWindow(model, version) {
      const latest = latestWindowStartQuery(model, version);
      const [row] = await store.query(latest.sql, latest.params);
      const start = row === undefined ? null : latest.decode(row);
      if (start === null) return null;
      const q = driftWindowsQuery(model, version, start - lookbackMs, start + 1);
      return latestSufficientWindow((await store.query(q.sql, q.params)).map(q.decode));
    },
  };
}

// --- metrics --------------------------------------------------------------------------------------------------------

export interface DriftGuardMetrics {
  /** 1 when the version's latest window drifted past its manifest's thresholds, 0 when not; absent without figures. */
  readonly exceeded: Gauge<'model' | 'version'>;
  /** Automatic rollbacks made, by model and version. */
  readonly rollbacks: Counter<'model' | 'version'>;
}

/**
 * Registers `vigil_model_drift_exceeded{model,version}` and `vigil_model_drift_rollbacks_total{model,version}` (labels:
 * registered model names and versions, a small set and never PHI).
 *
 * @example
 * const metrics = registerDriftGuardMetrics(new Registry());
 */
export function registerDriftGuardMetrics(registry: Registry): DriftGuardMetrics {
  return {
    exceeded: new Gauge({
      name: 'vigil_model_drift_exceeded',
      help: "1 when a clinical model version's latest drift window exceeds its manifest's drift thresholds, else 0",
      labelNames: ['model', 'version'] as const,
      registers: [registry],
    }),
    rollbacks: new Counter({
      name: 'vigil_model_drift_rollbacks_total',
      help: 'Automatic rollbacks the drift guard made, by model version',
      labelNames: ['model', 'version'] as const,
      registers: [registry],
    }),
  };
}

// --- the guard ------------------------------------------------------------------------------------------------------

/** What the guard needs of the registry (governance/registry.ts ModelRegistry satisfies it). */
export interface GuardRegistryView {
  models(): string[];
  route(model: string): ModelRoute | undefined;
  version(model: string, version: string): RegisteredVersion | undefined;
  /** The live version a rollback of the live one would restore (null: none). */
  previousLive(model: string): string | null;
}

export interface DriftRollbackRequest {
  readonly version: string;
  readonly actor: string;
  readonly reason: string;
  readonly trigger: 'drift';
  readonly evidence: Readonly<Record<string, unknown>>;
}

export interface DriftGuardDeps {
  /** The registry as the control log says now (read again each pass). */
  readRegistry(): Promise<GuardRegistryView>;
  readonly figures: DriftFigures;
  /** governance/service.ts rollbackModel, bound to its context. */
  rollback(model: string, request: DriftRollbackRequest): Promise<unknown>;
  readonly clock: Clock;
  readonly metrics?: DriftGuardMetrics;
  readonly log?: Logger;
}

/**
 * What the guard did with one version: `ok` (no drift), `exceeded` (drift, the manifest does not allow a rollback),
 * `rolled_back`, `held` (drift and allowed, but not now: another version of the model was rolled back this pass, or
 * a live version has no previous live to restore), `no_figures`, `failed` (the rollback was refused or failed).
 */
export type GuardAction = 'ok' | 'exceeded' | 'rolled_back' | 'held' | 'no_figures' | 'failed';

export interface GuardCheck {
  readonly model: string;
  readonly version: string;
  readonly mode: 'canary' | 'live';
  readonly action: GuardAction;
  readonly verdict: DriftVerdict | null;
  readonly window: { readonly from: number; readonly to: number } | null;
  readonly detail: string | null;
}

export interface GuardReport {
  readonly at: number;
  readonly checks: readonly GuardCheck[];
}

/**
 * The evidence a drift rollback records: the window, each feature's JS distance and chance gate, the distinct devices,
 * the thresholds, the verdict.
 */
export function driftEvidence(
  drift: ModelManifest['drift'],
  window: DriftWindow,
  verdict: DriftVerdict,
): Record<string, unknown> {
  return {
    window: { from: new Date(window.from).toISOString(), to: new Date(window.to).toISOString() },
    js: Object.fromEntries(window.features.map((f) => [f.name, f.js])),
    chance_js: Object.fromEntries(window.features.map((f) => [f.name, f.chance_js ?? null])),
    devices: Math.max(0, ...window.features.map((f) => f.devices ?? 0)),
    drifted_features: [...verdict.drifted_features],
    share: verdict.share,
    js_threshold: drift.js_threshold,
    dataset_share: drift.dataset_share,
  };
}

/**
 * One pass of the guard over every model's canary and live versions. Never throws for one version: a failed rollback
 * is reported (`failed`) and the pass goes on. The gauge is replaced at the end of the pass, so a scrape never sees
 * it half-updated.
 *
 * @example
 * const report = await guardOnce({ readRegistry, figures, rollback, clock: systemClock, metrics });
 */
export async function guardOnce(deps: DriftGuardDeps): Promise<GuardReport> {
  const at = deps.clock.now();
  const registry = await deps.readRegistry();
  const checks: GuardCheck[] = [];
  for (const model of registry.models()) {
    const route = registry.route(model);
    if (!route) continue;
    const watched: { version: string; mode: 'canary' | 'live' }[] = [];
    if (route.canary) watched.push({ version: route.canary.version, mode: 'canary' });
    if (route.live) watched.push({ version: route.live.version, mode: 'live' });
    let rolledBack = false;
    for (const { version, mode } of watched) {
      const registered = registry.version(model, version);
      if (!registered) continue;
      const drift = registered.manifest.drift;
      const window = await deps.figures.latestWindow(model, version);
      const base = { model, version, mode };
      if (window === null) {
        checks.push({ ...base, action: 'no_figures', verdict: null, window: null, detail: null });
        continue;
      }
      const verdict = driftVerdict(drift, window);
      const span = { from: window.from, to: window.to };
      const check = (action: GuardAction, detail: string | null = null): GuardCheck => ({
        ...base,
        action,
        verdict,
        window: span,
        detail,
      });
      if (!verdict.drifted) {
        checks.push(check('ok'));
        continue;
      }
      if (!drift.auto_rollback) {
        checks.push(check('exceeded', 'the manifest does not allow an automatic rollback'));
        continue;
      }
      if (rolledBack) {
        checks.push(check('held', 'another version of the model was rolled back this pass'));
        continue;
      }
      if (mode === 'live' && registry.previousLive(model) === null) {
        checks.push(check('held', 'no previous live version to restore: the model would have no clinical version'));
        continue;
      }
      const reason =
        `drift past the manifest's thresholds in ${new Date(window.from).toISOString()}..` +
        `${new Date(window.to).toISOString()}: ${verdict.drifted_features.join(', ')} at JS >= ${drift.js_threshold} ` +
        'and beyond chance for the devices measured ' +
        `(${(verdict.share * 100).toFixed(0)}% of features, threshold ${(drift.dataset_share * 100).toFixed(0)}%)`;
      try {
        await deps.rollback(model, {
          version,
          actor: DRIFT_GUARD_ACTOR,
          reason,
          trigger: 'drift',
          evidence: driftEvidence(drift, window, verdict),
        });
        rolledBack = true;
        deps.metrics?.rollbacks.inc({ model, version });
        deps.log?.warn({ model, version, mode, drifted_features: verdict.drifted_features }, 'drift rollback');
        checks.push(check('rolled_back', reason));
      } catch (error) {
        deps.log?.error({ model, version, mode, error: describeError(error) }, 'drift rollback failed');
        checks.push(check('failed', describeError(error)));
      }
    }
  }
  if (deps.metrics) {
    const { exceeded } = deps.metrics;
    exceeded.reset();
    for (const c of checks)
      if (c.verdict) exceeded.set({ model: c.model, version: c.version }, c.verdict.drifted ? 1 : 0);
  }
  return { at, checks };
}
