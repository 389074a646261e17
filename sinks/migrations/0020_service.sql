-- Service quality, complaints, customer view and service x risk (issue 4).

-- Additive per-partition minute aggregates. Interactions are partitioned by customer_id, so
-- each worker only sees part of a channel: every (minute, channel, segment, source_partition)
-- row is that partition's full aggregate so far, rewritten with a higher version (the source
-- offset of the last interaction included) whenever it changes. FINAL keeps the newest row of
-- each key; channel or segment totals are exact via SUM over the other key columns.
CREATE TABLE IF NOT EXISTS {db}.service_minutes
(
    minute           DateTime('UTC'),
    channel          LowCardinality(String),
    customer_type    LowCardinality(String),
    segment          LowCardinality(String),
    source_partition UInt16,
    contacts         UInt32,
    answered_in_sl   UInt32,
    sl_threshold_s   Float32,
    wait_sum         Float64,
    handle_sum       Float64,
    resolved         UInt32,
    fcr_known        UInt32,
    fcr              UInt32,
    transfers        UInt32,
    transferred      UInt32,
    complaints       UInt32,
    repeat_contacts  UInt32,
    version          UInt64,
    row_id           String,
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, channel, segment, source_partition)
TTL minute + INTERVAL {rollup_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Exact totals per channel and minute (sums of the partial aggregates).
CREATE VIEW IF NOT EXISTS {db}.service_channel_minutes AS
SELECT
    minute,
    channel,
    sum(contacts) AS contacts,
    sum(answered_in_sl) AS answered_in_sl,
    if(contacts = 0, NULL, answered_in_sl / contacts) AS service_level,
    if(contacts = 0, NULL, sum(wait_sum) / contacts) AS avg_speed_of_answer_s,
    if(contacts = 0, NULL, sum(handle_sum) / contacts) AS avg_handle_time_s,
    if(sum(fcr_known) = 0, NULL, sum(fcr) / sum(fcr_known)) AS first_contact_resolution,
    sum(transfers) AS transfers,
    sum(transferred) AS transferred_contacts,
    sum(complaints) AS complaints,
    sum(repeat_contacts) AS repeat_contacts
FROM {db}.service_minutes FINAL
GROUP BY minute, channel;

-- The same per segment (customer_type and the six segments) over all channels.
CREATE VIEW IF NOT EXISTS {db}.service_segment_minutes AS
SELECT
    minute,
    customer_type,
    segment,
    sum(contacts) AS contacts,
    sum(answered_in_sl) AS answered_in_sl,
    if(contacts = 0, NULL, answered_in_sl / contacts) AS service_level,
    if(contacts = 0, NULL, sum(wait_sum) / contacts) AS avg_speed_of_answer_s,
    if(contacts = 0, NULL, sum(handle_sum) / contacts) AS avg_handle_time_s,
    if(sum(fcr_known) = 0, NULL, sum(fcr) / sum(fcr_known)) AS first_contact_resolution,
    sum(transfers) AS transfers,
    sum(complaints) AS complaints,
    sum(repeat_contacts) AS repeat_contacts
FROM {db}.service_minutes FINAL
GROUP BY minute, customer_type, segment;

-- Complaint state changes: one row per (complaint, status); re-delivery collapses.
CREATE TABLE IF NOT EXISTS {db}.complaints
(
    complaint_id     String,
    status           LowCardinality(String),
    ts               DateTime64(3, 'UTC'),
    customer_id      String,
    customer_type    LowCardinality(String),
    segment          LowCardinality(String),
    channel          LowCardinality(String),
    opened_at        DateTime64(3, 'UTC'),
    due_at           DateTime64(3, 'UTC'),
    closed_at        Nullable(DateTime64(3, 'UTC')),
    days_open        Float32,
    source_event_id  String,
    source_partition UInt16,
    row_id           String,
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(opened_at)
ORDER BY (complaint_id, status)
TTL toDateTime(opened_at) + INTERVAL {rollup_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- The latest status of every complaint.
CREATE VIEW IF NOT EXISTS {db}.complaints_current AS
SELECT
    complaint_id,
    argMax(status, ts) AS status,
    max(ts) AS updated_at,
    any(customer_id) AS customer_id,
    any(segment) AS segment,
    any(channel) AS channel,
    min(opened_at) AS opened_at,
    min(due_at) AS due_at,
    max(closed_at) AS closed_at
FROM {db}.complaints FINAL
GROUP BY complaint_id;

-- Customer view: lifecycle, satisfaction and risk per customer (newest version wins).
CREATE TABLE IF NOT EXISTS {db}.customer_status
(
    customer_id      String,
    ts               DateTime64(3, 'UTC'),
    customer_type    LowCardinality(String),
    segment          LowCardinality(String),
    lifecycle        LowCardinality(String),
    first_seen       DateTime64(3, 'UTC'),
    last_seen        DateTime64(3, 'UTC'),
    events_30d       UInt32,
    events_prev_30d  UInt32,
    contacts_24h     UInt16,
    open_complaints  UInt16,
    last_csat        Nullable(Float32),
    dissatisfaction  Float32,
    risk_score       Float32,
    last_risk_rule   Nullable(String),
    last_risk_at     Nullable(DateTime64(3, 'UTC')),
    health_score     Float32,
    version          UInt64,
    source_partition UInt16,
    row_id           String,
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY customer_id
TTL toDateTime(ts) + INTERVAL {rollup_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Lifecycle as of the newest event time in the table: a customer without events for 60 days
-- is dormant even though no event re-wrote its row.
CREATE VIEW IF NOT EXISTS {db}.customer_lifecycle AS
SELECT
    customer_id,
    customer_type,
    segment,
    if(last_seen < (SELECT max(last_seen) FROM {db}.customer_status) - INTERVAL 60 DAY,
       'dormant', lifecycle) AS lifecycle,
    first_seen,
    last_seen,
    health_score,
    dissatisfaction,
    open_complaints
FROM {db}.customer_status FINAL;

-- Segment-level customer metrics.
CREATE VIEW IF NOT EXISTS {db}.segment_customers AS
SELECT
    customer_type,
    segment,
    lifecycle,
    count() AS customers,
    avg(health_score) AS avg_health,
    avg(dissatisfaction) AS avg_dissatisfaction,
    sum(open_complaints) AS open_complaints_total
FROM {db}.customer_lifecycle
GROUP BY customer_type, segment, lifecycle;

-- Joint customer health (risk x dissatisfaction): the 100 customers in the worst shape.
CREATE VIEW IF NOT EXISTS {db}.customer_health_top AS
SELECT
    customer_id,
    segment,
    lifecycle,
    health_score,
    risk_score,
    dissatisfaction,
    open_complaints,
    contacts_24h,
    last_risk_rule,
    ts
FROM {db}.customer_status FINAL
ORDER BY health_score ASC, customer_id
LIMIT 100;

-- Friction: a customer whose transaction raised a risk alert contacts service within 24 h.
CREATE TABLE IF NOT EXISTS {db}.service_friction
(
    event_id         String,
    ts               DateTime64(3, 'UTC'),
    customer_id      String,
    segment          LowCardinality(String),
    channel          LowCardinality(String),
    rule_id          LowCardinality(String),
    risk_severity    LowCardinality(String),
    risk_alert_at    DateTime64(3, 'UTC'),
    delay_s          Float32,
    source_partition UInt16,
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, event_id, rule_id)
TTL toDateTime(ts) + INTERVAL {raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE VIEW IF NOT EXISTS {db}.friction_by_rule AS
SELECT
    rule_id,
    uniqExact(customer_id) AS customers,
    count() AS contacts,
    avg(delay_s) AS avg_delay_s
FROM {db}.service_friction FINAL
GROUP BY rule_id;

-- model_metrics is created by migration 0012 (shared with the risk models).
