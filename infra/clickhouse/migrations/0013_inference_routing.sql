-- 0013_inference_routing: every inference records the routing decision that made it (issue 12, inference-v2).
--
-- Several versions of a model now score the same event (live or canary, plus shadows), routed live by the model
-- registry (the model-rollouts control log). Each inference row says how it was routed:
--   rollout_id      the change_id of the rollout record that routed the version; NULL when the version ran as the
--                   pipeline's default (no route in the registry), and in rows written before routing existed.
--   routing_source  'registry' or 'pipeline'. Rows written before: 'pipeline' (they ran by the pipeline's config).
--   cohort_bucket   the patient's canary bucket 0..9999 for the model (sha256 of `<model>|<patient_ref>`); NULL before.
--   in_canary       whether the event was in the canary's cohort and share. Rows written before: false (no canary).
--   clinical        whether the output is clinical (may alert): live outside a canary cohort, canary inside it,
--                   never shadow. Rows written before: every rollout but shadow, as the alerts read them then.
--
-- Identity (the append-only rule of 0009: the ORDER BY names everything that can make two rows of one inference
-- differ, except the processing time). clinical follows from rollout (already in the key), routing_source from
-- whether rollout_id is NULL, cohort_bucket from the model and the patient; what is left is which rollout record
-- routed the version (a version rolled back and rolled out again in the same mode is routed by a new record) and,
-- for a shadow, whether the event was then in a canary's cohort. Both join the ORDER BY, so a re-scoring after such
-- a routing change is a new row beside the old one, and a retried batch (same routing) still collapses. ClickHouse
-- extends a sorting key only with columns added in the same ALTER and without a default: rollout_id (as
-- ifNull(rollout_id, ''): a key needs no NULL) and in_canary (false for rows written before, which is right: no
-- canary ran). The primary key (the sparse index) is unchanged, so cohort ranges read as before.
-- Idempotent: ADD COLUMN IF NOT EXISTS, and the same MODIFY ORDER BY again is a no-op.
ALTER TABLE inferences ADD COLUMN IF NOT EXISTS rollout_id Nullable(String),
    ADD COLUMN IF NOT EXISTS routing_source LowCardinality(String) DEFAULT 'pipeline',
    ADD COLUMN IF NOT EXISTS cohort_bucket Nullable(UInt16),
    ADD COLUMN IF NOT EXISTS in_canary Bool,
    ADD COLUMN IF NOT EXISTS clinical Bool DEFAULT rollout != 'shadow',
    MODIFY ORDER BY (model_name, model_version, firmware_version, site_id, device_id, observed_at, inference_id,
                     rollout, transformation_version, config_hash, feature_vector_hash, ifNull(rollout_id, ''),
                     in_canary);

-- inferences_current (0011) is a SELECT * view: recreated so it shows the new columns. Same choice as 0011 (the live
-- rollout's row, then the highest transformation version, then the latest scoring), the routing record breaking the
-- remaining ties so the choice never depends on the order rows were written.
CREATE OR REPLACE VIEW inferences_current AS
SELECT *
FROM inferences
ORDER BY model_name, model_version, firmware_version, site_id, device_id, observed_at, inference_id,
         indexOf(['shadow', 'canary', 'live'], rollout) DESC, vigil_version_key(transformation_version) DESC,
         transformation_version DESC, scored_at DESC, config_hash, feature_vector_hash, ifNull(rollout_id, ''),
         in_canary
LIMIT 1 BY model_name, model_version, firmware_version, site_id, device_id, observed_at, inference_id;
