/**
 * Reference histograms: what `reference.json` beside a model version holds, how it is built from a reference sample,
 * how the operator compiles it for the hot path, and how it becomes rows of `drift_reference_bins`.
 *
 * Bin layout (the same in the reference, the operator's partial histograms and ClickHouse):
 * - continuous: edges e0 < e1 < ... < ek taken from reference quantiles (lower nearest rank at i/k, ties merged, so
 *   an integer-valued field may get fewer bins). Bins: [underflow (< e0), [e0,e1), ..., [e(k-1),ek] (last closed),
 *   overflow (> ek)]. e0 and ek are the reference minimum and maximum, so under/overflow hold 0 in the reference and
 *   a value there is "out of range": outside everything the reference saw.
 * - categorical: one bin per reference value whose share reaches `minCategoryShare` (labels sorted: numbers
 *   numerically, others lexically), then `other`. A value in `other` is "out of range": a value the reference never
 *   saw, or saw too rarely to give a stable proportion.
 * The reference's own counts come from binning the reference sample with exactly the function the operator uses.
 */
import { z } from 'zod';
import { VigilError } from '../../runtime/errors.ts';
import type { VitalSigns } from '../../schemas/types.ts';
import {
  AUTO_CATEGORICAL_MAX_VALUES,
  categoryLabel,
  categoryValue,
  FEATURE_SPECS,
  FEATURES,
  type FeatureKind,
  type FeatureName,
  type FeatureValue,
  type ValueType,
} from './features.ts';
import { DEFAULT_THRESHOLDS, type DriftThresholds, PSI_EPSILON, proportions } from './metrics.ts';

export const REFERENCE_FORMAT = 'vigil-drift-reference/1';
export const OTHER_LABEL = 'other';

const referenceFeatureSchema = z.strictObject({
  name: z.enum(FEATURES),
  kind: z.enum(['continuous', 'categorical']),
  valueType: z.enum(['number', 'boolean', 'string']),
  /** Continuous only: k+1 strictly increasing edges. */
  edges: z.array(z.number()),
  /** Categorical only: the labels of the kept values, without `other`. */
  categories: z.array(z.string()),
  /** One label per bin, in bin order. */
  labels: z.array(z.string()).min(1),
  counts: z.array(z.number().int().nonnegative()),
  proportions: z.array(z.number().min(0).max(1)),
  /** Non-missing reference values. */
  n: z.number().int().positive(),
  missing: z.number().int().nonnegative(),
});

export const driftReferenceSchema = z.strictObject({
  format: z.literal(REFERENCE_FORMAT),
  model: z.strictObject({ name: z.string().min(1), version: z.string().min(1) }),
  /** How the file was made: script, its version, the sampler and the NEWS2 implementation used. */
  generator: z.record(z.string(), z.string()),
  /** The reference sample: size, seed and the simulation settings. */
  sample: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  binning: z.strictObject({
    continuousBins: z.number().int().min(2).max(64),
    minCategoryShare: z.number().min(0).max(0.5),
    quantileRule: z.string(),
  }),
  features: z.array(referenceFeatureSchema).min(1),
});

export type DriftReference = z.infer<typeof driftReferenceSchema>;
export type ReferenceFeature = z.infer<typeof referenceFeatureSchema>;

/** One feature compiled for the hot path. */
export interface CompiledFeature {
  readonly name: FeatureName;
  readonly kind: FeatureKind;
  readonly valueType: ValueType;
  readonly bins: number;
  /** Continuous: bin edges. Empty for categorical. */
  readonly edges: Float64Array;
  /** Categorical: value -> bin. Null for continuous. */
  readonly lookup: ReadonlyMap<number | boolean | string, number> | null;
  /** The bin that marks "below the reference" (-1 when none: categorical). */
  readonly lowOut: number;
  /** The bin that marks "above / outside the reference": overflow or `other`. */
  readonly highOut: number;
  readonly labels: readonly string[];
  readonly proportions: Float64Array;
}

