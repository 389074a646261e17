-- Consumer lag and pipeline health: one row per worker, input topic partition and interval
-- (FINPULSE_LAG_INTERVAL_S, 5 s), written by the worker through its commit path
-- (streams/worker/lag.py). The interval figures (events_per_s, batch_*_ms, deadletters,
-- interval_s) are the worker's, the same on each of its rows of one interval.
CREATE TABLE IF NOT EXISTS {db}.consumer_lag
(
    at             DateTime64(3, 'UTC'),
    worker         LowCardinality(String),
    topic          LowCardinality(String),
    partition      UInt32,
    next_offset    Int64,            -- the offset processed next (newest committed + 1)
    high_watermark Int64,            -- from the latest fetch response
    end_offset     Nullable(Int64),  -- from ListOffsets (wrong on Tansu), NULL if unanswered
    lag_events     UInt64,           -- high_watermark - next_offset
    lag_s          Float64,          -- event time of newest fetched - newest processed
    events_per_s   Float64,
    batch_p50_ms   Float64,
    batch_p99_ms   Float64,
    deadletters    UInt32,
    interval_s     Float64,
    row_id         String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(at)
ORDER BY (topic, partition, worker, at, row_id)
TTL toDateTime(at) + INTERVAL {raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;
