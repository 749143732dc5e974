-- 0012_append_only_raw_alerts: the raw plane and the clinical alerts become append-only evidence too (issue 11; 0009
-- did the normalised plane and the inferences, same rule, same reasons: read its header first).
--
-- Raw plane. Its identity was the log position alone (0001), which holds one record for ever on a Kafka topic, except
-- when a raw topic is deleted and recreated (offsets restart at 0) or two different --input files are appended into
-- one embedded store (each read as partition 0 from offset 0): the second record then replaced the first at merge.
-- Now ORDER BY (position, raw_sha256): two different records at one position are two rows; a re-read of one record
-- (same bytes, same hash) is the same key and collapses as before. The primary key stays the position (reads by
-- position are unchanged). The replacing version becomes first_copy_wins (minus consumed_at in ms, as in 0009): a
-- re-read never moves the stored consumed_at, the copy written first stays as it was.
-- How: the table is rebuilt with a copy of its own structure (CREATE TABLE ... AS raw_events), which keeps what a
-- deployment changed on it (the TTL of `raw`, 0001: an explicit column list as in 0009 would reset it), the gateway
-- columns (0007) and the event_id index (0010). ClickHouse cannot fill a structure copy and swap it in one statement
-- (CREATE ... AS <table> AS SELECT is not valid; CLONE AS needs 24.10), so it is copied out and back:
--   1. first_copy_wins is added to raw_events (so the copy has it),
--   2-3. raw_events_rebuild: raw_events' structure with the new key and version, filled from raw_events,
--   4-5. raw_events replaced by an empty copy of raw_events_rebuild's structure, filled back from it,
--   6. raw_events_rebuild dropped.
-- Re-running after a failure at any step is safe (the runner records the file only after its last statement and
-- re-applies it whole): the rebuild is dropped last, so it holds every row whenever raw_events is replaced (step 4
-- runs only after step 3 completed in the same run); every copy goes into a ReplacingMergeTree keyed by identity, so
-- rows copied twice by a repeated step 3 or 5 are identical and collapse (FINAL at once, merges later). Apply with
-- the writers stopped and ONE migrator (the embedded runner and `vigil sink` migrate at start-up, before writing:
-- start one sink first): between steps 4 and 5 raw_events is empty, and a second migrator's step 4 after the first
-- one's step 6 would empty it with the copy gone. Expect a copy of the raw plane twice over, in time and disk.
ALTER TABLE raw_events ADD COLUMN IF NOT EXISTS first_copy_wins Int64 MATERIALIZED -toUnixTimestamp64Milli(consumed_at);

CREATE TABLE IF NOT EXISTS raw_events_rebuild AS raw_events
ENGINE = ReplacingMergeTree(first_copy_wins)
PARTITION BY toYYYYMM(consumed_at)
PRIMARY KEY (source_topic, source_partition, source_offset)
ORDER BY (source_topic, source_partition, source_offset, raw_sha256)
SETTINGS non_replicated_deduplication_window = 100000;

-- SELECT * leaves out the EPHEMERAL and MATERIALIZED columns; the copy keeps the stored bytes (the DEFAULTs of `raw`
-- and `headers` apply only to inserts that do not name them) and recomputes first_copy_wins from consumed_at.
INSERT INTO raw_events_rebuild SELECT * FROM raw_events;

CREATE OR REPLACE TABLE raw_events AS raw_events_rebuild;

INSERT INTO raw_events SELECT * FROM raw_events_rebuild;

DROP TABLE IF EXISTS raw_events_rebuild;

