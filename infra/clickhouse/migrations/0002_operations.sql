-- 0002_operations: what left the chain and why: dead letters and duplicates. Operational data: it carries no
-- payload values (the bytes stay in the raw plane, referenced by raw_sha256 and log position).
-- Same conventions as 0001_planes.sql (immutable ORDER BY = identity, idempotent statements, dedup window).
-- 0003 is the drift tables (0003_drift.sql).

-- Dead letters: one row per record that left the chain on the dead-letter path, with the fixed reason code
-- (runtime/errors.ts), the stage and operator, and the source position of its raw record. The raw bytes and headers
-- are not copied here: join raw_events on (source_topic, source_partition, source_offset) to read them, with raw-plane
-- access rights.
--
-- Identity: dead_letter_id, deterministic from the source position and stage; pipeline and stage lead the ORDER BY
-- (both fixed for a given id) so "by stage" scans read contiguous ranges. failed_at is wall-clock, so it is the version
-- column and the partition month, never part of the key (see raw_events for the month-boundary caveat).
CREATE TABLE IF NOT EXISTS dead_letters
(
    dead_letter_id          String,
    failed_at               DateTime64(3, 'UTC'),
    pipeline                LowCardinality(String),
    stage                   LowCardinality(String),
    operator                LowCardinality(String),
    reason_code             LowCardinality(String),
    reason_detail           String,
    source_topic            LowCardinality(String),
    source_partition        Int32,
    source_offset           Int64,
    raw_sha256              String,
    raw_size                UInt32,
    event_id                Nullable(String),
    claimed_device_id       Nullable(String),
    firmware_version        LowCardinality(Nullable(String)),
    sequence                Nullable(Int64),
    nonce                   Nullable(String),
    key_id                  Nullable(String),
    device_cert_fingerprint Nullable(String),
    trace_id                String
)
ENGINE = ReplacingMergeTree(failed_at)
PARTITION BY toYYYYMM(failed_at)
ORDER BY (pipeline, stage, dead_letter_id)
SETTINGS non_replicated_deduplication_window = 100000;

-- Duplicates: every record dedupe recognised as a copy (an intentional drop, counted apart from failures).
-- kind 'event_id': the same event_id was seen before; 'sequence': the same (device, sequence) under another event id
-- (a replay). first_seen is the partition:offset of the first copy when the state still knew it.
--
-- Identity: the duplicate record's own log position, per pipeline (one consumed record is classified once per
-- pipeline). site_id leads the ORDER BY for the per-site duplicate-rate query; it is the record's own immutable
-- envelope field. detected_at is wall-clock: version column and partition month only.
CREATE TABLE IF NOT EXISTS duplicates
(
    pipeline         LowCardinality(String),
    event_id         String,
    device_id        String,
    site_id          LowCardinality(String),
    sequence         Nullable(Int64),
    kind             LowCardinality(String),
    first_seen       Nullable(String),
    source_topic     LowCardinality(String),
    source_partition Int32,
    source_offset    Int64,
    raw_sha256       String,
    detected_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(detected_at)
PARTITION BY toYYYYMM(detected_at)
ORDER BY (site_id, pipeline, source_topic, source_partition, source_offset)
SETTINGS non_replicated_deduplication_window = 100000;
