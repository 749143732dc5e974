-- 0001_planes: the three data planes (raw, normalised, clinical).
--
-- Applied by adapters/clickhouse/migrations.ts, in file order, to the embedded store (chdb) and to a current
-- ClickHouse server alike. Never edit this file once it has been applied anywhere: the runner records its sha256
-- and refuses to start against a store whose history disagrees. Change the schema with a new NNNN_*.sql file.
-- ClickHouse DDL is not transactional, so every statement is idempotent (IF NOT EXISTS): a migration that failed
-- half-way is simply applied again.
--
-- Conventions shared by every table (see infra/clickhouse/README.md for the why):
-- * Engine ReplacingMergeTree: the ORDER BY is the identity of a row. A retried batch writes rows with the same
--   key, and merges (or FINAL / argMax at read time) keep one. The first line of defence is the insert
--   deduplication token of the deterministic batch contract; non_replicated_deduplication_window turns that on for
--   plain (non-replicated) MergeTree tables, i.e. chdb and a single server. It counts insert blocks per table: a
--   micro-batch writes one block per table and month, so 100k blocks cover hours of retries at the rates we run.
-- * Every column in an ORDER BY is immutable for the row's identity (never a wall-clock time of processing), or a
--   retry would create a second row instead of replacing the first.
-- * Partitions are months of the event's own time, so a time-window query prunes whole months and TTLs drop whole
--   parts. Timestamps are DateTime64(3, 'UTC'); strings with few distinct values are LowCardinality.
-- * Column types follow the Avro types of the records (int -> Int32, long -> Int64, double -> Float64), so every
--   record the schema accepts fits its row; bounds are the validate operator's job, not the table's.

-- Raw plane: every record the worker consumed, exactly as it arrived (valid or not). The chain of custody starts
-- here: every normalised event, inference, dead letter and duplicate names its raw record by raw_sha256 and
-- (source_topic, source_partition, source_offset).
--
-- Identity: the log position. A record's position never changes, so a re-read after a crash replaces, never adds.
-- ORDER BY is that position rather than (firmware, site, device, time): a raw record may be garbage with no known
-- firmware or site, and the raw plane is read by position (investigations, replays), not by cohort.
-- Partition: month of consumed_at, the only time every raw record has. consumed_at is wall-clock, so a batch retried
-- across a month boundary can land in the next month: the dedup token then misses it, background merges (which stay
-- inside a partition) keep both copies, and FINAL (which merges across partitions) still returns one.
--
-- The bytes travel as base64 in the EPHEMERAL columns raw_b64 / headers_b64 (JSON cannot carry arbitrary bytes) and
-- are stored decoded. Inserts must therefore name their columns (adapters/clickhouse/tables.ts does).
--
-- Retention: the raw bytes are PHI-bearing, so the `raw` column alone expires after 730 days (column TTL: the
-- column is reset to '' and the row, with its hash, position and headers, stays as the custody record). Change it
-- per deployment with:
--   ALTER TABLE raw_events MODIFY COLUMN raw String DEFAULT base64Decode(raw_b64) CODEC(ZSTD(3))
--     TTL toDateTime(consumed_at) + INTERVAL <n> DAY
-- (or REMOVE TTL to keep bytes for ever). Nothing else in any table expires by default.
CREATE TABLE IF NOT EXISTS raw_events
(
    source_topic     LowCardinality(String),
    source_partition Int32,
    source_offset    Int64,
    consumed_at      DateTime64(3, 'UTC'),
    raw_sha256       String,
    raw_b64          String EPHEMERAL,
    raw              String DEFAULT base64Decode(raw_b64) CODEC(ZSTD(3))
                         TTL toDateTime(consumed_at) + INTERVAL 730 DAY,
    raw_size         UInt32,
    headers_b64      Array(Tuple(key String, value_b64 Nullable(String))) EPHEMERAL,
    headers          Array(Tuple(key String, value Nullable(String)))
                         DEFAULT arrayMap(h -> (h.1, if(isNull(h.2), NULL, base64Decode(assumeNotNull(h.2)))), headers_b64)
                         CODEC(ZSTD(3)),
    record_key       Nullable(String),
    event_id         Nullable(String),
    device_id        Nullable(String)
)
-- Version column consumed_at: the latest consumption of a position wins (both hold the same bytes anyway).
ENGINE = ReplacingMergeTree(consumed_at)
PARTITION BY toYYYYMM(consumed_at)
ORDER BY (source_topic, source_partition, source_offset)
SETTINGS non_replicated_deduplication_window = 100000;

