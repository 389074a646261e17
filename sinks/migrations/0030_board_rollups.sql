-- 1-minute rollups for the Grafana boards (grafana range 0030-0039).
--
-- Exact under re-delivery. The raw tables are ReplacingMergeTree, but a materialized view sees
-- every insert, so an event re-delivered in a different batch (after a worker crash) reaches the
-- view twice; insert dedup tokens only stop exact batch replays. A SummingMergeTree would count it
-- twice. Instead each rollup row holds, per (minute, dimensions), the SET of its events as
-- (cityHash64(event_id), measures...) tuples in a groupUniqArray state: merging sets is idempotent,
-- so a duplicate event collapses wherever it is merged (insert, background merge or query).
-- Counts are the set sizes, sums are sums over the set. The `*_1m` views do the per-minute merge,
-- so a board query sums exact per-minute figures and never merges sets across minutes.
-- Rollups keep {rollup_ttl_days} days, longer than the raw tables' {raw_ttl_days} days.
-- Re-running this file is harmless: every statement is IF NOT EXISTS and the backfill adds
-- events that the sets already hold.

CREATE TABLE IF NOT EXISTS {db}.transactions_1m_state
(
    minute        DateTime('UTC'),
    channel       LowCardinality(String),
    segment       LowCardinality(String),
    customer_type LowCardinality(String),
    txn_type      LowCardinality(String),
    direction     LowCardinality(String),
    currency      LowCardinality(String),
    events        AggregateFunction(groupUniqArray, Tuple(h UInt64, amount Decimal(24, 6)))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, channel, segment, customer_type, txn_type, direction, currency)
