-- The third pipeline's one table (test/third-pipeline): converted readings, one row per reading.
CREATE TABLE IF NOT EXISTS third_converted
(
    reading_id       String,
    device_id        String,
    celsius          Float64,
    fahrenheit       Float64,
    source_topic     LowCardinality(String),
    source_partition Int32,
    source_offset    Int64
)
ENGINE = ReplacingMergeTree
ORDER BY reading_id;
