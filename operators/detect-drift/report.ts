/**
 * Drift reports and findings computed in TypeScript from partial histograms: the exact mirror of the `drift_reports`
 * view and of `driftFindingsQuery` (queries.ts) over the tables of 0003_drift.sql. sql.test.ts feeds both the same
 * rows and requires the same numbers. Useful wherever ClickHouse is not at hand (a behaviour test, a quick summary).
 */
import type { FeatureKind } from './features.ts';
import {
  DEVICE_SKETCH_FEATURE,
  type DriftThresholds,
  datasetDrift,
  estimateDevices,
  type FeatureDrift,
  featureDrift,
  type PsiLevel,
} from './metrics.ts';
import type { DriftHistogramRow } from './operator.ts';
import type { DriftReferenceRow } from './reference.ts';

/** A row of the `drift_reports` view, times as epoch ms and flags as booleans. */
export interface DriftReportRow {
  readonly pipeline: string;
  readonly model_name: string;
  readonly model_version: string;
  readonly firmware_version: string;
  readonly site_id: string;
  readonly window_start: number;
  readonly window_end: number;
  readonly feature: string;
  readonly kind: FeatureKind;
  readonly reference_sha256: string;
  readonly bin_labels: readonly string[];
  readonly bin_counts: readonly number[];
  readonly ref_proportions: readonly number[];
  readonly n: number;
  readonly missing: number;
  readonly out_of_range: number;
  readonly missing_rate: number;
  readonly ref_missing_rate: number;
  readonly out_of_range_rate: number;
  readonly js_distance: number | null;
  readonly psi: number | null;
  readonly psi_level: PsiLevel;
  readonly sufficient: boolean;
  /** Distinct devices of the group (sketch estimate; 0 when no sketch was sent). */
  readonly devices: number;
  /** The JS distance chance alone rarely exceeds for that many devices; null when the gate is off. */
  readonly chance_js: number | null;
  readonly drifted: boolean;
  readonly dataset_share: number;
  readonly allowed_lateness_ms: number;
  readonly features_drifted: number;
  readonly features_total: number;
  readonly dataset_drifted: boolean;
  readonly watermark: number;
  readonly complete: boolean;
}

/** A row of `driftFindingsQuery`: one (firmware[, site], feature) over a time range, windows summed. */
export interface DriftFindingRow {
  readonly pipeline: string;
  readonly model_name: string;
  readonly model_version: string;
  readonly firmware_version: string;
  /** null when findings are grouped by firmware only. */
  readonly site_id: string | null;
  readonly feature: string;
  /** Distinct windows summed. */
  readonly windows: number;
  readonly n: number;
  readonly missing: number;
  readonly out_of_range: number;
  readonly missing_rate: number;
  readonly out_of_range_rate: number;
  readonly js_distance: number | null;
  readonly psi: number | null;
  readonly psi_level: PsiLevel;
  readonly sufficient: boolean;
  readonly devices: number;
  readonly chance_js: number | null;
  readonly drifted: boolean;
}

export interface DriftFindingsOptions {
  readonly model: string;
  readonly version: string;
  /** Windows starting at or after this epoch ms ... */
  readonly from: number;
  /** ... and before this one. */
  readonly to: number;
  /** `firmware` (default): one finding per firmware and feature; `firmware_site`: per firmware, site and feature. */
  readonly by?: 'firmware' | 'firmware_site';
  /** Only this pipeline's partials (default: all). */
  readonly pipeline?: string;
  /** Most findings returned (default 10). */
  readonly limit?: number;
}

const SEP = '\u0000';

function identity(row: DriftHistogramRow): string {
  return [
    row.model_name,
    row.model_version,
    row.firmware_version,
    row.site_id,
    row.window_start,
    row.feature,
    row.pipeline,
    row.window_end,
    row.source_topic,
    row.source_partition,
    row.first_offset,
    row.last_offset,
  ].join(SEP);
}

/** FINAL: one row per identity, the last one inserted. */
function final(histograms: readonly DriftHistogramRow[]): DriftHistogramRow[] {
  const byIdentity = new Map<string, DriftHistogramRow>();
  for (const row of histograms) byIdentity.set(identity(row), row);
  return [...byIdentity.values()];
}

/** FINAL of drift_reference_bins: per (model, version, feature) the newest loaded_at (the last inserted on a tie). */
function latestReferences(references: readonly DriftReferenceRow[]): Map<string, DriftReferenceRow> {
  const latest = new Map<string, DriftReferenceRow>();
  for (const row of references) {
    const key = [row.model_name, row.model_version, row.feature].join(SEP);
    const held = latest.get(key);
    if (held === undefined || row.loaded_at >= held.loaded_at) latest.set(key, row);
  }
  return latest;
}

