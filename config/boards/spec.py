"""What a board is made of: panels as data, one entry each, read by every consumer.

A :class:`PanelSpec` is the single definition of a panel: its SQL (with the plugin's
macros and the ``segment``/``channel`` template variables), its visualisation and the
columns it returns. The Grafana JSON (:mod:`finpulse.config.boards.render`), the tests that run
every query against ClickHouse, and the HTML board (:mod:`finpulse.config.boards.html`) all read it.

>>> p = PanelSpec("Volume", "SELECT $__timeInterval(minute) AS t, sum(events) AS n "
...               "FROM transactions_1m WHERE $__timeFilter(minute) GROUP BY t ORDER BY t",
...               "t:time n:number")
>>> p.tables, p.format_val.name, [c.name for c in p.columns]
(('transactions_1m',), 'TIME_SERIES', ['t', 'n'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from finpulse.config.boards.query import Format
from finpulse.models.alerts import Severity
from finpulse.models.events import Segment, ServiceChannel, TxnChannel

Kind = Literal["timeseries", "table", "stat", "barchart"]
ColumnType = Literal["time", "text", "number", "severity"]

# Grafana's palette; one mapping used by every board, the HTML board and the alert policy.
SEVERITY_COLOURS: dict[str, str] = {
    Severity.BLUE.value: "#3274D9",
    Severity.YELLOW.value: "#FADE2A",
    Severity.ORANGE.value: "#FF9830",
    Severity.RED.value: "#F2495C",
}
SEVERITY_ORDER_SQL = "indexOf(['blue', 'yellow', 'orange', 'red'], severity)"

# Risk-score bands (0-100) coloured like the severities. They mirror the policy's
# model_thresholds for risk_score (yellow 60, orange 75, red 90).
RISK_SCORE_BANDS: tuple[tuple[float, str], ...] = (
    (0, Severity.BLUE.value),
    (60, Severity.YELLOW.value),
    (75, Severity.ORANGE.value),
    (90, Severity.RED.value),
)

SERVICE_LEVEL_TARGET = 0.8  # 80 % of contacts answered ...
SERVICE_LEVEL_SECONDS = 20  # ... within 20 s (the convention, not a law)
COMPLAINT_DECISION_DAYS = 15  # complaint measures in force 2020-03-01

# Template variables: every board offers these two, "All" selected by default. The values
# are the event contract's enums (anything else is dead-lettered), so "All" expands to the
# complete list and `col IN (${var:singlequote})` is right for All and for any selection.
VARIABLES: dict[str, tuple[str, ...]] = {
    "segment": tuple(s.value for s in Segment),
    "channel": tuple(
        dict.fromkeys([*(c.value for c in TxnChannel), *(c.value for c in ServiceChannel)])
    ),
}


def var_in(column: str, variable: str | None = None) -> str:
    """SQL condition restricting ``column`` to the selected values of a template variable.

    >>> var_in("segment")
    'segment IN (${segment:singlequote})'
    """
    return f"{column} IN (${{{variable or column}:singlequote}})"


def var_in_or_none(column: str, variable: str | None = None) -> str:
    """Like :func:`var_in`, but rows without a value (NULL or '') always pass: an alert on a
    channel has no segment and belongs to every segment.

    >>> var_in_or_none("segment")
    "(ifNull(segment, '') = '' OR segment IN (${segment:singlequote}))"
    """
    return f"(ifNull({column}, '') = '' OR {var_in(column, variable)})"


FILTERS = f"{var_in('segment')} AND {var_in('channel')}"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType


_TABLE_REF = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_CTE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(", re.IGNORECASE)


def tables_of(sql: str) -> tuple[str, ...]:
    """Tables a query reads (``FROM``/``JOIN`` targets that are not CTE names), in order.

    >>> tables_of("WITH x AS (SELECT 1 FROM a) SELECT * FROM x JOIN b USING k")
    ('a', 'b')
    """
    ctes = {m.group(1).lower() for m in _CTE.finditer(sql)}
    seen = [m.group(1) for m in _TABLE_REF.finditer(sql) if m.group(1).lower() not in ctes]
    return tuple(dict.fromkeys(seen))


@dataclass(frozen=True)
class PanelSpec:
    """One panel. ``columns`` is ``"name:type ..."`` (types: time, text, number, severity).

    ``timeseries`` panels return ``time`` first, then either numbers (wide) or one text
    column naming the series plus numbers (long; the plugin turns it into series).
    """

    title: str
    sql: str
    columns_spec: str
    kind: Kind = "timeseries"
    unit: str = "short"
    description: str = ""
    w: int = 12
    h: int = 8
    # Threshold steps (value, colour name or hex); the first value is the base.
    thresholds: tuple[tuple[float, str], ...] = ()
    # Series (timeseries) or stat values named after severities get the severity colours.
    severity_series: bool = False
    decimals: int | None = None
    min_val: float | None = None
    max_val: float | None = None
    stack: bool = False
    # Table column coloured by ``thresholds`` (cell background).
    color_column: str | None = None
    columns: tuple[Column, ...] = field(init=False)

    def __post_init__(self) -> None:
        cols = []
        for item in self.columns_spec.split():
            name, _, typ = item.partition(":")
            if typ not in ("time", "text", "number", "severity"):
                raise ValueError(f"panel {self.title!r}: column {item!r} has no valid type")
            cols.append(Column(name, typ))  # type: ignore[arg-type]
        object.__setattr__(self, "columns", tuple(cols))
        if self.kind == "timeseries" and (not cols or cols[0].type != "time"):
            raise ValueError(f"panel {self.title!r}: a time series starts with a time column")

    @property
    def tables(self) -> tuple[str, ...]:
        return tables_of(self.sql)

    @property
    def format_val(self) -> Format:
        return Format.TIME_SERIES if self.kind == "timeseries" else Format.TABLE


@dataclass(frozen=True)
class BoardSpec:
    uid: str
    title: str
    description: str
    panels: tuple[PanelSpec, ...]
    tags: tuple[str, ...] = ("finpulse",)
    time_from: str = "now-6h"
    refresh: str = "30s"

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for p in self.panels for t in p.tables))


def layout(panels: tuple[PanelSpec, ...], width: int = 24) -> list[tuple[int, int, int, int]]:
    """Pack panels left to right into rows; ``(x, y, w, h)`` per panel, never overlapping.

    >>> a = PanelSpec("a", "SELECT 1 AS n", "n:number", kind="stat", w=12, h=4)
    >>> layout((a, a, a))
    [(0, 0, 12, 4), (12, 0, 12, 4), (0, 4, 12, 4)]
    """
    out, x, y, row_h = [], 0, 0, 0
    for p in panels:
        if x + p.w > width:
            x, y, row_h = 0, y + row_h, 0
        out.append((x, y, p.w, p.h))
        x += p.w
        row_h = max(row_h, p.h)
    return out
