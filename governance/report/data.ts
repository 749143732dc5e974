/**
 * Loads the figures of `vigil models report` (types.ts ReportData) from a read store (cli/store.ts openReadStore) and
 * the model registry folded from the model-rollouts control log (governance/directory.ts readModelRegistry). Every
 * query the report runs is here or reused from where it already lives: the calibration job's labelling and figures
 * (governance/calibrate.ts computeCalibration -> calibration.ts calibrationMetrics) and detect-drift's per-window
 * reports (operators/detect-drift/queries.ts driftReportsQuery). Reads only; only aggregates leave ClickHouse, except
 * the calibration job's own labelling.
 *
 * Time: the report's "now" for closing outcome windows is the data's own clock (the latest observed inference or
 * recorded outcome) unless the caller gives one, so a simulated fleet whose clock differs from the machine's still
 * gets its calibration.
 */
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { driftReportsQuery } from '../../operators/detect-drift/queries.ts';
import type { DriftReportRow } from '../../operators/detect-drift/report.ts';
import type { ModelManifest, ModelRoute } from '../../runtime/models.ts';
import { computeCalibration } from '../calibrate.ts';
import type { ModelChange, RegisteredVersion } from '../types.ts';
import type { CalibrationRow, DriftSeries, ReportData, ScoreHistogram, VersionSummary } from './types.ts';

/** What the report reads of the registry (governance/registry.ts ModelRegistry satisfies it). */
export interface RegistryView {
  versions(model: string): readonly RegisteredVersion[];
  route(model: string): ModelRoute | undefined;
  history(model?: string): readonly ModelChange[];
}

export interface LoadReportOptions {
  readonly model: string;
  /** For the page's footer: where the control log was read (e.g. `file: .vigil/control/model-rollouts.jsonl`). */
  readonly controlLog: string;
  /** When the report is made (epoch ms); the page's date and the timeline's right edge. */
  readonly generatedAt: number;
  /** Outcome windows ending after this are open (default: the data's clock, see the module comment). */
  readonly now?: number;
}

/** Score bins of a probability model: 20 of width 0.05 over [0, 1]. */
const PROBABILITY_BINS = { lo: 0, width: 0.05, count: 20 };
/** Most bins for other scores (NEWS2 points are 0..20: one bin per point). */
const MAX_SCORE_BINS = 40;
/** The latest instant DateTime64(3) holds (drift windows are read up to it). */
const END_OF_TIME = Date.UTC(2299, 0, 1);

const VERSIONS_SQL = `
SELECT model_version, count() AS n, min(score) AS min_score, max(score) AS max_score,
       toUnixTimestamp64Milli(max(observed_at)) AS last_observed
FROM inferences_current
WHERE model_name = {model:String}
GROUP BY model_version
ORDER BY model_version`;

const SCORES_SQL = `
SELECT rollout, site_id,
       least(greatest(toInt64(floor((score - {lo:Float64}) / {width:Float64})), 0), {last:Int64}) AS bin,
       count() AS n
FROM inferences_current
WHERE model_name = {model:String} AND model_version = {version:String}
GROUP BY rollout, site_id, bin
ORDER BY rollout, site_id, bin`;

const TABLES_SQL = `
SELECT name FROM system.tables
WHERE database = currentDatabase() AND name IN ('inferences_current', 'outcomes', 'drift_reports')`;

const LAST_OUTCOME_SQL = 'SELECT toUnixTimestamp64Milli(max(recorded_at)) AS last FROM outcomes';

interface StoredVersion {
  readonly version: string;
  readonly n: number;
  readonly minScore: number;
  readonly maxScore: number;
  readonly lastObserved: number;
}

/**
 * @example
 * const store = openReadStore({ dataDir: '.vigil/embedded/clickhouse' });
 * const registry = await readModelRegistry(log);
 * const data = await loadReportData(store, registry, { model: 'deterioration', controlLog: 'kafka', generatedAt: Date.now() });
 */
