/**
 * Calibration of a probability model against outcomes (issue 12, REFERENCE.md "Calibration"): how far the predicted
 * probabilities p of an outcome are from what happened (y = 1: the outcome occurred within the horizon). Pure: no
 * store, no clock; governance/calibrate.ts reads inferences and outcomes from ClickHouse and calls these.
 *
 * - `labelInferences` joins inferences to outcomes by patient pseudonym: an inference is positive when an outcome of
 *   the asked kinds occurred after its observation, within the horizon. Inferences whose window has not closed by
 *   `now` are left out (neither positive nor negative yet: counting them as negatives would bias every figure).
 * - `calibrationMetrics` computes, with counts beside each: calibration-in-the-large (observed rate minus mean
 *   predicted; 0 is ideal), the logistic recalibration intercept and slope (y on logit(p); slope 1 is ideal, < 1 means
 *   overconfident), ECE over 15 equal-width bins (weighted by bin size), the Brier score, AUROC (Mann-Whitney, ties
 *   counting one half) and the 15 reliability bins. A figure that is undefined for the rows (no rows, one class, a
 *   separable or constant score) is null, never a made-up number.
 */
import { VigilError } from '../runtime/errors.ts';

/** One labelled prediction: the predicted probability and whether the outcome happened. */
export interface CalibrationRow {
  readonly p: number;
  readonly y: 0 | 1;
}

/** One of the 15 equal-width reliability bins [lo, hi) (the last one [14/15, 1], closed). */
export interface ReliabilityBin {
  readonly lo: number;
  readonly hi: number;
  readonly n: number;
  readonly events: number;
  /** Mean p of the bin's rows; null for an empty bin. */
  readonly mean_predicted: number | null;
  /** Share of the bin's rows with y = 1; null for an empty bin. */
  readonly observed_rate: number | null;
}

export interface CalibrationMetrics {
  readonly n: number;
  /** Rows with y = 1. */
  readonly events: number;
  readonly mean_predicted: number | null;
  readonly observed_rate: number | null;
  /** Calibration-in-the-large: observed_rate - mean_predicted (0 is ideal). */
  readonly citl: number | null;
  /** Intercept of the logistic recalibration y ~ a + b logit(p); null when undefined (see `slope`). */
  readonly intercept: number | null;
  /**
   * Calibration slope b of y ~ a + b logit(p) (maximum likelihood, Newton-Raphson; p clamped to [1e-6, 1 - 1e-6]).
   * Null when the likelihood has no finite maximum: one class only, every logit(p) equal, or the classes separated by
   * a threshold on p.
   */
  readonly slope: number | null;
  /** Expected calibration error: sum over the 15 bins of n_bin / n x |observed_rate - mean_predicted|. */
  readonly ece15: number | null;
  /** Mean (p - y)^2. */
  readonly brier: number | null;
  /** Area under the ROC curve: P(p of a positive > p of a negative), ties one half; null with one class. */
  readonly auroc: number | null;
  readonly bins: readonly ReliabilityBin[];
}

export const ECE_BINS = 15;
const P_MIN = 1e-6;
const P_MAX = 1 - 1e-6;

/** logit of p clamped to [1e-6, 1 - 1e-6] (a probability of exactly 0 or 1 has no finite logit). */
export function clampedLogit(p: number): number {
  const q = Math.min(P_MAX, Math.max(P_MIN, p));
  return Math.log(q / (1 - q));
}

/** The reliability bin of p: floor(15 p), with p = 1 in the last bin. */
export function binOf(p: number): number {
  return Math.min(ECE_BINS - 1, Math.floor(p * ECE_BINS));
}

/**
 * Every calibration figure of labelled predictions. Throws CONFIG_INVALID when a p is not a probability (a score of
 * a model whose output is not one, e.g. NEWS2's 0..20).
 *
 * @example
 * const m = calibrationMetrics([{ p: 0.1, y: 0 }, { p: 0.8, y: 1 }, { p: 0.3, y: 1 }]);
 * m.auroc; // 1
 */
