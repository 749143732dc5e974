-- 0007_gateway: what the device ingestion gateway (issue 10) adds to the store: the evidence a raw record carries, so a
-- device's signature can be re-verified years later from the raw plane alone, and every refusal of the gateway.
-- Same conventions as 0001_planes.sql (immutable ORDER BY = identity, idempotent statements, dedup window).

-- The raw plane keeps the gateway's evidence beside the record's bytes: the device's JWS exactly as received
-- (signed_event), the gateway that accepted it, the certificate it saw (device_cert_fingerprint: which certificate,
-- and so which public key, in the identity log) and the key id the JWS named, and integrity_hash (sha256:<hex> of
-- signed_event). The bytes themselves (the Avro frame) hold the same, but reading them needs the registry's schema;
-- these columns need nothing but SQL and the device's certificate. NULL for a record that did not decode, or did
-- not come through a gateway. The sink fills them from the decoded envelope (adapters/clickhouse/tables.ts
-- rawEventRow). signed_event is not PHI-free (its payload is the device's envelope): it is raw-plane data, with
-- raw-plane access rights, and has no TTL (it is the evidence; the 730-day TTL of `raw` applies to the frame bytes).
ALTER TABLE raw_events ADD COLUMN IF NOT EXISTS signed_event Nullable(String) CODEC(ZSTD(3));
ALTER TABLE raw_events ADD COLUMN IF NOT EXISTS gateway_id LowCardinality(Nullable(String));
ALTER TABLE raw_events ADD COLUMN IF NOT EXISTS device_cert_fingerprint Nullable(String);
ALTER TABLE raw_events ADD COLUMN IF NOT EXISTS key_id Nullable(String);
ALTER TABLE raw_events ADD COLUMN IF NOT EXISTS integrity_hash Nullable(String);

-- Gateway rejections: one row per signed event or whole request the gateway refused (schema gateway-rejection on the
-- vigil.ops.gateway-rejections topic), landed by `vigil sink pipelines/gateway-rejections.ts` (the definition whose
-- source lands here, pipelines/gateway-rejections.ts); an embedded run through the gateway lands the same rows.
-- Operational data: what the sender claimed (unverified, cut to storable values) and the sha256 of the refused bytes,
-- never a payload value.
--
-- Append-only: a refusal is a fact, never updated. Identity: rejection_id, a ULID minted once per refusal (its time
-- part is received_at), so a re-delivered record (the sink retried, the topic re-read) has the same key and the plain
-- MergeTree keeps it once only through the insert dedup token; ReplacingMergeTree with no version column collapses
-- any copy that slips past (rows of one id are identical). ORDER BY (reason, received_at, rejection_id): the queries
-- are "refusals by reason over a time window" and "what did this device / certificate try" (bloom filters below).
-- Partition: month of received_at (immutable, the gateway's clock).
CREATE TABLE IF NOT EXISTS gateway_rejections
(
    rejection_id            String,
    received_at             DateTime64(3, 'UTC'),
    gateway_id              LowCardinality(String),
    stage                   LowCardinality(String),
    reason                  LowCardinality(String),
    device_cert_fingerprint Nullable(String),
    claimed_device_id       Nullable(String),
    key_id                  Nullable(String),
    firmware_version        LowCardinality(Nullable(String)),
    sequence                Nullable(Int64),
    nonce                   Nullable(String),
    raw_sha256              String,
    raw_copy                Nullable(String),
    trace_id                String,
    detail                  Nullable(String),
    INDEX claimed_device_idx claimed_device_id TYPE bloom_filter GRANULARITY 4,
    INDEX fingerprint_idx device_cert_fingerprint TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (reason, received_at, rejection_id)
SETTINGS non_replicated_deduplication_window = 100000;
