-- 0014_outcomes: clinical outcomes (issue 12), the ground truth model calibration joins to inferences.
--
-- One row per outcome record (schema outcome on vigil.clinical.outcomes, keyed by patient pseudonym): an escalation,
-- an ICU transfer or a clinician-confirmed deterioration of a patient, with when it happened (occurred_at) and when
-- its source recorded it (recorded_at). Landed by `vigil sink pipelines/outcomes.ts` (the definition whose source
-- lands here); an embedded run lands an outcomes file with the same row mapping (pipelines/outcomes.ts landOutcomes).
-- No name, no note: the pseudonym, the site, a kind from the fixed list, two times, the feed it came from.
--
-- Append-only, in 0009's sense: no row is ever replaced by a row with different content. Identity: outcome_id,
-- minted once by the source, so a re-delivered record (the sink retried, the topic re-read, the feed re-sent) has the
-- same id and the same content, and collapses: the insert dedup token drops a retried block, and failing that
-- ReplacingMergeTree keeps one row (rows of one key are identical, so which one does not matter). The ORDER BY names
-- every column, so a record that reuses an id with other content (a source's correction of the kind or the time) is
-- a new row beside the old one, never a silent rewrite; a reader that must choose picks explicitly (calibration reads
-- distinct (patient_ref, kind, occurred_at): a corrected time is then a second outcome, which only widens a label).
-- The primary key (the sparse index) is (kind, occurred_at, outcome_id): calibration reads "outcomes of these kinds
-- in this time range"; "this patient's outcomes" (a join, trace) uses the bloom filter on patient_ref.
-- Partition: month of occurred_at (immutable clinical time).
CREATE TABLE IF NOT EXISTS outcomes
(
    outcome_id   String,
    patient_ref  String,
    site_id      LowCardinality(String),
    kind         LowCardinality(String),
    occurred_at  DateTime64(3, 'UTC'),
    recorded_at  DateTime64(3, 'UTC'),
    source       LowCardinality(String),
    INDEX idx_patient_ref patient_ref TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
PRIMARY KEY (kind, occurred_at, outcome_id)
ORDER BY (kind, occurred_at, outcome_id, patient_ref, site_id, recorded_at, source)
SETTINGS non_replicated_deduplication_window = 100000;
