-- Pickled model state, one row per checkpoint; workers restore the latest per model.
CREATE TABLE IF NOT EXISTS {db}.model_checkpoints
(
    checkpoint_id String,
    model         LowCardinality(String),
    created_at    DateTime64(3, 'UTC'),
    model_version String,
    n_learned     UInt64,
    blob          String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
ORDER BY (model, created_at, checkpoint_id)
TTL toDateTime(created_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;
