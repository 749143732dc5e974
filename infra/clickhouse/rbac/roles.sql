-- Vigil's access rules, enforced by a production ClickHouse server itself (infra/clickhouse/rbac/README.md).
-- The same rules as access/policy.ts, which is what the embedded store has (chdb has no access storage):
--   vigil_analyst    pseudonymised surveillance tables; never raw bytes (raw_events.raw/headers/signed_event,
--                    quarantine.record, gateway_rejections.raw_copy)
--   vigil_clinician  the clinical plane (alerts, normalised events, inferences) of its sites
--   vigil_auditor    the audit log, and the evidence a trace reads (raw plane metadata without the bytes)
--   vigil_operator   operational tables: dead letters, duplicates, quarantine and gateway rejections without their
--                    bytes, sink batches
-- Sites: one role per site, `vigil_site_<site_id>`, and `vigil_all_sites`. A user holds a Vigil role and one or more
-- site roles (mapped from the identity provider's groups). Every table with a site_id column has a row policy that
-- keeps only the rows of the user's site roles; tables whose rows belong to sites but carry no site column (raw
-- events, dead letters, quarantine, gateway rejections) are granted only with vigil_all_sites in mind (access/policy.ts refuses them to
-- a principal of some sites; here, grant those Vigil roles to site-scoped users only with care, or not at all).
--
-- Apply with the database Vigil's migrations created as the current database (table names are unqualified):
--   clickhouse-client --database vigil --multiquery < infra/clickhouse/rbac/roles.sql
-- Idempotent: IF NOT EXISTS everywhere; GRANT is additive. To withdraw a grant, REVOKE it by hand (reviewed).

CREATE ROLE IF NOT EXISTS vigil_analyst;
CREATE ROLE IF NOT EXISTS vigil_clinician;
CREATE ROLE IF NOT EXISTS vigil_auditor;
CREATE ROLE IF NOT EXISTS vigil_operator;
-- Sees every site's rows (platform operators, auditors, the pipeline's own service users).
CREATE ROLE IF NOT EXISTS vigil_all_sites;

-- analyst: surveillance planes. The views (*_current: the current derivation of each event or inference, 0009;
-- drift_reports over drift_histograms and drift_reference_bins) run with the invoker's rights: their tables are
-- granted too, and the row policies on those tables filter what the views return.
GRANT SELECT ON normalised_events TO vigil_analyst;
GRANT SELECT ON normalised_events_current TO vigil_analyst;
GRANT SELECT ON inferences TO vigil_analyst;
GRANT SELECT ON inferences_current TO vigil_analyst;
GRANT SELECT ON duplicates TO vigil_analyst;
GRANT SELECT ON drift_histograms TO vigil_analyst;
GRANT SELECT ON drift_reports TO vigil_analyst;
GRANT SELECT ON drift_reference_bins TO vigil_analyst;
GRANT SELECT ON model_calibration TO vigil_analyst;

-- clinician: the clinical plane.
GRANT SELECT ON clinical_alerts TO vigil_clinician;
GRANT SELECT ON clinical_alerts_current TO vigil_clinician;
GRANT SELECT ON normalised_events TO vigil_clinician;
GRANT SELECT ON normalised_events_current TO vigil_clinician;
GRANT SELECT ON inferences TO vigil_clinician;
GRANT SELECT ON inferences_current TO vigil_clinician;
GRANT SELECT ON outcomes TO vigil_clinician;

