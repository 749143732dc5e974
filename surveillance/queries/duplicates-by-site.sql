-- Duplicate rate by site
--
-- Purpose: how often each site's devices or gateways send the same event twice, over a window of processing time:
-- stored events, duplicates (by event_id: a resend; by sequence: a replay under a new event id), and the duplicate
-- rate = duplicates / (events + duplicates). A rising rate means retry storms, a gateway replaying its buffer, or a
-- device whose sequence counter was reset. Both sides are counted on pipeline time (normalised_events.processed_at,
-- duplicates.detected_at), so a window compares what the pipeline handled in that time.
-- Exactness: FINAL on both tables, and distinct counts: events by event_id, duplicates by the position of the
-- duplicate record. A retried batch stored twice, or a window in which a newer pipeline version derived the same
-- records again (every derivation, and every classification as a duplicate, stays in its table), counts each once.
-- @param from  Start of the window on processing time, inclusive (UTC).
-- @default from 1970-01-01 00:00:00
-- @param to  End of the window on processing time, exclusive (UTC).
-- @default to 2100-01-01 00:00:00
-- @example vigil query run duplicates-by-site --param from=2026-03-10 --param to=2026-03-11
WITH
    stored AS
    (
        SELECT site_id, uniqExact(event_id) AS events
        FROM normalised_events FINAL
        WHERE processed_at >= {from:DateTime64(3, 'UTC')} AND processed_at < {to:DateTime64(3, 'UTC')}
        GROUP BY site_id
    ),
    copies AS
    (
        SELECT
            site_id,
            uniqExact(source_topic, source_partition, source_offset) AS duplicates,
            uniqExactIf(source_topic, source_partition, source_offset, kind = 'event_id') AS by_event_id,
            uniqExactIf(source_topic, source_partition, source_offset, kind = 'sequence') AS by_sequence
        FROM duplicates FINAL
        WHERE detected_at >= {from:DateTime64(3, 'UTC')} AND detected_at < {to:DateTime64(3, 'UTC')}
        GROUP BY site_id
    )
SELECT
    if(stored.site_id != '', stored.site_id, copies.site_id) AS site,
    stored.events AS events,
    copies.duplicates AS duplicates,
    copies.by_event_id AS by_event_id,
    copies.by_sequence AS by_sequence,
    round(duplicates / (events + duplicates), 4) AS duplicate_rate
FROM stored
FULL OUTER JOIN copies ON stored.site_id = copies.site_id
ORDER BY site
SETTINGS join_use_nulls = 0
