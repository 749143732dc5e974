-- Data completeness by site
--
-- Purpose: how much each site sends and how much of it is usable, over a window of observation time: devices, active
-- device-hours (hours in which a device sent anything), events and vital-sign observations per active device-hour,
-- and for vital signs the share missing each NEWS2 parameter, plus the share flagged news2_incomplete by the pipeline.
-- A site whose rate per device-hour drops, or whose missing shares rise, has a connectivity, workflow or sensor
-- problem before it has a clinical one. Hours with no data at all are not visible here: compare device_hours against
-- the site's expected monitoring time.
-- Exactness: reads normalised_events_current, one row per event (its current derivation: the newest pipeline
-- version's, whose news2_incomplete flag is the one reported), so neither an event stored twice nor an event derived
-- again by a newer pipeline version inflates the rates.
-- @param from  Start of the window on observed_at, inclusive (UTC).
-- @default from 1970-01-01 00:00:00
-- @param to  End of the window on observed_at, exclusive (UTC).
-- @default to 2100-01-01 00:00:00
-- @example vigil query run completeness-by-site --param from=2026-03-10 --param to=2026-03-11
SELECT
    site_id,
    uniqExact(device_id) AS devices,
    uniqExact(device_id, toStartOfHour(observed_at)) AS device_hours,
    count() AS events,
    countIf(event_type = 'vital_signs') AS vital_signs,
    round(events / device_hours, 2) AS events_per_device_hour,
    round(vital_signs / device_hours, 2) AS vitals_per_device_hour,
    round(countIf(event_type = 'vital_signs' AND respiratory_rate IS NULL) / nullIf(vital_signs, 0), 4)
        AS missing_respiratory_rate,
    round(countIf(event_type = 'vital_signs' AND spo2 IS NULL) / nullIf(vital_signs, 0), 4) AS missing_spo2,
    round(countIf(event_type = 'vital_signs' AND on_oxygen IS NULL) / nullIf(vital_signs, 0), 4) AS missing_on_oxygen,
    round(countIf(event_type = 'vital_signs' AND systolic_bp IS NULL) / nullIf(vital_signs, 0), 4) AS missing_systolic_bp,
    round(countIf(event_type = 'vital_signs' AND pulse IS NULL) / nullIf(vital_signs, 0), 4) AS missing_pulse,
    round(countIf(event_type = 'vital_signs' AND consciousness IS NULL) / nullIf(vital_signs, 0), 4)
        AS missing_consciousness,
    round(countIf(event_type = 'vital_signs' AND temperature_c IS NULL) / nullIf(vital_signs, 0), 4)
        AS missing_temperature,
    round(countIf(event_type = 'vital_signs' AND has(provenance_flags, 'news2_incomplete')) / nullIf(vital_signs, 0), 4)
        AS flagged_news2_incomplete
FROM normalised_events_current
WHERE observed_at >= {from:DateTime64(3, 'UTC')} AND observed_at < {to:DateTime64(3, 'UTC')}
GROUP BY site_id
ORDER BY site_id