export async function loadReportData(
  store: Pick<ClickHouseStore, 'query' | 'kind' | 'location'>,
  registry: RegistryView,
  options: LoadReportOptions,
): Promise<ReportData> {
  const model = options.model;
  const notes: string[] = [];
  const tables = new Set((await store.query<{ name: string }>(TABLES_SQL)).map((r) => r.name));
  if (!tables.has('inferences_current')) notes.push('The store has no inferences yet (run a pipeline first).');

  const stored: StoredVersion[] = tables.has('inferences_current')
    ? (await store.query<Record<string, unknown>>(VERSIONS_SQL, { model })).map((r) => ({
        version: String(r['model_version']),
        n: Number(r['n']),
        minScore: Number(r['min_score']),
        maxScore: Number(r['max_score']),
        lastObserved: Number(r['last_observed']),
      }))
    : [];
  const registered = registry.versions(model);
  const manifests = new Map(registered.map((v) => [v.version, v.manifest]));
  const versionNames = [...new Set([...registered.map((v) => v.version), ...stored.map((s) => s.version)])].sort(
    compareVersions,
  );
  const route = registry.route(model);
  const versions = versionNames.map((version) =>
    summarise(
      version,
      registered.find((v) => v.version === version),
      stored.find((s) => s.version === version),
      route,
    ),
  );

  const scores: ScoreHistogram[] = [];
  for (const s of stored) scores.push(...(await scoreHistograms(store, model, s, manifests.get(s.version))));

  const calibration = await loadCalibration(store, model, stored, manifests, tables, notes, options.now);

  const drift: DriftSeries[] = [];
  if (tables.has('drift_reports')) {
    for (const version of versionNames) {
      const series = await driftSeries(store, model, version, manifests.get(version));
      if (series.points.length > 0) drift.push(series);
    }
  } else notes.push('The store has no drift tables: drift over time is not shown.');

  return {
    model,
    generated_at: options.generatedAt,
    sources: { store: `${store.kind}: ${store.location}`, control_log: options.controlLog },
    versions,
    calibration,
    scores,
    drift,
    history: registry.history(model),
    notes,
  };
}

function summarise(
  version: string,
  registered: RegisteredVersion | undefined,
  stored: StoredVersion | undefined,
  route: ModelRoute | undefined,
): VersionSummary {
  return {
    version,
    artifact_sha256: registered?.artifact_sha256 ?? null,
    manifest_sha256: registered?.manifest_sha256 ?? null,
    intended_use: registered?.manifest.intended_use ?? null,
    acceptance_criteria: registered?.manifest.acceptance_criteria ?? null,
    output_kind: registered?.manifest.output.kind ?? null,
    added: registered ? { at: registered.added.at, actor: registered.added.actor } : null,
    approvals: (registered?.approvals ?? []).map((a) => ({ at: a.at, actor: a.actor, role: a.role, reason: a.reason })),
    routing: routingOf(version, route),
    inferences: stored?.n ?? 0,
  };
}

/** Where the registry routes a version now, in words. */
export function routingOf(version: string, route: ModelRoute | undefined): string | null {
  if (route === undefined) return null;
  if (route.live?.version === version) return 'live';
  if (route.canary?.version === version) {
    return `canary ${route.canary.percent}% of ${route.canary.cohort_expr || 'everyone'}`;
  }
  if (route.shadows.some((s) => s.version === version)) return 'shadow';
  return null;
}

/** Bins for a version's scores: probabilities over [0, 1]; other scores one bin per point up to MAX_SCORE_BINS. */
export function scoreBinsFor(
  manifest: ModelManifest | undefined,
  minScore: number,
  maxScore: number,
): { lo: number; width: number; count: number } {
  const kind = manifest?.output.kind;
  if (kind === 'probability' || (kind === undefined && minScore >= 0 && maxScore <= 1)) return PROBABILITY_BINS;
  const lo = Math.min(0, Math.floor(minScore));
  const span = Math.max(1, Math.ceil(maxScore) + 1 - lo);
  const width = span <= MAX_SCORE_BINS ? 1 : span / MAX_SCORE_BINS;
  return { lo, width, count: Math.min(span, MAX_SCORE_BINS) };
}

