/**
 * Drift statistics, pure. The same formulas live in SQL as the user-defined functions of
 * infra/clickhouse/migrations/0003_drift.sql (`vigil_js_distance`, `vigil_psi`); sql.test.ts proves both give the
 * same numbers on the same histograms. Change one, change the other.
 *
 * Conventions:
 * - Proportions are `count / n`, where `n` is the number of non-missing values (the sum of all bins, under- and
 *   overflow included). A histogram with n = 0 has no distribution: its statistics are null, never 0.
 * - Jensen–Shannon distance, base 2: sqrt(JSD) with JSD = ½·Σ p·log2(p/m) + ½·Σ q·log2(q/m), m = (p+q)/2. It lies in
 *   [0, 1]. Empty bins need no epsilon: 0·log 0 = 0 by convention, and m > 0 wherever p or q is.
 * - PSI = Σ (p − q)·ln(p / q) (natural log), with every proportion first raised to at least PSI_EPSILON (1e-4, the
 *   value Evidently uses) so that a bin empty on one side adds a large but finite term. No renormalisation after
 *   the floor. PSI is symmetric, so which side is "expected" does not matter.
 * - A feature drifts when its window holds at least `minCount` values, its JS distance reaches the threshold, AND that
 *   distance is beyond what chance alone gives a cohort of that many devices. Readings of one patient are alike, so
 *   a cohort of D devices carries about as much information as D independent draws, however many readings it sends:
 *   two such cohorts of one population differ by JSD ≈ χ²/(8·D·ln 2) bits with χ² on (non-empty reference bins − 1)
 *   degrees of freedom. The gate is the JS distance at the χ² quantile of `noiseZ` (3.09: one unchanged cohort in a
 *   thousand passes), sqrt(χ²_q / (8·D·ln 2)), with the quantile from the Wilson–Hilferty approximation. For the
 *   cohorts a site or a pilot firmware has (tens to a few hundred devices) that is 0.15–0.5, well above the 0.1
 *   threshold: without it, patient mix alone reads as drift. D comes from a linear-counting sketch the operator sends
 *   beside the histograms (`_devices` rows: one bucket per device-id hash, so summed sketches still count distinct
 *   devices); without one, or with noiseZ = 0, the gate is off. (REFERENCE.md: size thresholds to the window.)
 * - A window drifts as a dataset when the share of its features that drift reaches `datasetShare` (of all the
 *   features reported for that window, whether or not they had enough values).
 */

/** Floor applied to proportions before PSI (never to JS). */
export const PSI_EPSILON = 1e-4;

/**
 * The pseudo-feature of the device sketch rows: `bin_counts` is a linear-counting sketch of the group's device ids
 * (DEVICE_SKETCH_BUCKETS buckets, each counting the records whose device hashes to it). Summing sketches keeps the
 * set of non-empty buckets, so partials merge exactly like histograms do.
 */
export const DEVICE_SKETCH_FEATURE = '_devices';
export const DEVICE_SKETCH_BUCKETS = 256;

/**
 * The sketch bucket of a device id: 32-bit FNV-1a over its UTF-16 code units, then murmur3's finaliser (FNV's low
 * bits depend only on the low bits of its state, and linear counting needs every bit mixed). Never allocates.
 */
export function deviceBucket(deviceId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) {
    h ^= deviceId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % DEVICE_SKETCH_BUCKETS;
}

/**
 * Distinct devices estimated from a (summed) sketch by linear counting: m·ln(m / empty buckets). 0 for an empty
 * sketch; m·ln(m) (a lower bound) when no bucket is empty. Standard error about 5% at 400 devices, 11% at 1,000.
 */
export function estimateDevices(sketch: ArrayLike<number>): number {
  const m = sketch.length;
  let empty = 0;
  for (let i = 0; i < m; i++) if (sketch[i] === 0) empty++;
  if (empty === m) return 0;
  if (empty === 0) return m * Math.log(m);
  return m * Math.log(m / empty);
}

/** Degrees of freedom of a histogram against its reference: non-empty reference bins − 1, at least 1. */
export function referenceDegreesOfFreedom(referenceProportions: ArrayLike<number>): number {
  let bins = 0;
  for (let i = 0; i < referenceProportions.length; i++) if (referenceProportions[i]! > 0) bins++;
  return Math.max(1, bins - 1);
}

/** The χ² quantile at standard-normal quantile z for df degrees of freedom (Wilson–Hilferty). */
export function chiSquareQuantile(df: number, z: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

/**
 * The JS distance a cohort of `devices` devices from the reference population exceeds by chance only with the
 * upper-tail probability of `z`: sqrt(χ²_z(df) / (8 · devices · ln 2)).
 */
export function chanceJsDistance(df: number, devices: number, z: number): number {
  return Math.sqrt(chiSquareQuantile(df, z) / (8 * devices * Math.LN2));
}

export interface DriftThresholds {
  /** JS distance (base 2) at or above which a feature drifts. */
  readonly js: number;
  /** PSI at or above which a feature is worth a look. */
  readonly psiWarn: number;
  /** PSI at or above which a feature has shifted materially. */
  readonly psiAlert: number;
  /** Share of drifted features at or above which the whole window drifts. */
  readonly datasetShare: number;
  /** Fewest non-missing values a feature needs in a window before it may be called drifted. */
  readonly minCount: number;
  /** Standard-normal quantile of the chance gate (3.09: a 1-in-1,000 tail); 0 turns the gate off. */
  readonly noiseZ: number;
}

export const DEFAULT_THRESHOLDS: DriftThresholds = {
  js: 0.1,
  psiWarn: 0.1,
  psiAlert: 0.25,
  datasetShare: 0.5,
  minCount: 1000,
  noiseZ: 3.09,
};

export type PsiLevel = 'ok' | 'warn' | 'alert';

/** Sum of a count vector. */
export function total(counts: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < counts.length; i++) sum += counts[i]!;
  return sum;
}

