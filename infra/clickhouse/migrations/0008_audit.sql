-- 0008_audit: the audit log in ClickHouse (audit/clickhouse.ts lands it from the audit topic or file store;
-- docs/reference/audit-log.md). The Kafka topic is the log of record; these tables make it queryable ("who read what,
-- when") and are a second copy `vigil audit verify --clickhouse-dir` can rebuild the tree from.
--
-- Append-only: plain MergeTree, never Replacing, never updated. A landing batch carries an insert deduplication token
-- derived from its entries (indexes and leaf hashes), so a retried batch is dropped by the block dedup window; any
-- other second copy of an entry stays visible and `verify` names it (an index repeated).
-- entry_json is the entry's canonical JSON: the exact bytes hashed into the tree (leaf = SHA-256(0x00 || entry_json)).
-- No PHI: targets of people and devices, and what was read or changed, are keyed digests (audit/entry.ts).
CREATE TABLE IF NOT EXISTS audit_entries
(
    entry_index    UInt64,
    at             DateTime64(3, 'UTC'),
    actor          String,
    role           LowCardinality(String),
    action         LowCardinality(String),
    target         String,
    purpose        LowCardinality(String),
    details_sha256 Nullable(String),
    read_sha256    Nullable(String),
    hash_key       LowCardinality(Nullable(String)),
    prev           Nullable(String),
    leaf_hash      String,
    entry_json     String CODEC(ZSTD(3)),
    landed_at      DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_actor actor TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_target target TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY entry_index
SETTINGS non_replicated_deduplication_window = 100000;

-- One row per signed checkpoint, with its signed note as stored (verify checks the signature from the note).
CREATE TABLE IF NOT EXISTS audit_checkpoints
(
    tree_size UInt64,
    root_hash String,
    origin    LowCardinality(String),
    signed_at Nullable(DateTime64(3, 'UTC')),
    note      String,
    landed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY tree_size
SETTINGS non_replicated_deduplication_window = 100000;
