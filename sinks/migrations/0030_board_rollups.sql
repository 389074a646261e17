-- 1-minute rollups for the Grafana boards (grafana range 0030-0039).
--
-- Exact under re-delivery. The raw tables are ReplacingMergeTree, but a plain materialized view
-- sees every insert, so an event re-delivered in another batch (after a worker crash) would be
-- summed twice; insert dedup tokens only stop exact batch replays. So the rollups are not fed
-- by insert-triggered views: a refreshable materialized view recomputes, every 30 s, each
-- minute that received rows since its previous run, from the raw table read with FINAL (one
-- row per event), and appends the result with a newer `version`. The rollup tables are
-- ReplacingMergeTree(version) keyed by (minute, dimensions): a recomputed minute replaces the
-- older figures, and the `*_1m` views read them with FINAL. Counts and sums are therefore those
-- of the deduplicated raw table, never of the insert stream.
--
-- "Since its previous run" is taken from the rollup itself (max(version) minus 5 minutes of
-- margin for rows inserted while a refresh ran), so a refresh that was paused catches up, and
-- the first run backfills everything already stored. Minutes within a day of the raw TTL
-- ({raw_ttl_days} days) are never recomputed: the rollups keep {rollup_ttl_days} days, longer
-- than the raw rows they were computed from. Boards lag by at most one refresh;
-- `SYSTEM REFRESH VIEW` (sinks.rollups.refresh_rollups) brings them up to date at once.

CREATE TABLE IF NOT EXISTS {db}.transactions_1m_state
(
    minute        DateTime('UTC'),
    channel       LowCardinality(String),
    segment       LowCardinality(String),
    customer_type LowCardinality(String),
    txn_type      LowCardinality(String),
    direction     LowCardinality(String),
    currency      LowCardinality(String),
    events        UInt64,
    amount        Decimal(38, 6),
    version       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, channel, segment, customer_type, txn_type, direction, currency)
TTL minute + INTERVAL {rollup_ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.transactions_1m_refresh
REFRESH EVERY 30 SECOND APPEND TO {db}.transactions_1m_state AS
WITH (SELECT max(version) FROM {db}.transactions_1m_state) AS done
SELECT
    toStartOfMinute(ts) AS minute,
    channel, segment, customer_type, txn_type, direction, currency,
    count() AS events,
    sum(amount) AS amount,
    now64(3) AS version
FROM {db}.transactions FINAL
WHERE toStartOfMinute(ts) IN
(
    SELECT DISTINCT toStartOfMinute(ts) FROM {db}.transactions
    WHERE ingested_at >= done - INTERVAL 5 MINUTE
)
  AND ts >= now() - INTERVAL {raw_ttl_days} DAY + INTERVAL 1 DAY
GROUP BY minute, channel, segment, customer_type, txn_type, direction, currency;

CREATE VIEW IF NOT EXISTS {db}.transactions_1m AS
SELECT minute, channel, segment, customer_type, txn_type, direction, currency, events, amount
FROM {db}.transactions_1m_state FINAL;

-- Interactions: offered contacts, waits, the 80/20 service-level numerator (answered within 20 s)
-- over the denominator (all offered contacts), handle time, first-contact resolution, complaints.
CREATE TABLE IF NOT EXISTS {db}.interactions_1m_state
(
    minute             DateTime('UTC'),
    channel            LowCardinality(String),
    segment            LowCardinality(String),
    customer_type      LowCardinality(String),
    interaction_type   LowCardinality(String),
    contacts           UInt64,
    wait_s_sum         Float64,
    answered_in_target UInt64,
    handle_s_sum       Float64,
    resolved           UInt64,
    fcr_known          UInt64,
    fcr                UInt64,
    complaints         UInt64,
    version            DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, channel, segment, customer_type, interaction_type)
TTL minute + INTERVAL {rollup_ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.interactions_1m_refresh
REFRESH EVERY 30 SECOND APPEND TO {db}.interactions_1m_state AS
WITH (SELECT max(version) FROM {db}.interactions_1m_state) AS done
SELECT
    toStartOfMinute(ts) AS minute,
    channel, segment, customer_type, interaction_type,
    count() AS contacts,
    sum(wait_seconds) AS wait_s_sum,
    countIf(wait_seconds <= 20) AS answered_in_target,
    sum(handle_seconds) AS handle_s_sum,
    countIf(resolved) AS resolved,
    countIf(isNotNull(first_contact_resolution)) AS fcr_known,
    countIf(ifNull(first_contact_resolution, false)) AS fcr,
    countIf(interaction_type = 'complaint') AS complaints,
    now64(3) AS version
FROM {db}.interactions FINAL
WHERE toStartOfMinute(ts) IN
(
    SELECT DISTINCT toStartOfMinute(ts) FROM {db}.interactions
    WHERE ingested_at >= done - INTERVAL 5 MINUTE
)
  AND ts >= now() - INTERVAL {raw_ttl_days} DAY + INTERVAL 1 DAY
GROUP BY minute, channel, segment, customer_type, interaction_type;

CREATE VIEW IF NOT EXISTS {db}.interactions_1m AS
SELECT minute, channel, segment, customer_type, interaction_type, contacts, wait_s_sum,
       answered_in_target, handle_s_sum, resolved, fcr_known, fcr, complaints
FROM {db}.interactions_1m_state FINAL;

-- Dead letters by topic and error type, per minute of ingestion.
CREATE TABLE IF NOT EXISTS {db}.deadletters_1m_state
(
    minute       DateTime('UTC'),
    source_topic LowCardinality(String),
    error_type   LowCardinality(String),
    deadletters  UInt64,
    version      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source_topic, error_type)
TTL minute + INTERVAL {rollup_ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.deadletters_1m_refresh
REFRESH EVERY 30 SECOND APPEND TO {db}.deadletters_1m_state AS
WITH (SELECT max(version) FROM {db}.deadletters_1m_state) AS done
SELECT toStartOfMinute(ingested_at) AS minute, source_topic, error_type,
       count() AS deadletters, now64(3) AS version
FROM {db}.deadletters FINAL
WHERE toStartOfMinute(ingested_at) IN
(
    SELECT DISTINCT toStartOfMinute(ingested_at) FROM {db}.deadletters
    WHERE ingested_at >= done - INTERVAL 5 MINUTE
)
  AND ingested_at >= now() - INTERVAL {raw_ttl_days} DAY + INTERVAL 1 DAY
GROUP BY minute, source_topic, error_type;

CREATE VIEW IF NOT EXISTS {db}.deadletters_1m AS
SELECT minute, source_topic, error_type, deadletters
FROM {db}.deadletters_1m_state FINAL;

-- Raw tables reviewed for the board queries: ORDER BY (ts, event_id) serves every time-range
-- filter and is ReplacingMergeTree's dedup key; the dimensions are already LowCardinality.
-- Drill-downs by customer (top customers, complaint ageing) get bloom-filter skip indexes.
ALTER TABLE {db}.transactions ADD INDEX IF NOT EXISTS idx_customer customer_id
    TYPE bloom_filter(0.01) GRANULARITY 4;
ALTER TABLE {db}.interactions ADD INDEX IF NOT EXISTS idx_customer customer_id
    TYPE bloom_filter(0.01) GRANULARITY 4;
ALTER TABLE {db}.interactions ADD INDEX IF NOT EXISTS idx_complaint complaint_id
    TYPE bloom_filter(0.01) GRANULARITY 4;
ALTER TABLE {db}.feedback ADD INDEX IF NOT EXISTS idx_ref ref_event_id
    TYPE bloom_filter(0.01) GRANULARITY 4
