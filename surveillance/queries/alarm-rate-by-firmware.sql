-- Alarm rate by firmware version
--
-- Purpose: alarms raised per 1,000 vital-sign observations and per device-day, for each firmware version, over a
-- window of observation time. A firmware whose alarm rate departs from its siblings' (more technical alarms, more
-- high-priority alarms) is the first signal post-market surveillance looks for. Cleared alarms (active = false) are
-- not counted as raised.
-- Exactness: FINAL, and every count is of distinct events (uniqExact(event_id)): the query reads only the event's
-- own columns (envelope and payload), the same in every derivation of it, so neither an event stored twice (a retried
-- batch that fell outside the insert dedup window, parts not merged yet) nor an event derived again by a newer
-- pipeline version (both derivations stay in normalised_events) counts twice, and no choice of derivation is needed.
-- The window prunes whole monthly partitions first, so FINAL reads only those.
-- @param from  Start of the window on observed_at, inclusive (UTC).
-- @default from 1970-01-01 00:00:00
-- @param to  End of the window on observed_at, exclusive (UTC).
-- @default to 2100-01-01 00:00:00
-- @example vigil query run alarm-rate-by-firmware --param from=2026-03-01 --param to=2026-04-01
SELECT
    firmware_version,
    uniqExact(device_id) AS devices,
    uniqExact(device_id, toDate(observed_at)) AS device_days,
    uniqExactIf(event_id, event_type = 'vital_signs') AS vital_signs,
    uniqExactIf(event_id, event_type = 'alarm' AND ifNull(alarm_active, false)) AS alarms_raised,
    uniqExactIf(event_id, event_type = 'alarm' AND ifNull(alarm_active, false) AND alarm_priority = 'high')
        AS high_priority_alarms,
    uniqExactIf(event_id, event_type = 'alarm' AND ifNull(alarm_active, false) AND alarm_category = 'technical')
        AS technical_alarms,
    round(1000 * alarms_raised / nullIf(vital_signs, 0), 2) AS alarms_per_1000_vitals,
    round(alarms_raised / device_days, 3) AS alarms_per_device_day
FROM normalised_events FINAL
WHERE observed_at >= {from:DateTime64(3, 'UTC')} AND observed_at < {to:DateTime64(3, 'UTC')}
GROUP BY firmware_version
ORDER BY firmware_version
