-- SpO2 distribution by firmware version and device batch
--
-- Purpose: the SpO2 readings of each (firmware version, manufacturing batch) cohort over a window of observation
-- time: count, mean, exact 5th/50th/95th percentiles, and the share of readings at NEWS2 thresholds (<= 91 %: 3 points;
-- <= 93 %: at least 2). A sensor that reads low in one firmware or one batch shows as a lower median and a larger share
-- under the thresholds than the other cohorts. share_on_oxygen is reported because supplemental oxygen raises SpO2:
-- compare cohorts with similar shares.
-- Exactness: reads normalised_events_current, one row per event (its current derivation), so a reading stored twice
-- or derived again by a newer pipeline version counts once; exact quantiles (reproducible numbers).
-- @param from  Start of the window on observed_at, inclusive (UTC).
-- @default from 1970-01-01 00:00:00
-- @param to  End of the window on observed_at, exclusive (UTC).
-- @default to 2100-01-01 00:00:00
-- @example vigil query run spo2-by-firmware-batch --param from=2026-03-01 --param to=2026-04-01 --json
SELECT
    firmware_version,
    ifNull(device_batch, '(unknown)') AS batch,
    uniqExact(device_id) AS devices,
    count() AS readings,
    round(avg(spo2), 2) AS mean_spo2,
    quantileExact(0.05)(spo2) AS p05,
    quantileExact(0.5)(spo2) AS p50,
    quantileExact(0.95)(spo2) AS p95,
    round(countIf(spo2 <= 91) / readings, 4) AS share_le_91,
    round(countIf(spo2 <= 93) / readings, 4) AS share_le_93,
    round(countIf(ifNull(on_oxygen, false)) / readings, 4) AS share_on_oxygen
FROM normalised_events_current
WHERE event_type = 'vital_signs'
  AND spo2 IS NOT NULL
  AND observed_at >= {from:DateTime64(3, 'UTC')} AND observed_at < {to:DateTime64(3, 'UTC')}
GROUP BY firmware_version, batch
ORDER BY firmware_version, batch
