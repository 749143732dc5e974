/**
 * Saved drift queries over the tables and view of 0003_drift.sql. Each returns SQL with `{name:Type}` placeholders and
 * its parameters, for `ClickHouseStore.query(sql, params)` (chdb and the HTTP client bind them the same way: values
 * never enter the SQL text), and a decoder from the returned JSON rows to typed rows (ClickHouse returns DateTime64
 * as text and, on a server, 64-bit integers as strings).
 *
 * The statistics come from the SQL functions of 0003_drift.sql, so these queries and the `drift_reports` view agree
 * with metrics.ts by construction; sql.test.ts checks it against report.ts on the same rows.
 */
import type { FeatureKind } from './features.ts';
import type { PsiLevel } from './metrics.ts';
import type { DriftFindingRow, DriftFindingsOptions, DriftReportRow } from './report.ts';

export type { DriftFindingsOptions } from './report.ts';

export interface DriftQuery<Row> {
  readonly sql: string;
  readonly params: Readonly<Record<string, string | number>>;
  /** Turns one JSON row of the result into a typed row. */
  readonly decode: (row: Record<string, unknown>) => Row;
}

const STATISTICS = `
    if(n + missing > 0, missing / (n + missing), 0) AS missing_rate,
    if(n > 0, out_of_range / n, 0) AS out_of_range_rate,
    if(n > 0, vigil_js_distance(vigil_proportions(bin_counts), ref_proportions), NULL) AS js_distance,
    if(n > 0, vigil_psi(vigil_proportions(bin_counts), ref_proportions, epsilon), NULL) AS psi,
    multiIf(psi IS NULL, 'ok', psi >= psi_alert, 'alert', psi >= psi_warn, 'warn', 'ok') AS psi_level,
    n >= min_count AS sufficient,
    if(devices > 0 AND noise_z > 0, vigil_chance_js(vigil_reference_df(ref_proportions), devices, noise_z), NULL)
        AS chance_js,
    sufficient AND ifNull(js_distance >= js_threshold, false) AND ifNull(js_distance >= chance_js, true) AS drifted`;

/**
 * Top drift findings: which firmware (and site) drifts over a time range. Partials of one model version are summed
 * across the windows starting in [from, to) per (pipeline, firmware[, site], feature) and measured against the
 * reference; drifted findings first, then by JS distance. Mirrors `driftFindings` in report.ts.
 *
 * @example
 * const q = driftFindingsQuery({ model: 'news2', version: '1.0.0', from: start, to: end, by: 'firmware' });
 * const findings = (await store.query(q.sql, q.params)).map(q.decode);
 */
export function driftFindingsQuery(options: DriftFindingsOptions): DriftQuery<DriftFindingRow> {
  const bySite = (options.by ?? 'firmware') === 'firmware_site';
  const limit = options.limit ?? 10;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer');
  const siteKey = bySite ? 'site_id, ' : '';
  const sql = `
SELECT
    pipeline, model_name, model_version, firmware_version, site_id, feature, windows, n, missing, out_of_range,
    devices,${STATISTICS}
FROM
(
    SELECT h.*, ${bySite ? '' : 'CAST(NULL AS Nullable(String)) AS site_id, '}r.ref_proportions AS ref_proportions,
        r.epsilon AS epsilon, r.js_threshold AS js_threshold, r.psi_warn AS psi_warn, r.psi_alert AS psi_alert,
        r.min_count AS min_count, r.noise_z AS noise_z
    FROM
    (
        SELECT
            *,
            max(if(feature = '_devices', vigil_estimate_devices(bin_counts), 0))
                OVER (PARTITION BY pipeline, model_name, model_version, firmware_version${bySite ? ', site_id' : ''}) AS devices
        FROM
        (
            SELECT
                pipeline, model_name, model_version, firmware_version, ${siteKey}feature,
                uniqExact(window_start) AS windows,
                sumForEach(bin_counts) AS bin_counts,
                sum(n) AS n,
                sum(missing) AS missing,
                sum(out_of_range) AS out_of_range
            FROM drift_histograms FINAL
            WHERE model_name = {model:String} AND model_version = {version:String}
                AND window_start >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
                AND window_start < fromUnixTimestamp64Milli({to:Int64}, 'UTC')${options.pipeline === undefined ? '' : '\n                AND pipeline = {pipeline:String}'}
            GROUP BY pipeline, model_name, model_version, firmware_version, ${siteKey}feature
        )
    ) AS h
    INNER JOIN (SELECT * FROM drift_reference_bins FINAL) AS r
        ON h.model_name = r.model_name AND h.model_version = r.model_version AND h.feature = r.feature
    WHERE length(h.bin_counts) = length(r.ref_proportions)
)
ORDER BY drifted DESC, js_distance DESC NULLS LAST, pipeline, firmware_version, site_id, feature
LIMIT {limit:UInt32}`;
  const params: Record<string, string | number> = {
    model: options.model,
    version: options.version,
    from: options.from,
    to: options.to,
    limit,
  };
  if (options.pipeline !== undefined) params['pipeline'] = options.pipeline;
  return { sql, params, decode: decodeFinding };
}