-- Normalised plane: every event that completed the chain (decoded, validated, de-duplicated), flattened for
-- surveillance queries: envelope and provenance fields, one set of columns per payload type (the columns of the other
-- types are NULL), lineage back to the raw record, and the transformation that produced it.
--
-- Identity and ORDER BY: (firmware_version, site_id, device_id, observed_at, event_id). ReplacingMergeTree dedups on
-- the whole ORDER BY, not on event_id alone, so this is only right because every one of these columns is part of the
-- immutable envelope of the event: the same event_id always arrives with the same firmware, site, device and
-- observation time (a record that reuses an event_id with different content is a replay, and the dedupe operator
-- stops it before it gets here). Leading with firmware and site makes the cohort queries surveillance runs
-- (firmware x site x time window) read contiguous ranges; device then time gives per-device timelines for free.
-- Version column processed_at: if a batch is deliberately re-processed (a new transformation_version), the newest
-- row wins.
-- Partition: month of observed_at (immutable, so a retried batch always lands in the same partition).
CREATE TABLE IF NOT EXISTS normalised_events
(
    -- envelope
    event_id               String,
    device_id              String,
    patient_ref            String,
    site_id                LowCardinality(String),
    event_type             LowCardinality(String),
    observed_at            DateTime64(3, 'UTC'),
    received_at            DateTime64(3, 'UTC'),
    firmware_version       LowCardinality(String),
    model_version          LowCardinality(Nullable(String)),
    schema_version         LowCardinality(String),
    integrity_hash         String,
    consent_context        LowCardinality(String),
    processing_policy      LowCardinality(String),
    -- provenance
    sequence               Nullable(Int64),
    nonce                  Nullable(String),
    device_cert_fingerprint Nullable(String),
    key_id                 Nullable(String),
    device_batch           LowCardinality(Nullable(String)),
    patient_subgroup       LowCardinality(Nullable(String)),
    parent_event_ids       Array(String),
    provenance_flags       Array(LowCardinality(String)),
    -- payload: vital_signs
    respiratory_rate       Nullable(Float64),
    spo2                   Nullable(Int32),
    on_oxygen              Nullable(Bool),
    systolic_bp            Nullable(Int32),
    pulse             Nullable(Int32),
    consciousness          LowCardinality(Nullable(String)),
    temperature_c          Nullable(Float64),
    -- payload: device_status
    device_state           LowCardinality(Nullable(String)),
    battery_pct            Nullable(Int32),
    signal_dbm             Nullable(Int32),
    calibration_state      LowCardinality(Nullable(String)),
    last_calibrated_at     Nullable(DateTime64(3, 'UTC')),
    -- payload: alarm
    alarm_code             LowCardinality(Nullable(String)),
    alarm_category         LowCardinality(Nullable(String)),
    alarm_priority         LowCardinality(Nullable(String)),
    alarm_active           Nullable(Bool),
    -- payload: config_change
    config_parameter       LowCardinality(Nullable(String)),
    config_old_value       Nullable(String),
    config_new_value       Nullable(String),
    config_changed_by      LowCardinality(Nullable(String)),
    -- lineage
    source_topic           LowCardinality(String),
    source_partition       Int32,
    source_offset          Int64,
    raw_sha256             String,
    transformation_version LowCardinality(String),
    processed_at           DateTime64(3, 'UTC'),
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(processed_at)
PARTITION BY toYYYYMM(observed_at)
ORDER BY (firmware_version, site_id, device_id, observed_at, event_id)
SETTINGS non_replicated_deduplication_window = 100000;

-- Clinical plane: every model output, with what it takes to reproduce it (artifact sha256, runtime, config hash,
-- rollout, the exact input features and their hash).
--
-- Identity: inference_id, which is deterministic from (event_id, model name, model version). The ORDER BY is
-- (model_name, model_version, firmware_version, site_id, device_id, observed_at, inference_id): every column is fixed
-- by the inference_id (the model and version are part of it, the rest comes from the scored event's immutable
-- envelope), so it dedups exactly like inference_id alone while letting "model version x firmware x site x window"
-- queries read contiguous ranges. Rollout and scored_at are not in the key: a retry routed differently after a
-- rollout change replaces the row (newest scored_at wins) rather than adding one.
-- Shadow outputs are stored here too (rollout = 'shadow'); queries that describe clinical behaviour filter on it.
-- No TTL: clinical evidence is never dropped by the store.
CREATE TABLE IF NOT EXISTS inferences
(
    inference_id           String,
    event_id               String,
    parent_event_ids       Array(String),
    device_id              String,
    patient_ref            String,
    site_id                LowCardinality(String),
    firmware_version       LowCardinality(String),
    device_batch           LowCardinality(Nullable(String)),
    patient_subgroup       LowCardinality(Nullable(String)),
    observed_at            DateTime64(3, 'UTC'),
    scored_at              DateTime64(3, 'UTC'),
    model_name             LowCardinality(String),
    model_version          LowCardinality(String),
    model_artifact_sha256  LowCardinality(String),
    runtime                LowCardinality(String),
    runtime_version        LowCardinality(String),
    config_hash            LowCardinality(String),
    rollout                LowCardinality(String),
    feature_names          Array(LowCardinality(String)),
    features               Array(Float64),
    feature_vector_hash    String,
    score                  Float64,
    subscores              Array(Float64),
    risk_band              LowCardinality(String),
    transformation_version LowCardinality(String),
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(observed_at)
ORDER BY (model_name, model_version, firmware_version, site_id, device_id, observed_at, inference_id)
SETTINGS non_replicated_deduplication_window = 100000;
