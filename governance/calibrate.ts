/**
 * The calibration job: reads a probability model's inferences (`inferences_current`: one row per inference, its
 * current derivation) and the outcomes (`outcomes`, 0014) from ClickHouse, labels each inference whose outcome window
 * has closed (governance/calibration.ts `labelInferences`), computes the figures (`calibrationMetrics`) per model x
 * version x rollout x cohort ('all', 'site:<id>', 'subgroup:<x>') and window, and records them in `model_calibration`
 * (0015), where the saved queries calibration-by-model-version and reliability-by-model-version read them.
 *
 * Reads and writes go through the ClickHouseStore interface cli/store.ts `openReadStore` returns (embedded chdb or the
 * server), so the same job runs on `npm start`'s store and on a deployment's. Only aggregates are written: no pseudonym
 * or event id leaves the query.
 */
import { createHash } from 'node:crypto';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { toDateTime64 } from '../adapters/clickhouse/tables.ts';
import { VigilError } from '../runtime/errors.ts';
import { type CalibrationMetrics, calibrationMetrics, type LabelInput, labelInferences } from './calibration.ts';

export const MODEL_CALIBRATION_TABLE = 'model_calibration';

export interface CalibrationJob {
  readonly model: string;
  /** One version; absent: every version of the model with inferences in the window. */
  readonly version?: string;
  /** Observation time of the inferences, epoch ms: [from, to). */
  readonly window: { readonly from: number; readonly to: number };
  /** The model's outcome horizon (its manifest's output.outcome.horizon_ms). */
  readonly horizonMs: number;
  /** The outcome kinds that count as the event the model predicts (its manifest's output.outcome.kinds). */
  readonly kinds: readonly string[];
  /** The computation's time: inferences whose window (observed_at + horizonMs) ends after it are left out. */
  readonly now: number;
}

/** One computed calibration: the key, the figures (calibration.ts) and the job's parameters. */
export interface ModelCalibration extends CalibrationMetrics {
  readonly model: string;
  readonly version: string;
  readonly rollout: string;
  /** 'all', 'site:<site_id>' or 'subgroup:<patient_subgroup>'. */
  readonly cohort: string;
  readonly window_start: number;
  readonly window_end: number;
  readonly horizon_ms: number;
  readonly outcome_kinds: readonly string[];
  readonly computed_at: number;
}

interface InferenceRow extends LabelInput {
  readonly model_version: string;
  readonly rollout: string;
  readonly site_id: string;
  readonly patient_subgroup: string | null;
}

// Aliases never reuse a column's name: ClickHouse would substitute the alias for the column in WHERE.
const INFERENCES_SQL = `
SELECT model_version, rollout, event_id, patient_ref, site_id, patient_subgroup,
       toUnixTimestamp64Milli(observed_at) AS observed_ms, score
FROM inferences_current
WHERE model_name = {model:String}
  AND ({version:String} = '' OR model_version = {version:String})
  AND observed_at >= {from:DateTime64(3, 'UTC')} AND observed_at < {to:DateTime64(3, 'UTC')}
  AND observed_at <= {closed:DateTime64(3, 'UTC')}`;

// Only outcomes that can fall in a closed window of the period: after its start, no later than its last window's end.
const OUTCOMES_SQL = `
SELECT DISTINCT patient_ref, kind, toUnixTimestamp64Milli(occurred_at) AS occurred_ms
FROM outcomes FINAL
WHERE kind IN {kinds:Array(String)}
  AND occurred_at > {from:DateTime64(3, 'UTC')} AND occurred_at <= {until:DateTime64(3, 'UTC')}`;

/**
 * Computes the calibration of a model's versions over a window, per rollout and cohort, from the store. Returns the
 * rows `recordCalibration` inserts (sorted by version, rollout, cohort); a version with no closed, labelled inference
 * in the window has none. Throws CONFIG_INVALID when the model's scores are not probabilities.
 *
 * @example
 * const rows = await computeCalibration(openReadStore(flags), {
 *   model: 'deterioration', window: { from: Date.UTC(2026, 2, 1), to: Date.UTC(2026, 3, 1) },
 *   horizonMs: 24 * 3_600_000, kinds: ['icu_transfer', 'confirmed_deterioration'], now: Date.now(),
 * });
 * await recordCalibration(store, rows);
 */
