-- Calibration by model version, rollout and cohort
--
-- Purpose: how well each probability model version's predictions match what happened, per rollout (live, canary,
-- shadow) and cohort (all, site:<id>, subgroup:<x>) and window, as the calibration job computed them
-- (governance/calibrate.ts into model_calibration): inferences whose outcome window had closed (n) and the outcomes
-- among them (events), observed rate against mean predicted, calibration-in-the-large (citl = observed - predicted,
-- 0 is ideal), the logistic recalibration slope (1 is ideal; below 1 the model is overconfident) and intercept, ECE
-- over 15 bins, Brier and AUROC. Shadow beside live on the same window is the evidence a promotion asks for.
-- Privacy: cohorts with fewer than min_count inferences are left out, so a small subgroup at one site cannot single
-- out a patient in an exported table.
-- Exactness: reads model_calibration FINAL (a retried insert counts once) and, of the computations of one model
-- version x rollout x cohort x window x horizon x outcome kinds, only the latest (computed_at): outcomes keep
-- arriving, every computation stays in the table, the newest one is the answer. Figures are rounded for reading.
-- @param model  Model name; empty for every model.
-- @default model
-- @param version  Model version; empty for every version.
-- @default version
-- @param cohort  One cohort (all, site:<id>, subgroup:<x>); empty for every cohort.
-- @default cohort all
-- @param min_count  Smallest cohort reported, in labelled inferences (small-cell suppression).
-- @default min_count 10
-- @param from  Start of the windows reported, on window_start, inclusive (UTC).
-- @default from 1970-01-01 00:00:00
-- @param to  End of the windows reported, on window_start, exclusive (UTC).
-- @default to 2100-01-01 00:00:00
-- @example vigil query run calibration-by-model-version --param model=deterioration --param from=2026-03-01
SELECT
    model,
    version,
    rollout,
    cohort,
    window_start,
    window_end,
    round(horizon_ms / 3600000, 2) AS horizon_hours,
    outcome_kinds,
    n,
    events,
    round(observed_rate, 4) AS observed,
    round(mean_predicted, 4) AS predicted,
    round(citl, 4) AS calibration_in_the_large,
    round(slope, 3) AS calibration_slope,
    round(intercept, 3) AS calibration_intercept,
    round(ece15, 4) AS ece_15_bins,
    round(brier, 4) AS brier_score,
    round(auroc, 4) AS auroc_value,
    computed_at
FROM
(
    SELECT *
    FROM model_calibration FINAL
    WHERE ({model:String} = '' OR model = {model:String})
      AND ({version:String} = '' OR version = {version:String})
      AND ({cohort:String} = '' OR cohort = {cohort:String})
      AND window_start >= {from:DateTime64(3, 'UTC')} AND window_start < {to:DateTime64(3, 'UTC')}
    ORDER BY model, version, rollout, cohort, window_start, window_end, horizon_ms, outcome_kinds, computed_at DESC
    LIMIT 1 BY model, version, rollout, cohort, window_start, window_end, horizon_ms, outcome_kinds
)
WHERE n >= {min_count:UInt32}
ORDER BY model, version, rollout, indexOf(['all'], cohort) DESC, cohort, window_start, window_end
