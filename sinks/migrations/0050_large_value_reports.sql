-- Transactions may say they were settled in cash (event contract field `cash`, optional).
ALTER TABLE {db}.transactions ADD COLUMN IF NOT EXISTS cash Nullable(Bool) AFTER schema_version;

-- The large-value report register (PBoC Order 2016 No. 3, Art. 5): one row per report, i.e.
-- per customer, CST day, criterion, direction and currency class. A later transaction of
-- the day rewrites the row with a higher `version` (its count of transactions); FINAL
-- gives the latest.
CREATE TABLE IF NOT EXISTS {db}.large_value_reports
(
    report_id         String,
    report_day        Date,
    customer_id       String,
    customer_type     LowCardinality(String),
    segment           LowCardinality(String),
    criterion         LowCardinality(String),
    article           LowCardinality(String),
    direction         LowCardinality(String),
    currency_class    LowCardinality(String),
    total             Decimal(24, 2),          -- RMB, or USD for currency_class 'fx'
    threshold         Decimal(24, 2),
    transaction_count UInt32,
    transaction_ids   Array(String),
    account_ids       Array(String),           -- tokenized (acct:...)
    first_seen        DateTime64(3, 'UTC'),
    last_seen         DateTime64(3, 'UTC'),
    report_due        Date,
    calendar          LowCardinality(String),  -- official | fallback
    alert_id          String,
    version           UInt32,
    ingested_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(report_day)
ORDER BY (report_day, report_id)
SETTINGS non_replicated_deduplication_window = 1000;
