-- Raw validated events, one row per event_id (ReplacingMergeTree collapses re-deliveries).
CREATE TABLE IF NOT EXISTS {db}.transactions
(
    event_id             String,
    ts                   DateTime64(3, 'UTC'),
    customer_id          String,
    customer_type        LowCardinality(String),
    segment              LowCardinality(String),
    account_id           String,
    amount               Decimal(24, 6),
    currency             LowCardinality(String),
    direction            LowCardinality(String),
    txn_type             LowCardinality(String),
    channel              LowCardinality(String),
    counterparty_id      Nullable(String),
    counterparty_country LowCardinality(Nullable(String)),
    cross_border         Nullable(Bool),
    merchant_category    LowCardinality(Nullable(String)),
    device_id            Nullable(String),
    ip_country           LowCardinality(Nullable(String)),
    schema_version       UInt8,
    source_partition     UInt16,
    source_offset        UInt64,
    ingested_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, event_id)
TTL toDateTime(ts) + INTERVAL {raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.interactions
(
    event_id                 String,
    ts                       DateTime64(3, 'UTC'),
    customer_id              String,
    customer_type            LowCardinality(String),
    segment                  LowCardinality(String),
    channel                  LowCardinality(String),
    interaction_type         LowCardinality(String),
    wait_seconds             Float64,
    handle_seconds           Float64,
    resolved                 Bool,
    first_contact_resolution Nullable(Bool),
    transfers                Nullable(UInt16),
    agent_id                 Nullable(String),
    sentiment                Nullable(Float32),
    complaint_id             Nullable(String),
    ref_event_id             Nullable(String),
    schema_version           UInt8,
    source_partition         UInt16,
    source_offset            UInt64,
    ingested_at              DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, event_id)
TTL toDateTime(ts) + INTERVAL {raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.feedback
(
    event_id         String,
    ts               DateTime64(3, 'UTC'),
    customer_id      String,
    kind             LowCardinality(String),
    ref_event_id     String,
    value            Nullable(Float32),
    source_partition UInt16,
    source_offset    UInt64,
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, event_id)
TTL toDateTime(ts) + INTERVAL {raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Inputs that failed validation; id = sha1(topic/partition/offset).
CREATE TABLE IF NOT EXISTS {db}.deadletters
(
    id               String,
    ingested_at      DateTime64(3, 'UTC'),
    source_topic     LowCardinality(String),
    source_partition UInt16,
    source_offset    UInt64,
    error_type       LowCardinality(String),
    error            String,
    raw_size         UInt32,
    raw_b64          String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (source_topic, id)
TTL toDateTime(ingested_at) + INTERVAL {raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;
