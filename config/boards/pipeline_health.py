"""Pipeline health: consumer lag per worker and partition (events and event-time seconds),
throughput, batch time and dead letters per worker, from ``consumer_lag``
(``streams/worker/lag.py`` writes it every ``FINPULSE_LAG_INTERVAL_S``).

The interval figures (events/s, batch time, dead letters) repeat on each of a worker's rows
of one interval: the panels take one row per worker and interval before adding them up.

>>> [p.title for p in BOARD.panels][:3]  # doctest: +NORMALIZE_WHITESPACE
['Consumer lag (events) per worker and partition',
 'Consumer lag (seconds) per worker and partition', 'Throughput per worker']
"""

from __future__ import annotations

from finpulse.config.boards.spec import BoardSpec, PanelSpec

# The alert rule's threshold (config/boards/alert_rules.py): a worker 60 s behind.
LAG_ALERT_S = 60

_SERIES = "concat(worker, ' ', topic, '/', toString(partition))"

# One row per worker and interval (the interval figures, not repeated per partition).
_INTERVALS = """(
    SELECT worker, at, any(events_per_s) AS events_per_s, any(batch_p50_ms) AS batch_p50_ms,
           any(batch_p99_ms) AS batch_p99_ms, any(deadletters) AS deadletters,
           any(interval_s) AS interval_s
    FROM consumer_lag
    WHERE $__timeFilter(at)
    GROUP BY worker, at
)"""

LATEST_SQL = """SELECT max(at) AS last_at, worker, topic, partition,
       argMax(lag_events, at) AS lag_events, argMax(lag_s, at) AS lag_s,
       argMax(events_per_s, at) AS events_per_s, argMax(next_offset, at) AS next_offset,
       argMax(high_watermark, at) AS high_watermark
FROM consumer_lag
WHERE $__timeFilter(at)
GROUP BY worker, topic, partition
ORDER BY lag_s DESC, lag_events DESC, worker, topic, partition
LIMIT 200"""

BOARD = BoardSpec(
    uid="finpulse-pipeline-health",
    title="finpulse · Pipeline health",
    description="Consumer lag, throughput, batch time and dead letters of every worker.",
    refresh="10s",
    time_from="now-1h",
    panels=(
        PanelSpec(
            "Consumer lag (events) per worker and partition",
            f"""SELECT $__timeInterval(at) AS t, {_SERIES} AS series, max(lag_events) AS lag_events
FROM consumer_lag
WHERE $__timeFilter(at)
GROUP BY t, series
ORDER BY t, series""",
            "t:time series:text lag_events:number",
            description="High watermark (fetch responses) minus the next offset to process.",
            min_val=0,
        ),
        PanelSpec(
            "Consumer lag (seconds) per worker and partition",
            f"""SELECT $__timeInterval(at) AS t, {_SERIES} AS series, max(lag_s) AS lag_s
FROM consumer_lag
WHERE $__timeFilter(at)
GROUP BY t, series
ORDER BY t, series""",
            "t:time series:text lag_s:number",
            unit="s",
            description="Event time (record timestamp) of the newest fetched message minus "
            f"that of the newest processed one; 0 when caught up. Alert above {LAG_ALERT_S} s.",
            thresholds=((0, "green"), (LAG_ALERT_S, "red")),
            min_val=0,
        ),
        PanelSpec(
            "Throughput per worker",
            f"""SELECT $__timeInterval(at) AS t, worker,
       sum(events_per_s * interval_s) / sum(interval_s) AS events_per_s
FROM {_INTERVALS}
GROUP BY t, worker
ORDER BY t, worker""",
            "t:time worker:text events_per_s:number",
            unit="ops",
            description="Events committed (valid and dead-lettered) per second.",
            min_val=0,
        ),
        PanelSpec(
            "Batch time per worker (p50, p99)",
            f"""SELECT $__timeInterval(at) AS t, worker,
       avg(batch_p50_ms) AS p50, max(batch_p99_ms) AS p99
FROM {_INTERVALS}
WHERE batch_p99_ms > 0
GROUP BY t, worker
ORDER BY t, worker""",
            "t:time worker:text p50:number p99:number",
            unit="ms",
            description="From taking a batch to its commit (processing, waiting for the group "
            "commit, inserts, publishing, acknowledgement); per interval, nearest rank.",
            min_val=0,
        ),
        PanelSpec(
            "Dead-letter rate per worker",
            f"""SELECT $__timeInterval(at) AS t, worker,
       sum(deadletters) * 60 / sum(interval_s) AS deadletters_per_min
FROM {_INTERVALS}
GROUP BY t, worker
ORDER BY t, worker""",
            "t:time worker:text deadletters_per_min:number",
            description="Dead letters per minute.",
            min_val=0,
        ),
        PanelSpec(
            "Latest lag per worker and partition",
            LATEST_SQL,
            "last_at:time worker:text topic:text partition:number lag_events:number lag_s:number "
            "events_per_s:number next_offset:number high_watermark:number",
            kind="table",
            w=24,
            thresholds=((0, "green"), (LAG_ALERT_S, "red")),
            color_column="lag_s",
            description="What `finpulse status` prints: the newest row of each worker, topic "
            "and partition in the range.",
        ),
    ),
)