export function calibrationMetrics(rows: readonly CalibrationRow[]): CalibrationMetrics {
  const n = rows.length;
  let events = 0;
  let sumP = 0;
  let sumSquared = 0;
  const binN = new Array<number>(ECE_BINS).fill(0);
  const binEvents = new Array<number>(ECE_BINS).fill(0);
  const binSumP = new Array<number>(ECE_BINS).fill(0);
  for (const { p, y } of rows) {
    if (!Number.isFinite(p) || p < 0 || p > 1) {
      throw new VigilError('CONFIG_INVALID', 'calibration needs probabilities: a predicted p is outside [0, 1]');
    }
    if (y !== 0 && y !== 1) throw new VigilError('CONFIG_INVALID', 'calibration needs outcomes y of 0 or 1');
    events += y;
    sumP += p;
    sumSquared += (p - y) ** 2;
    const b = binOf(p);
    binN[b] = (binN[b] ?? 0) + 1;
    binEvents[b] = (binEvents[b] ?? 0) + y;
    binSumP[b] = (binSumP[b] ?? 0) + p;
  }
  const bins: ReliabilityBin[] = binN.map((count, k) => ({
    lo: k / ECE_BINS,
    hi: (k + 1) / ECE_BINS,
    n: count,
    events: binEvents[k] ?? 0,
    mean_predicted: count > 0 ? (binSumP[k] ?? 0) / count : null,
    observed_rate: count > 0 ? (binEvents[k] ?? 0) / count : null,
  }));
  if (n === 0) {
    return {
      n,
      events,
      mean_predicted: null,
      observed_rate: null,
      citl: null,
      intercept: null,
      slope: null,
      ece15: null,
      brier: null,
      auroc: null,
      bins,
    };
  }
  const meanPredicted = sumP / n;
  const observedRate = events / n;
  let ece = 0;
  for (const bin of bins) {
    if (bin.n > 0) ece += (bin.n / n) * Math.abs((bin.observed_rate ?? 0) - (bin.mean_predicted ?? 0));
  }
  const recalibration = logisticRecalibration(rows);
  return {
    n,
    events,
    mean_predicted: meanPredicted,
    observed_rate: observedRate,
    citl: observedRate - meanPredicted,
    intercept: recalibration?.intercept ?? null,
    slope: recalibration?.slope ?? null,
    ece15: ece,
    brier: sumSquared / n,
    auroc: auroc(rows),
    bins,
  };
}

/**
 * AUROC by Mann-Whitney: sort by p, give tied p their average rank, then (rank sum of positives - n1(n1+1)/2) /
 * (n1 n0). Null when either class is empty.
 */
export function auroc(rows: readonly CalibrationRow[]): number | null {
  const positives = rows.reduce((sum, r) => sum + r.y, 0);
  const negatives = rows.length - positives;
  if (positives === 0 || negatives === 0) return null;
  const sorted = [...rows].sort((a, b) => a.p - b.p);
  let rankSum = 0;
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1]?.p === sorted[i]?.p) j++;
    // Ranks i+1..j+1 share their mean.
    const rank = (i + 1 + (j + 1)) / 2;
    for (let k = i; k <= j; k++) rankSum += (sorted[k]?.y ?? 0) * rank;
    i = j + 1;
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * Maximum-likelihood fit of y ~ a + b x with x = logit(p) clamped: Newton-Raphson from (logit(mean y), 0), each step
 * halved until the log-likelihood does not fall. Null when the maximum is not finite: one class, constant x, or x
 * separating the classes (every x of one class <= every x of the other: the slope would run off to infinity).
 */
