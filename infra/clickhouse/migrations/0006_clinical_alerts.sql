-- 0006_clinical_alerts: the clinical alerts plane, written by the alerts pipeline (pipelines/alerts.ts: its output
-- declares these columns, and `npm run check` compares them with this table).
--
-- Append-only, like every plane: one row per transition of an alert (open, renotify, escalate, resolve, ack), never
-- an update. An alert's state is its latest transition (`vigil alerts list`: argMax by (observed_at, raised_at));
-- an acknowledgement or a manual escalation is a new row citing its alert-action record (action_id, principal).
--
-- Identity: record_id, deterministic from (alert_id, transition, triggering record), so a replayed batch yields the
-- same row. ReplacingMergeTree dedups on the whole ORDER BY, so every column in it is fixed for a record_id:
-- site_id and patient_ref (of the triggering record, the same for every transition of an alert) and alert_id.
-- ORDER BY (site_id, patient_ref, alert_id, record_id): the reads are "the alerts of a site" (a ward's list: a prefix
-- range) and "the alerts of a patient" (within its site a prefix range; patient_ref alone still prunes granules, as
-- a patient's rows are contiguous within each site), and an alert's transitions lie together. `vigil alerts ack`
-- looks an alert up by alert_id alone: a bloom filter skips the rest.
-- Partition: month of opened_at, the event time of the record that opened the alert, the same for all its
-- transitions (an alert stays in one partition, so its repeats merge). raised_at is the worker's clock: version
-- column only.
-- Holds PHI (patient pseudonyms and the evidence of their care): grant it like the clinical plane.
CREATE TABLE IF NOT EXISTS clinical_alerts
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
    INDEX idx_alert_id alert_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(raised_at)
PARTITION BY toYYYYMM(opened_at)
ORDER BY (site_id, patient_ref, alert_id, record_id)
SETTINGS non_replicated_deduplication_window = 100000;