export async function computeCalibration(
  store: Pick<ClickHouseStore, 'query'>,
  job: CalibrationJob,
): Promise<ModelCalibration[]> {
  if (!(job.window.to > job.window.from)) {
    throw new VigilError('CONFIG_INVALID', 'the calibration window must end after it starts');
  }
  if (job.kinds.length === 0) throw new VigilError('CONFIG_INVALID', 'calibration needs at least one outcome kind');
  const closed = job.now - job.horizonMs;
  const raw = await store.query<Record<string, unknown>>(INFERENCES_SQL, {
    model: job.model,
    version: job.version ?? '',
    from: toDateTime64(job.window.from, 'from'),
    to: toDateTime64(job.window.to, 'to'),
    closed: toDateTime64(Math.max(closed, job.window.from - 1), 'closed'),
  });
  const inferences: InferenceRow[] = raw.map((r) => ({
    model_version: String(r.model_version),
    rollout: String(r.rollout),
    event_id: String(r.event_id),
    patient_ref: String(r.patient_ref),
    site_id: String(r.site_id),
    patient_subgroup:
      r.patient_subgroup === null || r.patient_subgroup === undefined ? null : String(r.patient_subgroup),
    observed_at: Number(r.observed_ms),
    score: Number(r.score),
  }));
  if (inferences.length === 0) return [];
  const outcomes = (
    await store.query<{ patient_ref: string; kind: string; occurred_ms: number | string }>(OUTCOMES_SQL, {
      kinds: [...job.kinds],
      from: toDateTime64(job.window.from, 'from'),
      until: toDateTime64(Math.min(job.window.to + job.horizonMs, job.now), 'until'),
    })
  ).map((o) => ({ patient_ref: o.patient_ref, kind: o.kind, occurred_at: Number(o.occurred_ms) }));
  const labelled = labelInferences(inferences, outcomes, job.horizonMs, job.kinds, job.now);

  const groups = new Map<string, { version: string; rollout: string; cohort: string; rows: typeof labelled }>();
  const add = (version: string, rollout: string, cohort: string, row: (typeof labelled)[number]) => {
    const key = `${version}\0${rollout}\0${cohort}`;
    const group = groups.get(key);
    if (group) group.rows.push(row);
    else groups.set(key, { version, rollout, cohort, rows: [row] });
  };
  for (const row of labelled) {
    for (const cohort of cohortsOf(row)) add(row.model_version, row.rollout, cohort, row);
  }
  const result: ModelCalibration[] = [];
  for (const group of groups.values()) {
    let metrics: CalibrationMetrics;
    try {
      metrics = calibrationMetrics(group.rows);
    } catch (error) {
      throw new VigilError(
        'CONFIG_INVALID',
        `${job.model}@${group.version}: ${error instanceof Error ? error.message : String(error)} (is it a probability model?)`,
        { cause: error },
      );
    }
    result.push({
      model: job.model,
      version: group.version,
      rollout: group.rollout,
      cohort: group.cohort,
      window_start: job.window.from,
      window_end: job.window.to,
      horizon_ms: job.horizonMs,
      outcome_kinds: [...job.kinds],
      computed_at: job.now,
      ...metrics,
    });
  }
  return result.sort(
    (a, b) =>
      compareText(a.version, b.version) ||
      compareText(a.rollout, b.rollout) ||
      cohortRank(a.cohort) - cohortRank(b.cohort) ||
      compareText(a.cohort, b.cohort),
  );
}

/** The cohorts an inference belongs to: everyone, its site, its patient subgroup when known. */
export function cohortsOf(row: { readonly site_id: string; readonly patient_subgroup: string | null }): string[] {
  const cohorts = ['all', `site:${row.site_id}`];
  if (row.patient_subgroup) cohorts.push(`subgroup:${row.patient_subgroup}`);
  return cohorts;
}

function cohortRank(cohort: string): number {
  return cohort === 'all' ? 0 : cohort.startsWith('site:') ? 1 : 2;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * One computed calibration -> its row of `model_calibration` (0015): times as DateTime64, the bins as parallel arrays.
 *
 * @example
 * await store.insert(MODEL_CALIBRATION_TABLE, rows.map(modelCalibrationRow), { dedupToken });
 */
export function modelCalibrationRow(c: ModelCalibration): Record<string, unknown> {
  return {
    model: c.model,
    version: c.version,
    rollout: c.rollout,
    cohort: c.cohort,
    window_start: toDateTime64(c.window_start, 'window_start'),
    window_end: toDateTime64(c.window_end, 'window_end'),
    horizon_ms: c.horizon_ms,
    outcome_kinds: [...c.outcome_kinds],
    n: c.n,
    events: c.events,
    mean_predicted: c.mean_predicted,
    observed_rate: c.observed_rate,
    citl: c.citl,
    intercept: c.intercept,
    slope: c.slope,
    ece15: c.ece15,
    brier: c.brier,
    auroc: c.auroc,
    bin_lo: c.bins.map((b) => b.lo),
    bin_hi: c.bins.map((b) => b.hi),
    bin_n: c.bins.map((b) => b.n),
    bin_events: c.bins.map((b) => b.events),
    bin_mean_predicted: c.bins.map((b) => b.mean_predicted),
    bin_observed_rate: c.bins.map((b) => b.observed_rate),
    computed_at: toDateTime64(c.computed_at, 'computed_at'),
  };
}

/**
 * Inserts computed calibrations into `model_calibration`, one block whose dedup token names the computation (model,
 * window, horizon, computed_at and the rows' keys), so a retried insert adds nothing. Returns the rows sent.
 *
 * @example
 * await recordCalibration(store, await computeCalibration(store, job));
 */
export async function recordCalibration(
  store: Pick<ClickHouseStore, 'insert'>,
  rows: readonly ModelCalibration[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const first = rows[0] as ModelCalibration;
  const keys = createHash('sha256');
  for (const r of rows) keys.update(`${r.model}/${r.version}/${r.rollout}/${r.cohort}/${r.outcome_kinds.join('+')}\n`);
  const dedupToken =
    `model-calibration|${first.model}|${first.window_start}-${first.window_end}|${first.horizon_ms}|` +
    `${first.computed_at}|${keys.digest('hex').slice(0, 16)}`;
  const result = await store.insert(MODEL_CALIBRATION_TABLE, rows.map(modelCalibrationRow), { dedupToken });
  return result.rows;
}

/**
 * Computes and records in one call (the job `vigil models calibrate` or a scheduler runs).
 *
 * @example
 * const rows = await calibrate(store, { model: 'deterioration', window, horizonMs, kinds, now: clock.now() });
 */
export async function calibrate(
  store: Pick<ClickHouseStore, 'query' | 'insert'>,
  job: CalibrationJob,
): Promise<ModelCalibration[]> {
  const rows = await computeCalibration(store, job);
  await recordCalibration(store, rows);
  return rows;
}
