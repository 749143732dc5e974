-- 0005_quarantine: rows ClickHouse cannot store, set aside instead of failing their batch (the sink's last line of
-- defence, adapters/clickhouse/guard.ts and runtime/sinks/clickhouse.ts).
--
-- Before an insert, every row is checked against its table's column types (integer widths, NaN/Inf policy,
-- DateTime64 range, string size, Enum symbols, Nullable); a row that does not fit lands here instead
-- (reason_code ROW_TYPE_MISMATCH). When ClickHouse still refuses an insert for its content, the batch is split in
-- halves down to the refused rows, which land here too (ROW_REFUSED_BY_STORE, with the engine's code and name). The
-- rest of the batch lands normally, and the run or the sink's partition goes on.
--
-- One row per refused row: where its record was read (source_topic / source_partition / source_offset: the raw
-- record in the embedded mode, the consumed topic record in the distributed sink; for a row aggregated over a batch,
-- such as a drift histogram, the batch's first offset), the table it was meant for, why (a record code of the fixed
-- table in runtime/errors.ts; reason_detail names the column and the rule, never a value), and the record's exact
-- bytes (`record`, with their sha256 and size; left empty beyond 8 MiB) so it can be investigated or replayed. For a
-- row aggregated over a batch the bytes are the row as JSON. The bytes may be PHI: grant this table like the raw plane.
--
-- Identity: (pipeline, target_table, source position, row_ordinal), row_ordinal numbering the rows a batch sent to
-- target_table from one source position (0 but for several inferences of one event, or drift rows of one batch).
-- A batch re-formed after a crash quarantines the same rows with the same dedup token
-- (`<batch token>#quarantine:<target_table>`), so the retried block is dropped; failing that, ReplacingMergeTree
-- keeps one row per identity (read with FINAL). quarantined_at is wall-clock: version column only. Not partitioned:
-- the table stays small (a row here is an incident), and merges then collapse repeats across all of it.
CREATE TABLE IF NOT EXISTS quarantine
(
    pipeline         LowCardinality(String),
    target_table     LowCardinality(String),
    source_topic     LowCardinality(String),
    source_partition Int32,
    source_offset    Int64,
    row_ordinal      UInt32,
    reason_code      LowCardinality(String),
    reason_detail    String,
    clickhouse_code  Nullable(Int32),
    clickhouse_name  LowCardinality(Nullable(String)),
    record_sha256    String,
    record_size      UInt64,
    record_b64       String EPHEMERAL,
    record           String DEFAULT base64Decode(record_b64) CODEC(ZSTD(3)),
    batch_token      String,
    quarantined_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(quarantined_at)
ORDER BY (pipeline, target_table, source_topic, source_partition, source_offset, row_ordinal)
SETTINGS non_replicated_deduplication_window = 100000;