async function scoreHistograms(
  store: Pick<ClickHouseStore, 'query'>,
  model: string,
  s: StoredVersion,
  manifest: ModelManifest | undefined,
): Promise<ScoreHistogram[]> {
  const bins = scoreBinsFor(manifest, s.minScore, s.maxScore);
  const rows = await store.query<Record<string, unknown>>(SCORES_SQL, {
    model,
    version: s.version,
    lo: bins.lo,
    width: bins.width,
    last: bins.count - 1,
  });
  const series = new Map<string, number[]>();
  const add = (by: 'rollout' | 'site', cohort: string, bin: number, n: number) => {
    const key = `${by}\0${cohort}`;
    let counts = series.get(key);
    if (counts === undefined) {
      counts = new Array<number>(bins.count).fill(0);
      series.set(key, counts);
    }
    counts[bin] = (counts[bin] ?? 0) + n;
  };
  for (const row of rows) {
    const bin = Number(row['bin']);
    const n = Number(row['n']);
    add('rollout', String(row['rollout']), bin, n);
    add('site', String(row['site_id']), bin, n);
  }
  const out: ScoreHistogram[] = [];
  for (const [key, counts] of series) {
    const [by, cohort] = key.split('\0') as ['rollout' | 'site', string];
    out.push({ version: s.version, by, cohort, lo: bins.lo, width: bins.width, counts });
  }
  return [...out.filter((h) => h.by === 'rollout'), ...largestSites(out.filter((h) => h.by === 'site'))].sort(
    compareHistograms,
  );
}

/** Most site series drawn on one chart: the largest sites, the others summed into one series. */
export const MAX_SITE_SERIES = 8;

/**
 * The MAX_SITE_SERIES - 1 largest sites as they are, the rest summed into `other sites (<k>)`: a fleet of 40 sites
 * would otherwise be 40 lines no one can tell apart.
 *
 * @example
 * largestSites(histograms).map((h) => h.cohort); // ['site-01', ..., 'site-07', 'other sites (33)']
 */
export function largestSites(sites: readonly ScoreHistogram[]): ScoreHistogram[] {
  if (sites.length <= MAX_SITE_SERIES) return [...sites];
  const total = (h: ScoreHistogram) => h.counts.reduce((a, b) => a + b, 0);
  const bySize = [...sites].sort((a, b) => total(b) - total(a) || a.cohort.localeCompare(b.cohort));
  const kept = bySize.slice(0, MAX_SITE_SERIES - 1);
  const rest = bySize.slice(MAX_SITE_SERIES - 1);
  const counts = rest[0]!.counts.map((_, i) => rest.reduce((sum, h) => sum + (h.counts[i] ?? 0), 0));
  return [...kept, { ...rest[0]!, cohort: `other sites (${rest.length})`, counts }];
}

function compareHistograms(a: ScoreHistogram, b: ScoreHistogram): number {
  const modeRank = (c: string) => ['live', 'canary', 'shadow'].indexOf(c);
  const otherLast = (c: string) => (c.startsWith('other sites') ? 1 : 0);
  return (
    a.by.localeCompare(b.by) ||
    (a.by === 'rollout' ? modeRank(a.cohort) - modeRank(b.cohort) : 0) ||
    otherLast(a.cohort) - otherLast(b.cohort) ||
    a.cohort.localeCompare(b.cohort)
  );
}