function thresholdsOf(reference: DriftReferenceRow): DriftThresholds {
  return {
    js: reference.js_threshold,
    psiWarn: reference.psi_warn,
    psiAlert: reference.psi_alert,
    datasetShare: reference.dataset_share,
    minCount: reference.min_count,
    noiseZ: reference.noise_z,
  };
}

interface Summed {
  readonly first: DriftHistogramRow;
  readonly counts: number[];
  n: number;
  missing: number;
  outOfRange: number;
  readonly windows: Set<number>;
}

function sumInto(groups: Map<string, Summed>, key: string, row: DriftHistogramRow): void {
  let group = groups.get(key);
  if (group === undefined) {
    group = { first: row, counts: [], n: 0, missing: 0, outOfRange: 0, windows: new Set() };
    groups.set(key, group);
  }
  // sumForEach: element-wise, as long as the longest array.
  row.bin_counts.forEach((count, i) => {
    group.counts[i] = (group.counts[i] ?? 0) + count;
  });
  group.n += row.n;
  group.missing += row.missing;
  group.outOfRange += row.out_of_range;
  group.windows.add(row.window_start);
}

/** The device estimate of each group from its summed `_devices` sketch rows. */
function devicesByGroup(
  groups: ReadonlyMap<string, Summed>,
  keyOf: (row: DriftHistogramRow) => string,
): Map<string, number> {
  const devices = new Map<string, number>();
  for (const group of groups.values()) {
    if (group.first.feature === DEVICE_SKETCH_FEATURE) devices.set(keyOf(group.first), estimateDevices(group.counts));
  }
  return devices;
}

/** A summed group measured against its model version's reference; null when the reference is absent or has other bins. */
function measure(
  group: Summed,
  refs: ReadonlyMap<string, DriftReferenceRow>,
  devices: number,
): { reference: DriftReferenceRow; drift: FeatureDrift } | null {
  const h = group.first;
  const reference = refs.get([h.model_name, h.model_version, h.feature].join(SEP));
  if (reference === undefined || group.counts.length !== reference.ref_proportions.length) return null;
  const drift = featureDrift(
    { counts: group.counts, missing: group.missing, outOfRange: group.outOfRange },
    reference.ref_proportions,
    thresholdsOf(reference),
    devices,
  );
  return { reference, drift };
}