/** The bin of a present value, or -1 when the value cannot be binned (wrong type, not finite): count it missing. */
export function binOf(feature: CompiledFeature, value: number | boolean | string): number {
  if (feature.lookup !== null) return feature.lookup.get(value) ?? feature.highOut;
  if (typeof value !== 'number' || !Number.isFinite(value)) return -1;
  const edges = feature.edges;
  const last = edges.length - 1;
  if (value < edges[0]!) return 0;
  if (value > edges[last]!) return feature.bins - 1;
  // Largest i with edges[i] <= value, capped so the top edge falls in the last (closed) inner bin.
  let lo = 0;
  let hi = last;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (edges[mid]! <= value) lo = mid;
    else hi = mid - 1;
  }
  return Math.min(lo, last - 1) + 1;
}

function compileFeature(feature: ReferenceFeature): CompiledFeature {
  const where = `reference feature ${feature.name}`;
  const bins = feature.labels.length;
  if (feature.counts.length !== bins || feature.proportions.length !== bins) {
    throw new Error(`${where}: labels, counts and proportions differ in length`);
  }
  if (feature.valueType !== FEATURE_SPECS[feature.name].valueType) {
    throw new Error(`${where}: value type ${feature.valueType}, expected ${FEATURE_SPECS[feature.name].valueType}`);
  }
  if (feature.kind === 'continuous') {
    if (feature.valueType !== 'number') throw new Error(`${where}: only numbers can be continuous`);
    if (feature.edges.length < 2 || bins !== feature.edges.length + 1) {
      throw new Error(`${where}: a continuous feature needs k+1 >= 2 edges and k+2 bins`);
    }
    for (let i = 1; i < feature.edges.length; i++) {
      if (!(feature.edges[i]! > feature.edges[i - 1]!)) throw new Error(`${where}: edges must strictly increase`);
    }
    return {
      name: feature.name,
      kind: 'continuous',
      valueType: feature.valueType,
      bins,
      edges: Float64Array.from(feature.edges),
      lookup: null,
      lowOut: 0,
      highOut: bins - 1,
      labels: feature.labels,
      proportions: Float64Array.from(feature.proportions),
    };
  }
  if (bins !== feature.categories.length + 1 || feature.labels[bins - 1] !== OTHER_LABEL) {
    throw new Error(`${where}: a categorical feature needs one bin per category plus "${OTHER_LABEL}" last`);
  }
  const lookup = new Map<number | boolean | string, number>();
  feature.categories.forEach((label, index) => {
    const value = categoryValue(label, feature.valueType);
    if (lookup.has(value)) throw new Error(`${where}: category ${label} appears twice`);
    lookup.set(value, index);
  });
  return {
    name: feature.name,
    kind: 'categorical',
    valueType: feature.valueType,
    bins,
    edges: new Float64Array(0),
    lookup,
    lowOut: -1,
    highOut: bins - 1,
    labels: feature.labels,
    proportions: Float64Array.from(feature.proportions),
  };
}

/** Parses and checks a reference file's bytes. Throws VigilError CONFIG_INVALID saying what is wrong. */
export function parseReference(bytes: Buffer | string, source = 'reference.json'): DriftReference {
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (error) {
    throw new VigilError('CONFIG_INVALID', `${source} is not JSON: rebuild it with \`npm run models:reference\``, {
      cause: error,
    });
  }
  const parsed = driftReferenceSchema.safeParse(json);
  if (!parsed.success) {
    throw new VigilError(
      'CONFIG_INVALID',
      `${source} is not a ${REFERENCE_FORMAT} file: ${z.prettifyError(parsed.error)}; rebuild it with \`npm run models:reference\``,
    );
  }
  try {
    for (const feature of parsed.data.features) compileFeature(feature);
  } catch (error) {
    throw new VigilError('CONFIG_INVALID', `${source}: ${(error as Error).message}`, { cause: error });
  }
  return parsed.data;
}

/** Compiles the requested features of a reference, in the order asked. Fails when one is absent. */
export function compileReference(reference: DriftReference, features: readonly FeatureName[]): CompiledFeature[] {
  const byName = new Map(reference.features.map((f) => [f.name, f]));
  const absent = features.filter((name) => !byName.has(name));
  if (absent.length > 0) {
    throw new VigilError(
      'CONFIG_INVALID',
      `the drift reference of ${reference.model.name}@${reference.model.version} has no histogram for ${absent.join(', ')}: ` +
        'rebuild it with `npm run models:reference` or drop those features from the detect-drift config',
    );
  }
  return features.map((name) => compileFeature(byName.get(name)!));
}