-- Clinical alerts. Identity was record_id, deterministic from (alert, transition, triggering record) and from nothing
-- of the derivation, so the alerts pipeline re-run under a new rule version or pipeline version (the same inputs,
-- the same alert and record ids) replaced the transitions a clinician may have acted on. Now the ORDER BY adds the
-- derivation, (transformation_version, rule_version): a re-derivation is a new row beside the old one; a replayed
-- batch (the same derivation) is the same key and lands once. record_id keeps its meaning (the schema is unchanged):
-- one transition, identified within a derivation. The primary key stays 0006's ORDER BY. The replacing version is
-- first_copy_wins (minus raised_at in ms): a replay's later raised_at never replaces the stored one.
-- How: as 0009, one CREATE OR REPLACE ... AS SELECT * FROM itself, built beside and swapped in atomically, idempotent;
-- the columns are 0006's, in order (no later migration added one: SELECT * is matched by position).
CREATE OR REPLACE TABLE clinical_alerts
(
    record_id              String,
    alert_id               String,
    patient_ref            String,
    site_id                LowCardinality(String),
    device_id              String,
    rule_id                LowCardinality(String),
    rule_version           LowCardinality(String),
    kind                   Enum8('physiological' = 1, 'technical' = 2, 'device_alarm' = 3),
    band                   Enum8('low' = 1, 'low_medium' = 2, 'medium' = 3, 'high' = 4),
    transition             Enum8('open' = 1, 'renotify' = 2, 'escalate' = 3, 'resolve' = 4, 'ack' = 5),
    opened_at              DateTime64(3, 'UTC'),
    observed_at            DateTime64(3, 'UTC'),
    received_at            DateTime64(3, 'UTC'),
    raised_at              DateTime64(3, 'UTC'),
    suppressed             Int32,
    inference_ids          Array(String),
    event_ids              Array(String),
    model_name             LowCardinality(Nullable(String)),
    model_version          LowCardinality(Nullable(String)),
    rollout                LowCardinality(Nullable(String)),
    score                  Nullable(Float64),
    parameter              LowCardinality(Nullable(String)),
    alarm_code             LowCardinality(Nullable(String)),
    action_id              Nullable(String),
    principal              Nullable(String),
    transformation_version LowCardinality(String),
    -- The replacing version: the earliest raise wins, so the copy written first is never replaced.
    first_copy_wins        Int64 MATERIALIZED -toUnixTimestamp64Milli(raised_at),
    INDEX idx_alert_id alert_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(first_copy_wins)
PARTITION BY toYYYYMM(opened_at)
PRIMARY KEY (site_id, patient_ref, alert_id, record_id)
ORDER BY (site_id, patient_ref, alert_id, record_id, transformation_version, rule_version)
SETTINGS non_replicated_deduplication_window = 100000
AS SELECT * FROM clinical_alerts;

-- The current derivation of each alert: every transition of the alert's highest derivation (transformation version,
-- then rule version, numbers compared as numbers by vigil_version_key (0009), the strings breaking ties), one row per
-- transition (the first copy, as first_copy_wins keeps). Chosen per alert, not per transition: a transition the old
-- derivation raised and the new one did not (an escalation the new thresholds never reached) is not current, so an
-- alert's state (its latest transition) is the new derivation's. An alert only an old derivation raised stays
-- current (nothing re-derived it). No processing time enters the choice. Every derivation stays in clinical_alerts
-- (what `vigil trace` lists). Filter it like clinical_alerts: site_id, patient_ref and alert_id are the window's
-- partition, the same in every derivation of an alert, so those filters are pushed below the choice.
CREATE OR REPLACE VIEW clinical_alerts_current AS
SELECT * EXCEPT (derivation_rank, copy_rank)
FROM
(
    SELECT *,
           dense_rank() OVER (PARTITION BY site_id, patient_ref, alert_id
                              ORDER BY vigil_version_key(transformation_version) DESC, transformation_version DESC,
                                       vigil_version_key(rule_version) DESC, rule_version DESC) AS derivation_rank,
           row_number() OVER (PARTITION BY site_id, patient_ref, alert_id, record_id, transformation_version,
                                           rule_version
                              ORDER BY raised_at) AS copy_rank
    FROM clinical_alerts
)
WHERE derivation_rank = 1 AND copy_rank = 1;