-- auditor: the audit log, and what `vigil trace` reads. raw_events without the bytes: a trace re-computes the raw
-- hash through Vigil (which reads the bytes as a service user and shows only the verdict), never by hand.
GRANT SELECT ON audit_entries TO vigil_auditor;
GRANT SELECT ON audit_checkpoints TO vigil_auditor;
GRANT SELECT(source_topic, source_partition, source_offset, consumed_at, raw_sha256, raw_size, record_key, event_id, device_id, gateway_id, device_cert_fingerprint, key_id, integrity_hash) ON raw_events TO vigil_auditor;
GRANT SELECT ON sink_batches TO vigil_auditor;
GRANT SELECT ON dead_letters TO vigil_auditor;
GRANT SELECT ON normalised_events TO vigil_auditor;
GRANT SELECT ON normalised_events_current TO vigil_auditor;
GRANT SELECT ON inferences TO vigil_auditor;
GRANT SELECT ON inferences_current TO vigil_auditor;
GRANT SELECT ON clinical_alerts TO vigil_auditor;
GRANT SELECT ON clinical_alerts_current TO vigil_auditor;
GRANT SELECT(rejection_id, received_at, gateway_id, stage, reason, device_cert_fingerprint, claimed_device_id, key_id, firmware_version, sequence, nonce, raw_sha256, trace_id, detail) ON gateway_rejections TO vigil_auditor;
GRANT SELECT ON outcomes TO vigil_auditor;
GRANT SELECT ON model_calibration TO vigil_auditor;

-- operator: operational data, no clinical values and no bytes.
GRANT SELECT ON dead_letters TO vigil_operator;
GRANT SELECT ON duplicates TO vigil_operator;
GRANT SELECT(pipeline, target_table, source_topic, source_partition, source_offset, row_ordinal, reason_code, reason_detail, clickhouse_code, clickhouse_name, record_sha256, record_size, batch_token, quarantined_at) ON quarantine TO vigil_operator;
GRANT SELECT(rejection_id, received_at, gateway_id, stage, reason, device_cert_fingerprint, claimed_device_id, key_id, firmware_version, sequence, nonce, raw_sha256, trace_id, detail) ON gateway_rejections TO vigil_operator;
GRANT SELECT ON sink_batches TO vigil_operator;

-- Row policies by site. Permissive, TO ALL: once a table has a row policy, a user it gives no rows to sees none, so
-- the pipeline's service users need vigil_all_sites too. enabledRoles() includes roles granted through other roles
-- (an IdP group mapped to a role that holds vigil_site_north counts).
CREATE ROW POLICY IF NOT EXISTS vigil_site ON normalised_events FOR SELECT USING has(enabledRoles(), 'vigil_all_sites') OR has(enabledRoles(), concat('vigil_site_', site_id)) TO ALL;
CREATE ROW POLICY IF NOT EXISTS vigil_site ON inferences FOR SELECT USING has(enabledRoles(), 'vigil_all_sites') OR has(enabledRoles(), concat('vigil_site_', site_id)) TO ALL;
CREATE ROW POLICY IF NOT EXISTS vigil_site ON duplicates FOR SELECT USING has(enabledRoles(), 'vigil_all_sites') OR has(enabledRoles(), concat('vigil_site_', site_id)) TO ALL;
CREATE ROW POLICY IF NOT EXISTS vigil_site ON drift_histograms FOR SELECT USING has(enabledRoles(), 'vigil_all_sites') OR has(enabledRoles(), concat('vigil_site_', site_id)) TO ALL;
CREATE ROW POLICY IF NOT EXISTS vigil_site ON outcomes FOR SELECT USING has(enabledRoles(), 'vigil_all_sites') OR has(enabledRoles(), concat('vigil_site_', site_id)) TO ALL;
CREATE ROW POLICY IF NOT EXISTS vigil_site ON clinical_alerts FOR SELECT USING has(enabledRoles(), 'vigil_all_sites') OR has(enabledRoles(), concat('vigil_site_', site_id)) TO ALL;
-- Rows of every site, no site column: only all-sites users read them (no rows for a user of some sites).
CREATE ROW POLICY IF NOT EXISTS vigil_site ON raw_events FOR SELECT USING has(enabledRoles(), 'vigil_all_sites') TO ALL;
CREATE ROW POLICY IF NOT EXISTS vigil_site ON dead_letters FOR SELECT USING has(enabledRoles(), 'vigil_all_sites') TO ALL;
CREATE ROW POLICY IF NOT EXISTS vigil_site ON quarantine FOR SELECT USING has(enabledRoles(), 'vigil_all_sites') TO ALL;
CREATE ROW POLICY IF NOT EXISTS vigil_site ON gateway_rejections FOR SELECT USING has(enabledRoles(), 'vigil_all_sites') TO ALL;
