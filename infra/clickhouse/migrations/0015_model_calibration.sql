-- 0015_model_calibration: calibration of probability models against outcomes (issue 12), per model x version x
-- rollout x cohort x window, as governance/calibrate.ts computes it (governance/calibration.ts: the figures).
--
-- One row per computation: the inferences of a model version observed in [window_start, window_end) whose outcome
-- window (observed_at, observed_at + horizon_ms] had closed by computed_at, labelled with the outcomes of
-- outcome_kinds (0014_outcomes.sql), in one rollout (live, canary, shadow) and one cohort: 'all', 'site:<site_id>' or
-- 'subgroup:<patient_subgroup>'. The figures beside their counts (n inferences, events = labelled positive):
-- calibration-in-the-large (citl = observed_rate - mean_predicted), the logistic recalibration intercept and slope,
-- ECE over 15 equal-width bins, Brier, AUROC. A figure the rows leave undefined (one class, a separable score) is
-- NULL. The 15 reliability bins are parallel arrays (bin k covers [bin_lo[k], bin_hi[k]); the last is closed): the
-- reliability diagram. No patient_ref, no event id: aggregates only (small cohorts are suppressed by the readers,
-- see surveillance/queries/calibration-by-model-version.sql).
--
-- Append-only: a computation is a fact about what was known at computed_at (outcomes keep arriving), never updated.
-- Computing again later is a new row beside the old one; readers take the latest computed_at per key (the saved
-- queries do). ORDER BY names the whole identity of a computation, so ReplacingMergeTree only collapses an identical
-- retried insert (the dedup token drops it first).
CREATE TABLE IF NOT EXISTS model_calibration
(
    model               LowCardinality(String),
    version             LowCardinality(String),
    rollout             LowCardinality(String),
    cohort              String,
    window_start        DateTime64(3, 'UTC'),
    window_end          DateTime64(3, 'UTC'),
    horizon_ms          Int64,
    outcome_kinds       Array(LowCardinality(String)),
    n                   UInt32,
    events              UInt32,
    mean_predicted      Nullable(Float64),
    observed_rate       Nullable(Float64),
    citl                Nullable(Float64),
    intercept           Nullable(Float64),
    slope               Nullable(Float64),
    ece15               Nullable(Float64),
    brier               Nullable(Float64),
    auroc               Nullable(Float64),
    bin_lo              Array(Float64),
    bin_hi              Array(Float64),
    bin_n               Array(UInt32),
    bin_events          Array(UInt32),
    bin_mean_predicted  Array(Nullable(Float64)),
    bin_observed_rate   Array(Nullable(Float64)),
    computed_at         DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (model, version, rollout, cohort, window_start, window_end, horizon_ms, outcome_kinds, computed_at)
SETTINGS non_replicated_deduplication_window = 100000;
