-- Online evaluation of the models as labels arrive (prequential, bounded window).
CREATE TABLE IF NOT EXISTS {db}.model_metrics
(
    metric_id     String,
    ts            DateTime64(3, 'UTC'),
    model         LowCardinality(String),
    metric        LowCardinality(String),
    value         Float64,
    n             UInt64,
    model_version LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (model, metric, ts, metric_id)
TTL toDateTime(ts) + INTERVAL {rollup_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;