TTL minute + INTERVAL {rollup_ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.transactions_1m_mv TO {db}.transactions_1m_state AS
SELECT
    toStartOfMinute(ts) AS minute,
    channel, segment, customer_type, txn_type, direction, currency,
    groupUniqArrayState(CAST((cityHash64(event_id), amount)
        AS Tuple(h UInt64, amount Decimal(24, 6)))) AS events
FROM {db}.transactions
GROUP BY minute, channel, segment, customer_type, txn_type, direction, currency;

INSERT INTO {db}.transactions_1m_state
SELECT
    toStartOfMinute(ts) AS minute,
    channel, segment, customer_type, txn_type, direction, currency,
    groupUniqArrayState(CAST((cityHash64(event_id), amount)
        AS Tuple(h UInt64, amount Decimal(24, 6)))) AS events
FROM {db}.transactions
GROUP BY minute, channel, segment, customer_type, txn_type, direction, currency;

CREATE VIEW IF NOT EXISTS {db}.transactions_1m AS
SELECT
    minute, channel, segment, customer_type, txn_type, direction, currency,
    length(s) AS events,
    arraySum(x -> x.amount, s) AS amount
FROM
(
    SELECT minute, channel, segment, customer_type, txn_type, direction, currency,
           groupUniqArrayMerge(events) AS s
    FROM {db}.transactions_1m_state
    GROUP BY minute, channel, segment, customer_type, txn_type, direction, currency
);

-- Interactions: offered contacts, waits, the 80/20 service-level numerator (answered within 20 s)
-- over the denominator (all offered), handle time, first-contact resolution, complaints.
CREATE TABLE IF NOT EXISTS {db}.interactions_1m_state
(
    minute           DateTime('UTC'),
    channel          LowCardinality(String),
    segment          LowCardinality(String),
    customer_type    LowCardinality(String),
    interaction_type LowCardinality(String),
    contacts         AggregateFunction(groupUniqArray, Tuple(
        h UInt64, wait Float64, handle Float64, in_target UInt8, resolved UInt8,
        fcr_known UInt8, fcr UInt8, complaint UInt8))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, channel, segment, customer_type, interaction_type)
TTL minute + INTERVAL {rollup_ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.interactions_1m_mv TO {db}.interactions_1m_state AS
SELECT
    toStartOfMinute(ts) AS minute,
    channel, segment, customer_type, interaction_type,
    groupUniqArrayState(CAST((
        cityHash64(event_id), wait_seconds, handle_seconds, toUInt8(wait_seconds <= 20),
        toUInt8(resolved), toUInt8(isNotNull(first_contact_resolution)),
        toUInt8(ifNull(first_contact_resolution, false)), toUInt8(interaction_type = 'complaint'))
        AS Tuple(h UInt64, wait Float64, handle Float64, in_target UInt8, resolved UInt8,
                 fcr_known UInt8, fcr UInt8, complaint UInt8))) AS contacts
FROM {db}.interactions
GROUP BY minute, channel, segment, customer_type, interaction_type;

INSERT INTO {db}.interactions_1m_state
SELECT
    toStartOfMinute(ts) AS minute,
    channel, segment, customer_type, interaction_type,
    groupUniqArrayState(CAST((
        cityHash64(event_id), wait_seconds, handle_seconds, toUInt8(wait_seconds <= 20),
        toUInt8(resolved), toUInt8(isNotNull(first_contact_resolution)),
        toUInt8(ifNull(first_contact_resolution, false)), toUInt8(interaction_type = 'complaint'))
        AS Tuple(h UInt64, wait Float64, handle Float64, in_target UInt8, resolved UInt8,
                 fcr_known UInt8, fcr UInt8, complaint UInt8))) AS contacts
FROM {db}.interactions
GROUP BY minute, channel, segment, customer_type, interaction_type;

CREATE VIEW IF NOT EXISTS {db}.interactions_1m AS
SELECT
    minute, channel, segment, customer_type, interaction_type,
    length(s) AS contacts,
    arraySum(x -> x.wait, s) AS wait_s_sum,
    arraySum(x -> x.in_target, s) AS answered_in_target,
    arraySum(x -> x.handle, s) AS handle_s_sum,
    arraySum(x -> x.resolved, s) AS resolved,
    arraySum(x -> x.fcr_known, s) AS fcr_known,
    arraySum(x -> x.fcr, s) AS fcr,
    arraySum(x -> x.complaint, s) AS complaints
FROM
(
    SELECT minute, channel, segment, customer_type, interaction_type,
           groupUniqArrayMerge(contacts) AS s
    FROM {db}.interactions_1m_state
    GROUP BY minute, channel, segment, customer_type, interaction_type
);

-- Dead letters by topic and error type; only a count is needed, so the set is uniqExact(id).
CREATE TABLE IF NOT EXISTS {db}.deadletters_1m_state
(
    minute       DateTime('UTC'),
    source_topic LowCardinality(String),
    error_type   LowCardinality(String),
    ids          AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source_topic, error_type)
TTL minute + INTERVAL {rollup_ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.deadletters_1m_mv TO {db}.deadletters_1m_state AS
SELECT toStartOfMinute(ingested_at) AS minute, source_topic, error_type, uniqExactState(id) AS ids
FROM {db}.deadletters
GROUP BY minute, source_topic, error_type;

INSERT INTO {db}.deadletters_1m_state
SELECT toStartOfMinute(ingested_at) AS minute, source_topic, error_type, uniqExactState(id) AS ids
FROM {db}.deadletters
GROUP BY minute, source_topic, error_type;

CREATE VIEW IF NOT EXISTS {db}.deadletters_1m AS
SELECT minute, source_topic, error_type, uniqExactMerge(ids) AS deadletters
FROM {db}.deadletters_1m_state
GROUP BY minute, source_topic, error_type;

-- Raw tables reviewed for the board queries: ORDER BY (ts, event_id) serves every time-range
-- filter and keeps ReplacingMergeTree's dedup key; the dimensions are already LowCardinality.
-- Drill-downs by customer (top customers, complaint ageing) get a bloom-filter skip index.
ALTER TABLE {db}.transactions ADD INDEX IF NOT EXISTS idx_customer customer_id
    TYPE bloom_filter(0.01) GRANULARITY 4;
ALTER TABLE {db}.interactions ADD INDEX IF NOT EXISTS idx_customer customer_id
    TYPE bloom_filter(0.01) GRANULARITY 4;
ALTER TABLE {db}.feedback ADD INDEX IF NOT EXISTS idx_ref ref_event_id
    TYPE bloom_filter(0.01) GRANULARITY 4
