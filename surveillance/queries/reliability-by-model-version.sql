-- Reliability diagram by model version, rollout and cohort
--
-- Purpose: the points of a reliability diagram for each probability model version, rollout and cohort and window:
-- the 15 equal-width bins of predicted probability (bin 1 covers [0, 1/15), bin 15 [14/15, 1]), with how many
-- inferences fell in each (inferences, events) and their mean predicted probability against the observed rate of
-- the outcome. A calibrated model's points lie on the diagonal; points below it mean the model over-predicts there.
-- Read beside calibration-by-model-version (the same computations, summarised); the model report draws these.
-- Empty bins are listed with NULL rates, so every diagram has its 15 bins.
-- Privacy: cohorts with fewer than min_count inferences in all are left out (small-cell suppression).
-- Exactness: reads model_calibration FINAL and, of the computations of one model version x rollout x cohort x window
-- x horizon x outcome kinds, only the latest (computed_at), as calibration-by-model-version does.
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
-- @example vigil query run reliability-by-model-version --param model=deterioration --param version=1.1.0
SELECT
    model,
    version,
    rollout,
    cohort,
    window_start,
    window_end,
    bin,
    round(lo, 4) AS bin_from,
    round(hi, 4) AS bin_to,
    in_bin AS inferences,
    events_in_bin AS events,
    round(predicted, 4) AS mean_predicted_in_bin,
    round(observed, 4) AS observed_rate_in_bin
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
ARRAY JOIN
    arrayEnumerate(bin_n) AS bin,
    bin_lo AS lo,
    bin_hi AS hi,
    bin_n AS in_bin,
    bin_events AS events_in_bin,
    bin_mean_predicted AS predicted,
    bin_observed_rate AS observed
WHERE n >= {min_count:UInt32}
ORDER BY model, version, rollout, indexOf(['all'], cohort) DESC, cohort, window_start, window_end, bin