/** Each count divided by the total; all zeros when the total is zero. */
export function proportions(counts: ArrayLike<number>): Float64Array {
  const n = total(counts);
  const out = new Float64Array(counts.length);
  if (n === 0) return out;
  for (let i = 0; i < counts.length; i++) out[i] = counts[i]! / n;
  return out;
}

function assertSameLength(p: ArrayLike<number>, q: ArrayLike<number>): void {
  if (p.length !== q.length) throw new RangeError(`histograms differ in length: ${p.length} vs ${q.length} bins`);
}

/** Jensen–Shannon distance, base 2, between two probability vectors of equal length. In [0, 1]. */
export function jsDistance(p: ArrayLike<number>, q: ArrayLike<number>): number {
  assertSameLength(p, q);
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]!;
    const b = q[i]!;
    // Same expression, same order, as vigil_js_distance in 0003_drift.sql.
    sum += (a > 0 ? a * Math.log2((2 * a) / (a + b)) : 0) + (b > 0 ? b * Math.log2((2 * b) / (a + b)) : 0);
  }
  return Math.sqrt(Math.min(1, Math.max(0, 0.5 * sum)));
}

/** Population stability index between two probability vectors, each proportion floored at `epsilon`. */
export function psi(actual: ArrayLike<number>, expected: ArrayLike<number>, epsilon = PSI_EPSILON): number {
  assertSameLength(actual, expected);
  let sum = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = Math.max(actual[i]!, epsilon);
    const e = Math.max(expected[i]!, epsilon);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

export function psiLevel(value: number | null, thresholds: Pick<DriftThresholds, 'psiWarn' | 'psiAlert'>): PsiLevel {
  if (value === null) return 'ok';
  if (value >= thresholds.psiAlert) return 'alert';
  if (value >= thresholds.psiWarn) return 'warn';
  return 'ok';
}

/** One feature of one window, measured against its reference. */
export interface FeatureDrift {
  /** Non-missing values (the sum of the bins). */
  readonly n: number;
  readonly missing: number;
  /** Values outside the reference: under/overflow bins (continuous) or the `other` bin (categorical). */
  readonly outOfRange: number;
  /** missing / (n + missing); 0 when the window had no record at all. */
  readonly missingRate: number;
  /** outOfRange / n; 0 when n = 0. */
  readonly outOfRangeRate: number;
  /** null when n = 0. */
  readonly jsDistance: number | null;
  /** null when n = 0. */
  readonly psi: number | null;
  readonly psiLevel: PsiLevel;
  /** n >= minCount: enough values for a verdict. */
  readonly sufficient: boolean;
  /** Distinct devices behind the histogram (sketch estimate), 0 when unknown. */
  readonly devices: number;
  /** The JS distance chance alone rarely exceeds for that many devices; null when the gate is off. */
  readonly chanceJs: number | null;
  readonly drifted: boolean;
}

/**
 * One feature's verdict. `devices` is the cohort's distinct device count (0 when unknown: no noise gate).
 */
export function featureDrift(
  histogram: { readonly counts: ArrayLike<number>; readonly missing: number; readonly outOfRange: number },
  referenceProportions: ArrayLike<number>,
  thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
  devices = 0,
): FeatureDrift {
  const n = total(histogram.counts);
  const p = proportions(histogram.counts);
  const js = n > 0 ? jsDistance(p, referenceProportions) : null;
  const psiValue = n > 0 ? psi(p, referenceProportions) : null;
  const sufficient = n >= thresholds.minCount;
  const chanceJs =
    devices > 0 && thresholds.noiseZ > 0
      ? chanceJsDistance(referenceDegreesOfFreedom(referenceProportions), devices, thresholds.noiseZ)
      : null;
  const aboveChance = chanceJs === null || (js !== null && js >= chanceJs);
  return {
    n,
    missing: histogram.missing,
    outOfRange: histogram.outOfRange,
    missingRate: n + histogram.missing > 0 ? histogram.missing / (n + histogram.missing) : 0,
    outOfRangeRate: n > 0 ? histogram.outOfRange / n : 0,
    jsDistance: js,
    psi: psiValue,
    psiLevel: psiLevel(psiValue, thresholds),
    sufficient,
    devices,
    chanceJs,
    drifted: sufficient && js !== null && js >= thresholds.js && aboveChance,
  };
}

export interface DatasetDrift {
  readonly featuresDrifted: number;
  readonly featuresTotal: number;
  readonly drifted: boolean;
}

export function datasetDrift(
  features: readonly Pick<FeatureDrift, 'drifted'>[],
  thresholds: Pick<DriftThresholds, 'datasetShare'> = DEFAULT_THRESHOLDS,
): DatasetDrift {
  const featuresDrifted = features.filter((f) => f.drifted).length;
  const featuresTotal = features.length;
  return {
    featuresDrifted,
    featuresTotal,
    drifted: featuresTotal > 0 && featuresDrifted / featuresTotal >= thresholds.datasetShare,
  };
}
