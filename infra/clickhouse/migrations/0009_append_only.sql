-- 0009_append_only: the normalised and clinical planes become append-only evidence (issue 11).
--
-- The rule: no row of these planes is ever replaced by a row with different content. ReplacingMergeTree collapses
-- rows whose ORDER BY is equal, so the ORDER BY must name everything that can make two rows of one event differ,
-- except the processing time (the version column: a retried batch carries a newer one):
--   normalised_events  + transformation_version (the derivation) and the lineage (source position, raw_sha256): a
--                      re-derivation under a new pipeline version, or a second raw copy of an event that the dedupe
--                      state no longer knew, is a new row beside the old one.
--   inferences         + rollout, transformation_version, config_hash (the derivation: routing, the scoring step
--                      `<pipeline name>/score/<model>@<version>`, model manifest and operator options) and
--                      feature_vector_hash (the exact model input): a re-scoring after a rollout change, with another
--                      manifest or options, or on another input is a new row beside the old one. The same model on
--                      the same input with the same options is the same inference, whichever pipeline version ran it.
-- A retried insert stays idempotent: the same derivation of the same record has the same key and the same content
-- (the chain is deterministic under the batch contract; only processed_at / scored_at differ), so the insert dedup
-- token drops the retried block and, failing that, merges and FINAL keep one row: the first copy. The replacing
-- version is first_copy_wins (MATERIALIZED, minus the processing time in ms), not the processing time itself as in
-- 0001, so a late copy never moves the stored processed_at / scored_at: the row first written, the one anybody could
-- have read and acted on, is the one that stays, as it was. (A derivation that is re-run unchanged, e.g. the same
-- model, options and input under a new pipeline version, is such a copy: the inference stays the first one.)
-- The primary key (the sparse index) stays the old key: the added columns only order rows inside it, so cohort
-- ranges read exactly as before. Which derivation is current is chosen by the reader, explicitly: the views
-- normalised_events_current and inferences_current below (the saved queries read through them).
--
-- How: ClickHouse cannot put existing columns into a table's ORDER BY, so each table is rebuilt in one statement,
-- CREATE OR REPLACE TABLE t (...) AS SELECT * FROM t: the new table is built and filled beside the old one, then
-- replaces it atomically (readers see the old table or the new one, never a half). Idempotent: run again, it copies
-- the same rows into the same shape. No EXCHANGE (not idempotent) and no CLONE AS (24.10+, and it cannot change the
-- ORDER BY). The column lists are 0001's, in 0001's order: SELECT * is matched by position, so a column a later
-- migration added would make the statement fail (NUMBER_OF_COLUMNS_DOESNT_MATCH) rather than be dropped; add it here.
-- Apply it with the writers stopped (the embedded runner and `vigil sink` migrate at start-up, before writing): rows
-- inserted while a table is being rebuilt would be lost. The rebuilt tables start with an empty insert-dedup history,
-- so a batch retried across the migration is inserted again and collapses by key instead.
--
-- The raw plane keeps its identity, the log position (0001). Its remaining gap, two different records at one position
-- (a recreated raw topic; two different --input files appended into one embedded store), needs raw_sha256 in its
-- ORDER BY, and its rebuild must keep each deployment's column TTL on `raw`, which only a structure copy
-- (CREATE TABLE ... AS raw_events + INSERT ... SELECT) does: see infra/clickhouse/README.md, "Append-only evidence".

-- Normalised plane: identity = (event envelope, derivation, lineage).
CREATE OR REPLACE TABLE normalised_events
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
    -- The replacing version: the earliest processing wins, so the copy written first is never replaced (see above).
    first_copy_wins        Int64 MATERIALIZED -toUnixTimestamp64Milli(processed_at),
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(first_copy_wins)
PARTITION BY toYYYYMM(observed_at)
PRIMARY KEY (firmware_version, site_id, device_id, observed_at, event_id)
ORDER BY (firmware_version, site_id, device_id, observed_at, event_id,
          transformation_version, source_topic, source_partition, source_offset, raw_sha256)
SETTINGS non_replicated_deduplication_window = 100000
AS SELECT * FROM normalised_events;

-- Clinical plane: identity = (inference_id = event x model x model version, derivation, model input).
CREATE OR REPLACE TABLE inferences
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
    -- The replacing version: the earliest scoring wins (see above).
    first_copy_wins        Int64 MATERIALIZED -toUnixTimestamp64Milli(scored_at),
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(first_copy_wins)
PARTITION BY toYYYYMM(observed_at)
PRIMARY KEY (model_name, model_version, firmware_version, site_id, device_id, observed_at, inference_id)
ORDER BY (model_name, model_version, firmware_version, site_id, device_id, observed_at, inference_id,
          rollout, transformation_version, config_hash, feature_vector_hash)
SETTINGS non_replicated_deduplication_window = 100000
AS SELECT * FROM inferences;

-- The order of versions inside a transformation_version ("vitals@10/validate/dedupe" after "vitals@9/..."): its
-- numbers, compared as numbers, left to right.
CREATE OR REPLACE FUNCTION vigil_version_key AS (v) -> arrayMap(x -> toUInt64OrZero(x), extractAll(v, '[0-9]+'));

-- The current derivation of each event: the highest transformation version (numbers compared as numbers; the full
-- string breaks ties), and among copies of one event from several raw records (which dedupe normally stops) the first
-- position. Nothing in the choice is a processing time, so it never depends on when or in what order rows were
-- written. Every older derivation stays in normalised_events, as evidence of what was there when someone acted on it.
-- A pipeline rollback is a new version (the old behaviour under a higher number): re-running an old version only
-- repeats rows that already exist.
-- Filter it as you would normalised_events: event_id, observed_at, firmware, site and device are the same in every
-- derivation of an event (the LIMIT BY columns), so a filter on them is pushed below the choice and prunes partitions
-- and the primary key as before.
CREATE OR REPLACE VIEW normalised_events_current AS
SELECT *
FROM normalised_events
ORDER BY event_id, vigil_version_key(transformation_version) DESC, transformation_version DESC, source_topic,
         source_partition, source_offset
LIMIT 1 BY firmware_version, site_id, device_id, observed_at, event_id;

-- The current derivation of each inference (one per inference_id: event x model x model version): the live
-- rollout's when the model version scored the event live (then canary, then shadow), and among those the highest
-- transformation version, then the latest scoring (a new model manifest or operator options under the same pipeline
-- version). A shadow output whose version never scored the event live stays here as shadow: comparisons of rollouts
-- still filter on rollout. Filtered like inferences, through the LIMIT BY columns, as above.
CREATE OR REPLACE VIEW inferences_current AS
SELECT *
FROM inferences
ORDER BY inference_id, indexOf(['shadow', 'canary', 'live'], rollout) DESC,
         vigil_version_key(transformation_version) DESC, transformation_version DESC, scored_at DESC, config_hash,
         feature_vector_hash
LIMIT 1 BY model_name, model_version, firmware_version, site_id, device_id, observed_at, inference_id;