// --- building ------------------------------------------------------------------------------------------------------

/** One reference observation: a vital-signs payload and the model's score for it (null when not scored). */
export interface ReferenceSample {
  readonly vitals: VitalSigns;
  readonly score: number | null;
}

export interface BuildReferenceOptions {
  readonly model: { readonly name: string; readonly version: string };
  readonly generator: Readonly<Record<string, string>>;
  readonly sample: Readonly<Record<string, string | number | boolean | null>>;
  /** Quantile bins of a continuous feature before ties merge (default 10). */
  readonly continuousBins?: number;
  /** Fewest share of the reference a categorical value needs for a bin of its own (default 0.001). */
  readonly minCategoryShare?: number;
  readonly features?: readonly FeatureName[];
}

function sampleValue(sample: ReferenceSample, name: FeatureName): FeatureValue {
  return name === 'score' ? sample.score : sample.vitals[name];
}

function compareLabels(valueType: ValueType): (a: string, b: string) => number {
  return valueType === 'number' ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0);
}

function fmt(value: number): string {
  return String(value);
}

/** Builds a reference from a sample. Deterministic: the same sample and options give byte-identical JSON. */
export function buildReference(samples: readonly ReferenceSample[], options: BuildReferenceOptions): DriftReference {
  const continuousBins = options.continuousBins ?? 10;
  const minCategoryShare = options.minCategoryShare ?? 0.001;
  const features: ReferenceFeature[] = [];
  for (const name of options.features ?? FEATURES) {
    const spec = FEATURE_SPECS[name];
    const values: (number | boolean | string)[] = [];
    let missing = 0;
    for (const sample of samples) {
      const value = sampleValue(sample, name);
      if (value === null || (typeof value === 'number' && !Number.isFinite(value))) missing++;
      else values.push(value);
    }
    if (values.length === 0) throw new Error(`reference sample has no value for ${name}`);
    const distinct = new Set(values);
    let kind: FeatureKind;
    if (spec.kind === 'auto') {
      const integers = values.every((v) => typeof v === 'number' && Number.isInteger(v));
      kind = integers && distinct.size <= AUTO_CATEGORICAL_MAX_VALUES ? 'categorical' : 'continuous';
    } else {
      kind = spec.kind;
    }
    // A measurement the reference saw at one value only has no quantiles: bin it by value.
    if (distinct.size < 2) kind = 'categorical';

    let draft: ReferenceFeature;
    if (kind === 'continuous') {
      const sorted = Float64Array.from(values as number[]).sort();
      const edges: number[] = [];
      for (let i = 0; i <= continuousBins; i++) {
        const edge = sorted[Math.floor((i * (sorted.length - 1)) / continuousBins)]!;
        if (edges.length === 0 || edge > edges[edges.length - 1]!) edges.push(edge);
      }
      const labels = [`<${fmt(edges[0]!)}`];
      for (let i = 0; i + 1 < edges.length; i++) {
        const closing = i + 2 === edges.length ? ']' : ')';
        labels.push(`[${fmt(edges[i]!)},${fmt(edges[i + 1]!)}${closing}`);
      }
      labels.push(`>${fmt(edges[edges.length - 1]!)}`);
      draft = {
        name,
        kind,
        valueType: spec.valueType,
        edges,
        categories: [],
        labels,
        counts: [],
        proportions: [],
        n: values.length,
        missing,
      };
    } else {
      const counts = new Map<string, number>();
      for (const value of values) {
        const label = categoryLabel(value);
        counts.set(label, (counts.get(label) ?? 0) + 1);
      }
      const categories = [...counts.entries()]
        .filter(([, count]) => count / values.length >= minCategoryShare)
        .map(([label]) => label)
        .sort(compareLabels(spec.valueType));
      draft = {
        name,
        kind,
        valueType: spec.valueType,
        edges: [],
        categories,
        labels: [...categories, OTHER_LABEL],
        counts: [],
        proportions: [],
        n: values.length,
        missing,
      };
    }
    // Count the reference with the operator's own binning, so both sides bin alike.
    const compiled = compileFeature({
      ...draft,
      counts: draft.labels.map(() => 0),
      proportions: draft.labels.map(() => 0),
    });
    const binCounts = new Array<number>(compiled.bins).fill(0);
    for (const value of values) {
      const bin = binOf(compiled, value);
      if (bin < 0) throw new Error(`reference value of ${name} cannot be binned`);
      binCounts[bin]!++;
    }
    features.push({ ...draft, counts: binCounts, proportions: Array.from(proportions(binCounts)) });
  }
  return {
    format: REFERENCE_FORMAT,
    model: { name: options.model.name, version: options.model.version },
    generator: { ...options.generator },
    sample: { ...options.sample },
    binning: { continuousBins, minCategoryShare, quantileRule: 'lower nearest rank at i/k, ties merged' },
    features,
  };
}

