-- Early warnings: one row per alert id, the highest `occurrences` (latest state) wins.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id        String,
    status          LowCardinality(String),
    rule_id         LowCardinality(String),
    domain          LowCardinality(String),
    severity        LowCardinality(String),
    severity_rank   UInt8,
    subject_type    LowCardinality(String),
    subject_id      String,
    owner           LowCardinality(String),
    route           LowCardinality(String),
    first_seen      DateTime64(3, 'UTC'),
    last_seen       DateTime64(3, 'UTC'),
    occurrences     UInt32,
    suppressed      UInt32,
    source_event_id Nullable(String),
    score           Nullable(Float64),
    reason_codes    Array(LowCardinality(String)),
    evidence        String,
    model_version   LowCardinality(Nullable(String)),
    report_due      Nullable(Date),
    context         String,
    customer_id     Nullable(String),
    segment         LowCardinality(Nullable(String)),
    channel         LowCardinality(Nullable(String)),
    created_at      DateTime64(3, 'UTC'),
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(occurrences)
PARTITION BY toYYYYMM(first_seen)
ORDER BY (first_seen, alert_id)
TTL toDateTime(first_seen) + INTERVAL {rollup_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;
