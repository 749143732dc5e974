-- Score by model version and patient subgroup
--
-- Purpose: each model version's scores per rollout and patient subgroup (a coarse band such as age, never an
-- identifier) over a window of observation time: inferences, patients, mean and exact median/90th percentile, and the
-- risk-band mix. It shows whether a new version scores a subgroup differently from the version it replaces (shadow
-- and canary next to live), the subgroup performance check a PCCP asks for.
-- Privacy: groups with fewer than min_count inferences are left out, so a small subgroup at one site cannot single
-- out a patient in an exported table.
-- Exactness: reads inferences_current (one row per inference_id: the live rollout's output when the version scored the
-- event live, then the newest derivation; every other output stays in inferences) and exact quantiles.
-- @param model  Model name; empty for every model.
-- @default model news2
-- @param min_count  Smallest group reported (small-cell suppression).
-- @default min_count 10
-- @param from  Start of the window on observed_at, inclusive (UTC).
-- @default from 1970-01-01 00:00:00
-- @param to  End of the window on observed_at, exclusive (UTC).
-- @default to 2100-01-01 00:00:00
-- @example vigil query run score-by-model-subgroup --param from=2026-03-01 --param min_count=20
SELECT
    model_name,
    model_version,
    rollout,
    ifNull(patient_subgroup, '(unknown)') AS subgroup,
    count() AS inferences,
    uniqExact(patient_ref) AS patients,
    round(avg(score), 3) AS mean_score,
    quantileExact(0.5)(score) AS p50,
    quantileExact(0.9)(score) AS p90,
    round(countIf(risk_band = 'low') / inferences, 4) AS share_low,
    round(countIf(risk_band = 'low_medium') / inferences, 4) AS share_low_medium,
    round(countIf(risk_band = 'medium') / inferences, 4) AS share_medium,
    round(countIf(risk_band = 'high') / inferences, 4) AS share_high
FROM inferences_current
WHERE ({model:String} = '' OR model_name = {model:String})
  AND observed_at >= {from:DateTime64(3, 'UTC')} AND observed_at < {to:DateTime64(3, 'UTC')}
GROUP BY model_name, model_version, rollout, subgroup
HAVING inferences >= {min_count:UInt32}
ORDER BY model_name, model_version, rollout, subgroup
