"""``finpulse status``: the newest consumer-lag row of each worker, topic and partition.

The query is the *Latest lag per worker and partition* panel of the pipeline-health board
(:data:`finpulse.config.boards.pipeline_health.LATEST_SQL`), over the last ``within_s`` seconds, so
the terminal and the boards show the same figures.

>>> print(format_table([{"worker": "h:1", "topic": "t", "partition": 0, "lag_events": 12,
...     "lag_s": 3.5, "events_per_s": 99.0, "last_at": "2026-01-05T10:00:00+00:00"}]))
worker  topic  partition  lag_events  lag_s  events/s  at
h:1     t              0          12    3.5      99.0  2026-01-05 10:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from finpulse.config.boards.macros import expand
from finpulse.config.boards.pipeline_health import LATEST_SQL
from finpulse.config.settings import Settings

# (header, key, right-aligned, format)
_COLUMNS: tuple[tuple[str, str, bool, str], ...] = (
    ("worker", "worker", False, "{}"),
    ("topic", "topic", False, "{}"),
    ("partition", "partition", True, "{}"),
    ("lag_events", "lag_events", True, "{}"),
    ("lag_s", "lag_s", True, "{:.1f}"),
    ("events/s", "events_per_s", True, "{:.1f}"),
    ("at", "last_at", False, "{}"),
)


def status_rows(settings: Settings, within_s: float, client: Any = None) -> list[dict[str, Any]]:
    """The newest ``consumer_lag`` row per worker, topic and partition of the last
    ``within_s`` seconds, most behind first (JSON-ready: times as ISO 8601 UTC)."""
    from finpulse.sinks.clickhouse import make_client

    end = datetime.now(UTC)
    sql = expand(LATEST_SQL, end - timedelta(seconds=within_s), end + timedelta(seconds=1), 1)
    own = client is None
    client = make_client(settings) if own else client
    try:
        result = client.query(sql)
    finally:
        if own:
            client.close()
    rows = []
    for values in result.result_rows:
        row = dict(zip(result.column_names, values, strict=True))
        at = row["last_at"]
        if isinstance(at, datetime):
            row["last_at"] = (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned text table (the ``at`` column in UTC, to the second)."""
    cells = [[header for header, *_ in _COLUMNS]]
    for row in rows:
        line = []
        for _, key, _, fmt in _COLUMNS:
            value = row.get(key)
            if key == "last_at" and isinstance(value, str):
                value = value.replace("T", " ")[:19]
            line.append("" if value is None else fmt.format(value))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(_COLUMNS))]
    out = []
    for r in cells:
        parts = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, (_, _, right, _) in zip(r, widths, _COLUMNS, strict=True)
        ]
        out.append("  ".join(parts).rstrip())
    return "\n".join(out)
