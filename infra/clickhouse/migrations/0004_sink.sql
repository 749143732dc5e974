-- 0004_sink: the distributed ClickHouse sink's batch intents (runtime/runners/clickhouse-sink.ts).
--
-- Before the sink inserts a batch (the records of one topic partition from first_offset to last_offset) it records
-- the range here. After a crash, the partition's next owner reads the ranges past the group's committed offset and
-- re-forms exactly those batches, so the retried inserts carry the same dedup tokens and ClickHouse drops them.
-- Rows are tiny and only the recent past matters: a TTL keeps the table small.
CREATE TABLE IF NOT EXISTS sink_batches
(
    pipeline     LowCardinality(String),
    topic        LowCardinality(String),
    partition    Int32,
    first_offset Int64,
    last_offset  Int64,
    recorded_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (pipeline, topic, partition, first_offset)
TTL toDateTime(recorded_at) + INTERVAL 7 DAY
SETTINGS non_replicated_deduplication_window = 100000;