async function loadCalibration(
  store: Pick<ClickHouseStore, 'query'>,
  model: string,
  stored: readonly StoredVersion[],
  manifests: ReadonlyMap<string, ModelManifest>,
  tables: ReadonlySet<string>,
  notes: string[],
  now: number | undefined,
): Promise<CalibrationRow[]> {
  const probability = stored.filter((s) => manifests.get(s.version)?.output.kind === 'probability');
  if (probability.length === 0) return [];
  if (!tables.has('outcomes')) {
    notes.push('The store has no outcomes table: calibration is not shown.');
    return [];
  }
  const [last] = await store.query<{ last: number | string | null }>(LAST_OUTCOME_SQL);
  const dataClock = Math.max(Number(last?.last ?? 0), ...stored.map((s) => s.lastObserved));
  const rows: CalibrationRow[] = [];
  for (const s of probability) {
    const output = manifests.get(s.version)!.output;
    if (output.kind !== 'probability') continue;
    const computed = await computeCalibration(store, {
      model,
      version: s.version,
      // Every inference of the version: the job keeps only those whose outcome window has closed by `now`.
      window: { from: 0, to: s.lastObserved + 1 },
      horizonMs: output.outcome.horizon_ms,
      kinds: output.outcome.kinds,
      now: now ?? dataClock,
    });
    for (const c of computed) {
      if (c.cohort === 'all') rows.push({ version: c.version, rollout: c.rollout, metrics: c });
    }
    if (computed.length === 0) {
      notes.push(`${s.version}: no inference whose outcome window (${output.outcome.horizon_ms} ms) has closed yet.`);
    }
  }
  const modeRank = (m: string) => ['live', 'canary', 'shadow'].indexOf(m);
  return rows.sort((a, b) => compareVersions(a.version, b.version) || modeRank(a.rollout) - modeRank(b.rollout));
}

async function driftSeries(
  store: Pick<ClickHouseStore, 'query'>,
  model: string,
  version: string,
  manifest: ModelManifest | undefined,
): Promise<DriftSeries> {
  const q = driftReportsQuery({ model, version, from: 0, to: END_OF_TIME });
  const reports = (await store.query<Record<string, unknown>>(q.sql, q.params)).map(q.decode);
  return driftSeriesOf(version, reports, manifest?.drift.js_threshold ?? null);
}

/**
 * Per feature and window, the largest JS distance over the window's firmware x site groups with enough values for a
 * verdict (detect-drift's `sufficient`), drifted when any group drifted; the windows where any group's data set drifted.
 *
 * @example
 * driftSeriesOf('1.0.0', reports, 0.2).points; // [{ feature: 'heart_rate', window_start, js_distance, drifted }, ...]
 */
export function driftSeriesOf(
  version: string,
  reports: readonly DriftReportRow[],
  jsThreshold: number | null,
): DriftSeries {
  const points = new Map<string, { feature: string; window_start: number; js_distance: number; drifted: boolean }>();
  const datasetDrifted = new Set<number>();
  for (const r of reports) {
    if (r.feature.startsWith('_') || !r.sufficient || r.js_distance === null) continue;
    const key = `${r.feature}\0${r.window_start}`;
    const held = points.get(key);
    points.set(key, {
      feature: r.feature,
      window_start: r.window_start,
      js_distance: Math.max(held?.js_distance ?? 0, r.js_distance),
      drifted: (held?.drifted ?? false) || r.drifted,
    });
    if (r.dataset_drifted) datasetDrifted.add(r.window_start);
  }
  return {
    version,
    js_threshold: jsThreshold,
    points: [...points.values()]
      .sort((a, b) => a.feature.localeCompare(b.feature) || a.window_start - b.window_start)
      .map((p) => ({ version, ...p })),
    dataset_drifted_windows: [...datasetDrifted].sort((a, b) => a - b),
  };
}

/**
 * Version order: dot- and dash-separated parts compared in turn, numbers as numbers (1.10.0 after 1.9.0), other parts
 * as text; a pre-release suffix sorts before its release (1.9.0-rc1 before 1.9.0), as in semantic versioning.
 */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return /^\d+$/.test(y!) ? -1 : 1;
    if (y === undefined) return /^\d+$/.test(x) ? 1 : -1;
    const nx = /^\d+$/.test(x) ? Number(x) : Number.NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : Number.NaN;
    const d = Number.isNaN(nx) || Number.isNaN(ny) ? (x < y ? -1 : x > y ? 1 : 0) : nx - ny;
    if (d !== 0) return d;
  }
  return 0;
}
