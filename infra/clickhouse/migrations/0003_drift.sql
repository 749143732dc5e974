-- 0003_drift: model drift. Partial histograms from the detect-drift operator, the reference bins they are measured
-- against, the drift statistics as functions, and the per-window drift report as a view.
--
-- Same conventions as 0001_planes.sql (immutable ORDER BY = identity, idempotent statements, dedup window).
-- The statistics are implemented twice, here and in operators/detect-drift/metrics.ts, and
-- operators/detect-drift/sql.test.ts proves both give the same numbers on the same histograms: change them together.

-- Partial histograms: one row per (micro-batch, model version, firmware, site, event-time window, feature), exactly
-- the drift-histogram record (schemas/avro/drift-histogram) the operator emits. A window's histogram is the SUM of
-- its partials over batches and workers. bin_counts follows the bins of the model version's reference
-- (drift_reference_bins.bin_labels); n = arraySum(bin_counts) is the count of non-missing values.
-- Each group also has one row with feature '_devices': its bin_counts is a linear-counting sketch of the group's
-- device ids (256 buckets, records per device-id hash bucket). Summed sketches keep the set of non-empty buckets,
-- so they merge like histograms and estimate distinct devices (vigil_estimate_devices).
--
-- Identity: the group (pipeline, model, firmware, site, window, feature) plus the batch identity (source topic,
-- partition, first and last offset). A batch retried after a crash is the same offset range and the same records,
-- so it yields identical rows: the insert dedup token drops the retried block, and failing that ReplacingMergeTree
-- keeps one row per identity (drift_reports reads FINAL). Partition: month of window_start (event time).
-- Caveat: partials are exact under the deterministic batch contract. A replay that re-cut the same records into
-- different offset ranges would count them twice: the offsets would differ, so neither line of defence applies.
CREATE TABLE IF NOT EXISTS drift_histograms
(
    pipeline         LowCardinality(String),
    model_name       LowCardinality(String),
    model_version    LowCardinality(String),
    site_id          LowCardinality(String),
    firmware_version LowCardinality(String),
    window_start     DateTime64(3, 'UTC'),
    window_end       DateTime64(3, 'UTC'),
    feature          LowCardinality(String),
    bin_counts       Array(Int64),
    n                Int64,
    missing          Int64,
    out_of_range     Int64,
    source_topic     LowCardinality(String),
    source_partition Int32,
    first_offset     Int64,
    last_offset      Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (model_name, model_version, firmware_version, site_id, window_start, feature, pipeline, window_end,
          source_topic, source_partition, first_offset, last_offset)
SETTINGS non_replicated_deduplication_window = 100000;

-- Reference bins: one row per (model, version, feature), loaded from models/<name>/<version>/reference.json by the
-- runtime at start-up (operators/detect-drift referenceRows). It also carries the drift policy the operator was
-- configured with (thresholds, minimum count, lateness), so drift_reports applies the same verdicts as the TypeScript
-- side. The newest load wins (version column loaded_at). A model version's reference never changes once partials
-- exist (the manifest pins its sha256): rebuilding it with other bins makes old partials meaningless.
CREATE TABLE IF NOT EXISTS drift_reference_bins
(
    model_name          LowCardinality(String),
    model_version       LowCardinality(String),
    feature             LowCardinality(String),
    reference_sha256    String,
    kind                LowCardinality(String),
    bin_labels          Array(String),
    bin_edges           Array(Float64),
    ref_counts          Array(Int64),
    ref_proportions     Array(Float64),
    ref_n               Int64,
    ref_missing_rate    Float64,
    epsilon             Float64,
    js_threshold        Float64,
    psi_warn            Float64,
    psi_alert           Float64,
    min_count           Int64,
    noise_z             Float64,
    dataset_share       Float64,
    allowed_lateness_ms Int64,
    loaded_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (model_name, model_version, feature);

-- Jensen-Shannon distance, base 2, in [0, 1], between probability vectors p and q of equal length.
-- Empty bins need no epsilon (0 log 0 = 0, and the midpoint is positive wherever p or q is).
CREATE OR REPLACE FUNCTION vigil_js_distance AS (p, q) ->
    sqrt(least(1, greatest(0, 0.5 * arraySum((a, b) ->
        if(a > 0, a * log2((2 * a) / (a + b)), 0) + if(b > 0, b * log2((2 * b) / (a + b)), 0), p, q))));

-- Population stability index (natural log), every proportion first raised to at least eps (1e-4).
CREATE OR REPLACE FUNCTION vigil_psi AS (p, q, eps) ->
    arraySum((a, b) -> (greatest(a, eps) - greatest(b, eps)) * log(greatest(a, eps) / greatest(b, eps)), p, q);

-- Counts to proportions (all zeros when the counts sum to 0).
CREATE OR REPLACE FUNCTION vigil_proportions AS (counts) ->
    arrayMap(c -> if(arraySum(counts) = 0, 0, c / arraySum(counts)), counts);

-- Distinct devices from a summed '_devices' sketch by linear counting: m ln(m / empty buckets); 0 for an empty
-- sketch, m ln(m) (a lower bound) when no bucket is empty.
CREATE OR REPLACE FUNCTION vigil_estimate_devices AS (sketch) ->
    if(countEqual(sketch, 0) = length(sketch), 0,
       if(countEqual(sketch, 0) = 0, length(sketch) * log(length(sketch)),
          length(sketch) * log(length(sketch) / countEqual(sketch, 0))));

-- Degrees of freedom of a histogram against reference proportions ref: non-empty reference bins - 1, at least 1.
CREATE OR REPLACE FUNCTION vigil_reference_df AS (ref) ->
    greatest(1, toInt64(arrayCount(x -> x > 0, ref)) - 1);

-- The chance gate: the JS distance a cohort of `devices` devices drawn from the reference population exceeds only
-- with the standard-normal upper tail of z (3.09: 1 in 1,000), sqrt(chi2_z(df) / (8 devices ln 2)), with the chi2
-- quantile by Wilson-Hilferty. Readings of one patient are alike, so a cohort carries about as much information as
-- its devices, however many readings they send.
CREATE OR REPLACE FUNCTION vigil_chance_js AS (df, devices, z) ->
    sqrt(df * pow(1 - 2 / (9 * df) + z * sqrt(2 / (9 * df)), 3) / (8 * devices * log(2)));

-- The drift report: one row per (pipeline, model version, firmware, site, window, feature), the partials summed.
--   n, missing, out_of_range     summed counts; missing_rate = missing / (n + missing), out_of_range_rate = out / n
--   js_distance, psi             against the reference proportions; NULL when n = 0
--   psi_level                    'ok' | 'warn' | 'alert' (psi_warn / psi_alert of the reference row)
--   sufficient                   n >= min_count: enough values for a verdict
--   devices                      distinct devices of the group (sketch estimate; 0 when no sketch was sent)
--   chance_js                    the JS distance chance alone rarely exceeds for that many devices (vigil_chance_js
--                                at noise_z); NULL, and no gate, when devices = 0 or noise_z = 0
--   drifted                      sufficient, js_distance >= js_threshold and js_distance >= chance_js
--   features_drifted/_total      over the features of the same window and group; dataset_drifted when the share of
--                                drifted features reaches dataset_share
--   watermark                    start of the latest window any partial of this pipeline and model version names:
--                                a lower bound of the latest observed_at seen
--   complete                     window_end + allowed_lateness_ms <= watermark: late events can no longer change it
-- Partials whose bin count differs from the reference's are left out (they were binned against other bins).
CREATE OR REPLACE VIEW drift_reports AS
SELECT
    *,
    countIf(drifted) OVER dataset_window AS features_drifted,
    count() OVER dataset_window AS features_total,
    features_drifted / features_total >= dataset_share AS dataset_drifted,
    max(window_start) OVER (PARTITION BY pipeline, model_name, model_version) AS watermark,
    toUnixTimestamp64Milli(window_end) + allowed_lateness_ms <= toUnixTimestamp64Milli(watermark) AS complete
FROM
(
    SELECT
        h.pipeline AS pipeline,
        h.model_name AS model_name,
        h.model_version AS model_version,
        h.firmware_version AS firmware_version,
        h.site_id AS site_id,
        h.window_start AS window_start,
        h.window_end AS window_end,
        h.feature AS feature,
        r.kind AS kind,
        r.reference_sha256 AS reference_sha256,
        r.bin_labels AS bin_labels,
        h.bin_counts AS bin_counts,
        r.ref_proportions AS ref_proportions,
        h.n AS n,
        h.missing AS missing,
        h.out_of_range AS out_of_range,
        if(h.n + h.missing > 0, h.missing / (h.n + h.missing), 0) AS missing_rate,
        r.ref_missing_rate AS ref_missing_rate,
        if(h.n > 0, h.out_of_range / h.n, 0) AS out_of_range_rate,
        if(h.n > 0, vigil_js_distance(vigil_proportions(h.bin_counts), r.ref_proportions), NULL) AS js_distance,
        if(h.n > 0, vigil_psi(vigil_proportions(h.bin_counts), r.ref_proportions, r.epsilon), NULL) AS psi,
        multiIf(psi IS NULL, 'ok', psi >= r.psi_alert, 'alert', psi >= r.psi_warn, 'warn', 'ok') AS psi_level,
        h.n >= r.min_count AS sufficient,
        h.devices AS devices,
        if(h.devices > 0 AND r.noise_z > 0,
           vigil_chance_js(vigil_reference_df(r.ref_proportions), h.devices, r.noise_z), NULL) AS chance_js,
        sufficient AND ifNull(js_distance >= r.js_threshold, false) AND ifNull(js_distance >= chance_js, true) AS drifted,
        r.dataset_share AS dataset_share,
        r.allowed_lateness_ms AS allowed_lateness_ms
    FROM
    (
        SELECT
            *,
            max(if(feature = '_devices', vigil_estimate_devices(bin_counts), 0))
                OVER (PARTITION BY pipeline, model_name, model_version, firmware_version, site_id, window_start,
                                   window_end) AS devices
        FROM
        (
            SELECT
                pipeline, model_name, model_version, firmware_version, site_id, window_start, window_end, feature,
                sumForEach(bin_counts) AS bin_counts,
                sum(n) AS n,
                sum(missing) AS missing,
                sum(out_of_range) AS out_of_range
            FROM drift_histograms FINAL
            GROUP BY pipeline, model_name, model_version, firmware_version, site_id, window_start, window_end, feature
        )
    ) AS h
    INNER JOIN (SELECT * FROM drift_reference_bins FINAL) AS r
        ON h.model_name = r.model_name AND h.model_version = r.model_version AND h.feature = r.feature
    WHERE length(h.bin_counts) = length(r.ref_proportions)
)
WINDOW dataset_window AS (PARTITION BY pipeline, model_name, model_version, firmware_version, site_id, window_start,
                                       window_end);
