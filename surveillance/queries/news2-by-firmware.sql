-- NEWS2 score distribution by firmware version
--
-- Purpose: the distribution of one model's scores (count, mean, exact quantiles) and its risk-band mix for each
-- firmware version, over a window of observation time. A firmware that shifts scores (e.g. a sensor reading low)
-- shows as a higher median and a heavier medium/high share than its siblings on the same model version.
-- Only the live rollout by default: shadow and canary outputs describe a candidate model, not clinical behaviour.
-- Exactness: reads inferences_current, one row per inference_id (event x model x version) even if a retried batch was
-- stored twice or the event was re-scored after a rollout change or under a newer pipeline version (every output stays
-- in inferences; the current one is the live rollout's, then the newest), and exact quantiles (quantileExact), so the
-- same data always gives the same numbers in a report. A version's shadow outputs for events it later scored live
-- count as live.
-- @param model  Model name.
-- @default model news2
-- @param model_version  Model version; empty for every version of the model (then compare like with like).
-- @default model_version
-- @param rollout  Rollout the outputs came through: live, shadow or canary.
-- @default rollout live
-- @param from  Start of the window on observed_at, inclusive (UTC).
-- @default from 1970-01-01 00:00:00
-- @param to  End of the window on observed_at, exclusive (UTC).
-- @default to 2100-01-01 00:00:00
-- @example vigil query run news2-by-firmware --param model_version=1.0.0 --param from=2026-03-01 --param to=2026-04-01
SELECT
    firmware_version,
    count() AS inferences,
    uniqExact(device_id) AS devices,
    round(avg(score), 3) AS mean_score,
    quantileExact(0.5)(score) AS p50,
    quantileExact(0.9)(score) AS p90,
    quantileExact(0.99)(score) AS p99,
    round(countIf(risk_band = 'low') / inferences, 4) AS share_low,
    round(countIf(risk_band = 'low_medium') / inferences, 4) AS share_low_medium,
    round(countIf(risk_band = 'medium') / inferences, 4) AS share_medium,
    round(countIf(risk_band = 'high') / inferences, 4) AS share_high
FROM inferences_current
WHERE model_name = {model:String}
  AND ({model_version:String} = '' OR model_version = {model_version:String})
  AND rollout = {rollout:String}
  AND observed_at >= {from:DateTime64(3, 'UTC')} AND observed_at < {to:DateTime64(3, 'UTC')}
GROUP BY firmware_version
ORDER BY firmware_version