/** The statistics columns reports and findings share. */
function driftColumns(group: Summed, drift: FeatureDrift) {
  return {
    n: group.n,
    missing: group.missing,
    out_of_range: group.outOfRange,
    missing_rate: drift.missingRate,
    out_of_range_rate: drift.outOfRangeRate,
    js_distance: drift.jsDistance,
    psi: drift.psi,
    psi_level: drift.psiLevel,
    sufficient: drift.sufficient,
    devices: drift.devices,
    chance_js: drift.chanceJs,
    drifted: drift.drifted,
  };
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The `drift_reports` view over the given table contents, ordered by (pipeline, model, version, firmware, site,
 * window, feature).
 */
export function driftReports(
  histograms: readonly DriftHistogramRow[],
  references: readonly DriftReferenceRow[],
): DriftReportRow[] {
  const refs = latestReferences(references);
  const groups = new Map<string, Summed>();
  const groupKey = (
    r: Pick<
      DriftHistogramRow,
      'pipeline' | 'model_name' | 'model_version' | 'firmware_version' | 'site_id' | 'window_start' | 'window_end'
    >,
  ) =>
    [r.pipeline, r.model_name, r.model_version, r.firmware_version, r.site_id, r.window_start, r.window_end].join(SEP);
  for (const row of final(histograms)) sumInto(groups, `${groupKey(row)}${SEP}${row.feature}`, row);
  const devices = devicesByGroup(groups, (h) => groupKey(h));

  const partial: Omit<
    DriftReportRow,
    'features_drifted' | 'features_total' | 'dataset_drifted' | 'watermark' | 'complete'
  >[] = [];
  for (const group of groups.values()) {
    const h = group.first;
    const measured = measure(group, refs, devices.get(groupKey(h)) ?? 0);
    if (measured === null) continue;
    const { reference, drift } = measured;
    partial.push({
      pipeline: h.pipeline,
      model_name: h.model_name,
      model_version: h.model_version,
      firmware_version: h.firmware_version,
      site_id: h.site_id,
      window_start: h.window_start,
      window_end: h.window_end,
      feature: h.feature,
      kind: reference.kind,
      reference_sha256: reference.reference_sha256,
      bin_labels: reference.bin_labels,
      bin_counts: group.counts,
      ref_proportions: reference.ref_proportions,
      ref_missing_rate: reference.ref_missing_rate,
      ...driftColumns(group, drift),
      dataset_share: reference.dataset_share,
      allowed_lateness_ms: reference.allowed_lateness_ms,
    });
  }

  const datasets = new Map<string, { drifted: boolean }[]>();
  const watermarks = new Map<string, number>();
  const datasetKey = groupKey;
  const streamKey = (r: (typeof partial)[number]) => [r.pipeline, r.model_name, r.model_version].join(SEP);
  for (const row of partial) {
    const list = datasets.get(datasetKey(row));
    if (list) list.push(row);
    else datasets.set(datasetKey(row), [row]);
    watermarks.set(
      streamKey(row),
      Math.max(watermarks.get(streamKey(row)) ?? Number.NEGATIVE_INFINITY, row.window_start),
    );
  }

  return partial
    .map((row) => {
      const dataset = datasetDrift(datasets.get(datasetKey(row))!, { datasetShare: row.dataset_share });
      const watermark = watermarks.get(streamKey(row))!;
      return {
        ...row,
        features_drifted: dataset.featuresDrifted,
        features_total: dataset.featuresTotal,
        dataset_drifted: dataset.drifted,
        watermark,
        complete: row.window_end + row.allowed_lateness_ms <= watermark,
      };
    })
    .sort(
      (a, b) =>
        compareStrings(a.pipeline, b.pipeline) ||
        compareStrings(a.model_name, b.model_name) ||
        compareStrings(a.model_version, b.model_version) ||
        compareStrings(a.firmware_version, b.firmware_version) ||
        compareStrings(a.site_id, b.site_id) ||
        a.window_start - b.window_start ||
        compareStrings(a.feature, b.feature),
    );
}

/**
 * Which firmware (and site) drifts: partials of one model version over [from, to) summed across windows per
 * (pipeline, firmware[, site], feature), measured against the reference, worst first (drifted first, then by JS
 * distance). Summing windows gives the surveillance view enough values for a verdict even where a single hour of one
 * site holds too few.
 */
export function driftFindings(
  histograms: readonly DriftHistogramRow[],
  references: readonly DriftReferenceRow[],
  options: DriftFindingsOptions,
): DriftFindingRow[] {
  const bySite = (options.by ?? 'firmware') === 'firmware_site';
  const findingKey = (r: Pick<DriftHistogramRow, 'pipeline' | 'firmware_version' | 'site_id'>) =>
    [r.pipeline, r.firmware_version, bySite ? r.site_id : ''].join(SEP);
  const refs = latestReferences(references);
  const groups = new Map<string, Summed>();
  for (const row of final(histograms)) {
    if (row.model_name !== options.model || row.model_version !== options.version) continue;
    if (options.pipeline !== undefined && row.pipeline !== options.pipeline) continue;
    if (row.window_start < options.from || row.window_start >= options.to) continue;
    sumInto(groups, `${findingKey(row)}${SEP}${row.feature}`, row);
  }
  const devices = devicesByGroup(groups, findingKey);
  const findings: DriftFindingRow[] = [];
  for (const group of groups.values()) {
    const h = group.first;
    const measured = measure(group, refs, devices.get(findingKey(h)) ?? 0);
    if (measured === null) continue;
    findings.push({
      pipeline: h.pipeline,
      model_name: h.model_name,
      model_version: h.model_version,
      firmware_version: h.firmware_version,
      site_id: bySite ? h.site_id : null,
      feature: h.feature,
      windows: group.windows.size,
      ...driftColumns(group, measured.drift),
    });
  }
  return findings
    .sort(
      (a, b) =>
        Number(b.drifted) - Number(a.drifted) ||
        (b.js_distance ?? Number.NEGATIVE_INFINITY) - (a.js_distance ?? Number.NEGATIVE_INFINITY) ||
        compareStrings(a.pipeline, b.pipeline) ||
        compareStrings(a.firmware_version, b.firmware_version) ||
        compareStrings(a.site_id ?? '', b.site_id ?? '') ||
        compareStrings(a.feature, b.feature),
    )
    .slice(0, options.limit ?? 10);
}