export interface DriftReportsOptions {
  readonly model: string;
  readonly version: string;
  readonly from: number;
  readonly to: number;
  /** Only drifted features (default false). */
  readonly driftedOnly?: boolean;
}

/**
 * Per-window drift reports of one model version for windows starting in [from, to), from the `drift_reports` view.
 *
 * @example
 * const q = driftReportsQuery({ model: 'news2', version: '1.0.0', from, to, driftedOnly: true });
 * const reports = (await store.query(q.sql, q.params)).map(q.decode);
 */
export function driftReportsQuery(options: DriftReportsOptions): DriftQuery<DriftReportRow> {
  const sql = `
SELECT *
FROM drift_reports
WHERE model_name = {model:String} AND model_version = {version:String}
    AND window_start >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
    AND window_start < fromUnixTimestamp64Milli({to:Int64}, 'UTC')${options.driftedOnly ? '\n    AND drifted' : ''}
ORDER BY pipeline, model_name, model_version, firmware_version, site_id, window_start, feature`;
  return {
    sql,
    params: { model: options.model, version: options.version, from: options.from, to: options.to },
    decode: decodeReport,
  };
}

// --- decoding ------------------------------------------------------------------------------------------------------

function num(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return Number(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  throw new TypeError(`expected a number, got ${typeof value}`);
}

function nullableNum(value: unknown): number | null {
  return value === null || value === undefined ? null : num(value);
}

function bool(value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 'true';
}

/** DateTime64 text (`YYYY-MM-DD hh:mm:ss.sss`, UTC) or epoch ms -> epoch ms. */
function time(value: unknown): number {
  if (typeof value === 'number') return value;
  return Date.parse(`${String(value).replace(' ', 'T')}Z`);
}

function str(value: unknown): string {
  return String(value);
}

function decodeFinding(row: Record<string, unknown>): DriftFindingRow {
  return {
    pipeline: str(row['pipeline']),
    model_name: str(row['model_name']),
    model_version: str(row['model_version']),
    firmware_version: str(row['firmware_version']),
    site_id: row['site_id'] === null || row['site_id'] === undefined ? null : str(row['site_id']),
    feature: str(row['feature']),
    windows: num(row['windows']),
    n: num(row['n']),
    missing: num(row['missing']),
    out_of_range: num(row['out_of_range']),
    missing_rate: num(row['missing_rate']),
    out_of_range_rate: num(row['out_of_range_rate']),
    js_distance: nullableNum(row['js_distance']),
    psi: nullableNum(row['psi']),
    psi_level: str(row['psi_level']) as PsiLevel,
    sufficient: bool(row['sufficient']),
    devices: num(row['devices']),
    chance_js: nullableNum(row['chance_js']),
    drifted: bool(row['drifted']),
  };
}

function decodeReport(row: Record<string, unknown>): DriftReportRow {
  return {
    pipeline: str(row['pipeline']),
    model_name: str(row['model_name']),
    model_version: str(row['model_version']),
    firmware_version: str(row['firmware_version']),
    site_id: str(row['site_id']),
    window_start: time(row['window_start']),
    window_end: time(row['window_end']),
    feature: str(row['feature']),
    kind: str(row['kind']) as FeatureKind,
    reference_sha256: str(row['reference_sha256']),
    bin_labels: (row['bin_labels'] as unknown[]).map(str),
    bin_counts: (row['bin_counts'] as unknown[]).map(num),
    ref_proportions: (row['ref_proportions'] as unknown[]).map(num),
    n: num(row['n']),
    missing: num(row['missing']),
    out_of_range: num(row['out_of_range']),
    missing_rate: num(row['missing_rate']),
    ref_missing_rate: num(row['ref_missing_rate']),
    out_of_range_rate: num(row['out_of_range_rate']),
    js_distance: nullableNum(row['js_distance']),
    psi: nullableNum(row['psi']),
    psi_level: str(row['psi_level']) as PsiLevel,
    sufficient: bool(row['sufficient']),
    devices: num(row['devices']),
    chance_js: nullableNum(row['chance_js']),
    drifted: bool(row['drifted']),
    dataset_share: num(row['dataset_share']),
    allowed_lateness_ms: num(row['allowed_lateness_ms']),
    features_drifted: num(row['features_drifted']),
    features_total: num(row['features_total']),
    dataset_drifted: bool(row['dataset_drifted']),
    watermark: time(row['watermark']),
    complete: bool(row['complete']),
  };
}
