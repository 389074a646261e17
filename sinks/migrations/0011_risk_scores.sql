-- One row per scored transaction; a delayed label re-inserts the row with row_version 1.
CREATE TABLE IF NOT EXISTS {db}.risk_scores
(
    event_id      String,
    ts            DateTime64(3, 'UTC'),
    customer_id   String,
    segment       LowCardinality(String),
    customer_type LowCardinality(String),
    channel       LowCardinality(String),
    txn_type      LowCardinality(String),
    amount_cny    Float64,
    txn_count_1h  UInt32,
    txn_count_24h UInt32,
    score         Float32,
    anomaly       Float32,
    supervised    Nullable(Float32),
    reason_codes  Array(LowCardinality(String)),
    model_version LowCardinality(String),
    label         Nullable(UInt8),
    row_version   UInt8,
    ingested_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(row_version)
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, event_id)
TTL toDateTime(ts) + INTERVAL {raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;
