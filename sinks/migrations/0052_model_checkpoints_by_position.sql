-- Model checkpoints by learning-stream position (sinks/checkpoints.py): workers restore the
-- highest position, then the newest; the rows several workers write at one position are one
-- row (ReplacingMergeTree on (model, position), the newest kept). A new table because
-- model_checkpoints (0010) is sorted by created_at, which no ALTER can take out of its key;
-- model_checkpoints is no longer written, and its rows expire by its TTL.
CREATE TABLE IF NOT EXISTS {db}.model_checkpoints_by_position
(
    model         LowCardinality(String),
    position      Int64,  -- the next learning-stream offset the model learns, -1: none
    created_at    DateTime64(3, 'UTC'),
    checkpoint_id String,
    model_version String,
    n_learned     UInt64,
    blob          String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (model, position)
TTL toDateTime(created_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- The newest checkpoint of each model from before, at position -1 (its blob holds the
-- position it learned to); run again, it lands on the same key and merges into one row.
INSERT INTO {db}.model_checkpoints_by_position
    (model, position, created_at, checkpoint_id, model_version, n_learned, blob)
SELECT model, -1, created_at, checkpoint_id, model_version, n_learned, blob
FROM {db}.model_checkpoints
ORDER BY created_at DESC
LIMIT 1 BY model;
