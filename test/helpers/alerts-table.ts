/**
 * The `clinical_alerts` table as the alerts pipeline needs it (one row per alert transition, never updated;
 * ReplacingMergeTree by record id, as every plane). Used by tests until the table is declared next to its output and
 * migrated (see the alerts pipeline's report): the proposed migration.
 */
export const ALERT_TABLE_DDL = `
CREATE TABLE IF NOT EXISTS clinical_alerts (
  record_id String,
  alert_id String,
  patient_ref String,
  site_id LowCardinality(String),
  device_id String,
  rule_id LowCardinality(String),
  rule_version LowCardinality(String),
  kind Enum8('physiological' = 1, 'technical' = 2, 'device_alarm' = 3),
  band Enum8('low' = 1, 'low_medium' = 2, 'medium' = 3, 'high' = 4),
  transition Enum8('open' = 1, 'renotify' = 2, 'escalate' = 3, 'resolve' = 4, 'ack' = 5),
  opened_at DateTime64(3, 'UTC'),
  observed_at DateTime64(3, 'UTC'),
  received_at DateTime64(3, 'UTC'),
  raised_at DateTime64(3, 'UTC'),
  suppressed UInt32,
  inference_ids Array(String),
  event_ids Array(String),
  model_name Nullable(String),
  model_version Nullable(String),
  rollout Nullable(String),
  score Nullable(Float64),
  parameter Nullable(String),
  alarm_code Nullable(String),
  action_id Nullable(String),
  principal Nullable(String),
  transformation_version String
) ENGINE = ReplacingMergeTree
ORDER BY (alert_id, record_id)`;
