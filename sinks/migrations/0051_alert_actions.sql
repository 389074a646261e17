-- What on-call staff did with alerts (the console): one row per action id, an audit trail.
CREATE TABLE IF NOT EXISTS {db}.alert_actions
(
    action_id       String,
    ts              DateTime64(3, 'UTC'),
    actor           LowCardinality(String),
    action          LowCardinality(String),
    state           LowCardinality(String),
    alert_id        String,
    rule_id         LowCardinality(String),
    owner           LowCardinality(String),
    severity        LowCardinality(String),
    subject_type    LowCardinality(String),
    subject_id      Nullable(String),
    customer_id     Nullable(String),
    source_event_id Nullable(String),
    assignee        LowCardinality(Nullable(String)),
    reason          String,
    silence_until   Nullable(DateTime64(3, 'UTC')),
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (alert_id, action_id)
TTL toDateTime(ts) + INTERVAL {rollup_ttl_days} DAY;