export function logisticRecalibration(
  rows: readonly CalibrationRow[],
): { readonly intercept: number; readonly slope: number } | null {
  const x = rows.map((r) => clampedLogit(r.p));
  const y = rows.map((r) => r.y);
  let maxX0 = Number.NEGATIVE_INFINITY;
  let minX0 = Number.POSITIVE_INFINITY;
  let maxX1 = Number.NEGATIVE_INFINITY;
  let minX1 = Number.POSITIVE_INFINITY;
  let events = 0;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i] ?? 0;
    if (y[i] === 1) {
      events++;
      maxX1 = Math.max(maxX1, xi);
      minX1 = Math.min(minX1, xi);
    } else {
      maxX0 = Math.max(maxX0, xi);
      minX0 = Math.min(minX0, xi);
    }
  }
  if (events === 0 || events === x.length) return null;
  if (maxX0 <= minX1 || maxX1 <= minX0) return null; // (quasi-)complete separation, constant x included

  const logLikelihood = (a: number, b: number): number => {
    let ll = 0;
    for (let i = 0; i < x.length; i++) {
      const eta = a + b * (x[i] ?? 0);
      // log(1 + e^eta) without overflow
      const softplus = eta > 0 ? eta + Math.log1p(Math.exp(-eta)) : Math.log1p(Math.exp(eta));
      ll += (y[i] ?? 0) * eta - softplus;
    }
    return ll;
  };
  const rate = events / x.length;
  let a = Math.log(rate / (1 - rate));
  let b = 0;
  let ll = logLikelihood(a, b);
  for (let iteration = 0; iteration < 200; iteration++) {
    // Gradient g and the information matrix H (negative Hessian) of the log-likelihood.
    let g0 = 0;
    let g1 = 0;
    let h00 = 0;
    let h01 = 0;
    let h11 = 0;
    for (let i = 0; i < x.length; i++) {
      const xi = x[i] ?? 0;
      const mu = 1 / (1 + Math.exp(-(a + b * xi)));
      const w = mu * (1 - mu);
      const r = (y[i] ?? 0) - mu;
      g0 += r;
      g1 += r * xi;
      h00 += w;
      h01 += w * xi;
      h11 += w * xi * xi;
    }
    const det = h00 * h11 - h01 * h01;
    if (!(det > 0)) return null;
    let da = (h11 * g0 - h01 * g1) / det;
    let db = (h00 * g1 - h01 * g0) / det;
    let next = logLikelihood(a + da, b + db);
    for (let halvings = 0; next < ll && halvings < 50; halvings++) {
      da /= 2;
      db /= 2;
      next = logLikelihood(a + da, b + db);
    }
    a += da;
    b += db;
    const converged = Math.abs(da) < 1e-12 * (1 + Math.abs(a)) && Math.abs(db) < 1e-12 * (1 + Math.abs(b));
    const stalled = Math.abs(next - ll) <= 1e-15 * Math.abs(ll);
    ll = next;
    if (converged || stalled) break;
  }
  if (!Number.isFinite(a) || !Number.isFinite(b)) return null;
  return { intercept: a, slope: b };
}

/** An inference as labelling needs it; any other fields (model, version, cohort) are carried through. */
export interface LabelInput {
  readonly event_id: string;
  readonly patient_ref: string;
  /** Epoch ms: the observation the inference was made on; its outcome window is (observed_at, observed_at + horizon]. */
  readonly observed_at: number;
  /** The predicted probability. */
  readonly score: number;
}

/** An outcome as labelling needs it (schema outcome: patient_ref, kind, occurred_at epoch ms). */
export interface LabelOutcome {
  readonly patient_ref: string;
  readonly kind: string;
  readonly occurred_at: number;
}

export type Labelled<I extends LabelInput> = I & CalibrationRow;

/**
 * Labels inferences with outcomes: y = 1 when the same patient has an outcome of one of `kinds` that occurred after
 * the observation and no later than `horizonMs` after it (observed_at < occurred_at <= observed_at + horizonMs); p is
 * the inference's score. An inference whose window has not closed by `now` (observed_at + horizonMs > now) is LEFT OUT,
 * whether or not an outcome already arrived: its label is not known yet, and keeping only the early positives would
 * bias every figure upwards. Outcomes before the observation never label it (the model predicts what comes after).
 * Order of the inferences is kept.
 *
 * @example
 * const rows = labelInferences(inferences, outcomes, 24 * 3_600_000, ['icu_transfer'], Date.now());
 * calibrationMetrics(rows);
 */
export function labelInferences<I extends LabelInput>(
  inferences: readonly I[],
  outcomes: readonly LabelOutcome[],
  horizonMs: number,
  kinds: readonly string[],
  now: number,
): Labelled<I>[] {
  if (!(horizonMs > 0) || !Number.isFinite(horizonMs)) {
    throw new VigilError('CONFIG_INVALID', `the outcome horizon must be a positive number of ms, got ${horizonMs}`);
  }
  const wanted = new Set(kinds);
  const times = new Map<string, number[]>();
  for (const o of outcomes) {
    if (!wanted.has(o.kind)) continue;
    const list = times.get(o.patient_ref);
    if (list) list.push(o.occurred_at);
    else times.set(o.patient_ref, [o.occurred_at]);
  }
  for (const list of times.values()) list.sort((a, b) => a - b);
  const labelled: Labelled<I>[] = [];
  for (const inference of inferences) {
    const end = inference.observed_at + horizonMs;
    if (end > now) continue;
    const list = times.get(inference.patient_ref);
    const first = list ? firstAfter(list, inference.observed_at) : undefined;
    const y: 0 | 1 = first !== undefined && first <= end ? 1 : 0;
    labelled.push({ ...inference, p: inference.score, y });
  }
  return labelled;
}

/** The first value of an ascending list strictly greater than t (binary search), or undefined. */
function firstAfter(sorted: readonly number[], t: number): number | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] ?? 0) <= t) lo = mid + 1;
    else hi = mid;
  }
  return sorted[lo];
}
