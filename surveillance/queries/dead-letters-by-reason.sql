-- Dead letters by reason and stage
--
-- Purpose: why records left the chain, over a window of failure time: one row per (stage, reason code) with the
-- count, its share of all dead letters in the window, how many distinct claimed devices sent them, and when the first
-- and last failed. A reason that jumps (e.g. UNKNOWN_SCHEMA_ID after a device rollout, CLOCK_SKEW at one site's
-- gateway) points at the component to fix. Reason codes are the fixed table of runtime/errors.ts.
-- The bytes of a dead letter are in raw_events (join on source_topic, source_partition, source_offset), behind
-- raw-plane access rights; this query never reads them.
-- Exactness: FINAL, one row per dead_letter_id even if its batch was retried.
-- @param pipeline  Pipeline name; empty for every pipeline.
-- @default pipeline
-- @param from  Start of the window on failed_at, inclusive (UTC).
-- @default from 1970-01-01 00:00:00
-- @param to  End of the window on failed_at, exclusive (UTC).
-- @default to 2100-01-01 00:00:00
-- @example vigil query run dead-letters-by-reason --param pipeline=vitals --param from=2026-03-10
SELECT
    stage,
    reason_code,
    count() AS dead_letters,
    round(dead_letters / sum(dead_letters) OVER (), 4) AS share,
    uniqExact(claimed_device_id) AS claimed_devices,
    min(failed_at) AS first_failed_at,
    max(failed_at) AS last_failed_at
FROM dead_letters FINAL
WHERE ({pipeline:String} = '' OR pipeline = {pipeline:String})
  AND failed_at >= {from:DateTime64(3, 'UTC')} AND failed_at < {to:DateTime64(3, 'UTC')}
GROUP BY stage, reason_code
ORDER BY dead_letters DESC, stage, reason_code