/** The JSON text written to reference.json: stable key order, two-space indent, trailing newline. */
export function serialiseReference(reference: DriftReference): string {
  return `${JSON.stringify(reference, null, 2)}\n`;
}

// --- ClickHouse ----------------------------------------------------------------------------------------------------

/**
 * A row of `drift_reference_bins` (0003_drift.sql): keys are the column names. A type literal rather than an
 * interface so it is a `Record<string, unknown>` for `ClickHouseStore.insert`.
 */
export type DriftReferenceRow = {
  readonly model_name: string;
  readonly model_version: string;
  readonly reference_sha256: string;
  readonly feature: string;
  readonly kind: FeatureKind;
  readonly bin_labels: string[];
  readonly bin_edges: number[];
  readonly ref_counts: number[];
  readonly ref_proportions: number[];
  readonly ref_n: number;
  readonly ref_missing_rate: number;
  readonly epsilon: number;
  readonly js_threshold: number;
  readonly psi_warn: number;
  readonly psi_alert: number;
  readonly min_count: number;
  readonly noise_z: number;
  readonly dataset_share: number;
  readonly allowed_lateness_ms: number;
  /** Epoch ms; the newest load of a (model, version, feature) wins. */
  readonly loaded_at: number;
};

export interface ReferenceRowOptions {
  /** sha256 (hex) of the reference file's bytes: partial histograms name the reference their bins follow. */
  readonly sha256: string;
  readonly thresholds?: DriftThresholds;
  /** How long after a window ends late events may still change it (see drift_reports.complete). */
  readonly allowedLatenessMs?: number;
  readonly loadedAt?: number;
  /** Only these features (default: all the reference holds). */
  readonly features?: readonly FeatureName[];
}

export const DEFAULT_ALLOWED_LATENESS_MS = 3_600_000;

/**
 * The rows the runtime inserts into `drift_reference_bins` at start-up: one per feature, carrying the bins, the
 * reference proportions and the drift policy (thresholds, lateness) the `drift_reports` view applies.
 *
 * @example
 * const bytes = await models.readVerified('news2', '1.0.0', 'reference');
 * const rows = referenceRows(parseReference(bytes), { sha256: sha256Hex(bytes), loadedAt: clock.now() });
 * await clickhouse.insert({ table: 'drift_reference_bins', values: rows, format: 'JSONEachRow' });
 */
export function referenceRows(reference: DriftReference, options: ReferenceRowOptions): DriftReferenceRow[] {
  const thresholds = options.thresholds ?? DEFAULT_THRESHOLDS;
  const wanted = options.features ? new Set<string>(options.features) : null;
  return reference.features
    .filter((feature) => wanted === null || wanted.has(feature.name))
    .map((feature) => ({
      model_name: reference.model.name,
      model_version: reference.model.version,
      reference_sha256: options.sha256,
      feature: feature.name,
      kind: feature.kind,
      bin_labels: [...feature.labels],
      bin_edges: [...feature.edges],
      ref_counts: [...feature.counts],
      ref_proportions: [...feature.proportions],
      ref_n: feature.n,
      ref_missing_rate: feature.missing / (feature.n + feature.missing),
      epsilon: PSI_EPSILON,
      js_threshold: thresholds.js,
      psi_warn: thresholds.psiWarn,
      psi_alert: thresholds.psiAlert,
      min_count: thresholds.minCount,
      noise_z: thresholds.noiseZ,
      dataset_share: thresholds.datasetShare,
      allowed_lateness_ms: options.allowedLatenessMs ?? DEFAULT_ALLOWED_LATENESS_MS,
      loaded_at: options.loadedAt ?? 0,
    }));
}
