"""Expand the ClickHouse plugin's macros and Grafana template variables, as Grafana would.

Used by the query tests (to run every panel against a real ClickHouse) and by the HTML
board; the table of expansions is the plugin's (see INFRA.md).

>>> from datetime import UTC, datetime
>>> t0, t1 = datetime(2026, 1, 5, 10, tzinfo=UTC), datetime(2026, 1, 5, 11, tzinfo=UTC)
>>> expand("SELECT $__timeInterval(ts) FROM t", t0, t1, 60)
'SELECT toStartOfInterval(toDateTime(ts), INTERVAL 60 second) FROM t'
>>> expand("WHERE $__timeFilter(ts)", t0, t1, 60)
'WHERE ts >= toDateTime(1767607200) AND ts <= toDateTime(1767610800)'
>>> expand("segment IN (${segment:singlequote})", t0, t1, 60, {"segment": ["retail", "sme"]})
"segment IN ('retail','sme')"
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime


class MacroError(ValueError):
    """A macro or template variable that cannot be expanded."""


def _call_macros(sql: str, name: str, render: Callable[[str], str]) -> str:
    """Replace every ``name(arg)`` (balanced parentheses) with ``render(arg)``."""
    out, i, token = [], 0, name + "("
    while (j := sql.find(token, i)) >= 0:
        depth, k = 1, j + len(token)
        while k < len(sql) and depth:
            depth += {"(": 1, ")": -1}.get(sql[k], 0)
            k += 1
        if depth:
            raise MacroError(f"unbalanced parentheses after {name}")
        out.append(sql[i:j])
        out.append(render(sql[j + len(token) : k - 1].strip()))
        i = k
    out.append(sql[i:])
    return "".join(out)


_VAR = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")


def sql_string(value: str) -> str:
    """A ClickHouse string literal.

    >>> print(sql_string("o'neil"))
    'o\\'neil'
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _format(values: Sequence[str], fmt: str | None) -> str:
    if fmt == "singlequote":
        return ",".join(sql_string(v) for v in values)
    if fmt in (None, "raw", "csv"):
        return ",".join(values)
    raise MacroError(f"unsupported variable format {fmt!r}")


def expand(
    sql: str,
    start: datetime,
    end: datetime,
    interval_s: float,
    variables: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """``sql`` with plugin macros and ``$var`` / ``${var:fmt}`` template variables filled in."""
    from_s, to_s = int(start.timestamp()), int(end.timestamp())
    from_ms, to_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    step_s = max(int(interval_s), 1)
    step_ms = max(int(interval_s * 1000), 1)
    text = _call_macros(
        sql,
        "$__timeFilter_ms",
        lambda c: (
            f"{c} >= fromUnixTimestamp64Milli({from_ms}) AND "
            f"{c} <= fromUnixTimestamp64Milli({to_ms})"
        ),
    )
    text = _call_macros(
        text,
        "$__timeFilter",
        lambda c: f"{c} >= toDateTime({from_s}) AND {c} <= toDateTime({to_s})",
    )
    text = _call_macros(
        text,
        "$__timeInterval_ms",
        lambda c: f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {step_ms} millisecond)",
    )
    text = _call_macros(
        text,
        "$__timeInterval",
        lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {step_s} second)",
    )
    text = (
        text.replace("$__fromTime", f"toDateTime({from_s})")
        .replace("$__toTime", f"toDateTime({to_s})")
        .replace("$__interval_s", str(step_s))
    )
    variables = variables or {}

    def var(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name not in variables:
            raise MacroError(f"template variable ${name} has no value")
        return _format(variables[name], match.group(2))

    text = _VAR.sub(var, text)
    if "$__" in text:
        raise MacroError(f"unexpanded macro left in: {text[text.index('$__') :][:60]}")
    return text
