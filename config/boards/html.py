"""``finpulse board --html FILE``: every board's panels, from the same queries, in one
self-contained HTML file (inline SVG charts and HTML tables, no scripts, nothing fetched).

>>> from datetime import UTC, datetime
>>> choose_interval(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 6, tzinfo=UTC))
360
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from finpulse.config.boards.catalog import boards
from finpulse.config.boards.macros import expand
from finpulse.config.boards.render import colour
from finpulse.config.boards.spec import SEVERITY_COLOURS, VARIABLES, BoardSpec, PanelSpec
from finpulse.config.settings import Settings

log = logging.getLogger(__name__)

PALETTE = (
    "#7EB26D",
    "#EAB839",
    "#6ED0E0",
    "#EF843C",
    "#E24D42",
    "#1F78C1",
    "#BA43A9",
    "#705DA0",
    "#508642",
    "#CCA300",
)
POINTS = 60


def choose_interval(start: datetime, end: datetime, points: int = POINTS) -> int:
    """Grafana-like interval: the range over ``points``, at least the rollups' minute."""
    return max(60, int((end - start).total_seconds()) // points)


@dataclass
class PanelResult:
    spec: PanelSpec
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    note: str = ""  # why there is no data (table pending, query error)


def run_board(
    client: Any,
    board: BoardSpec,
    start: datetime,
    end: datetime,
    interval_s: int,
    variables: dict[str, Sequence[str]] | None = None,
) -> list[PanelResult]:
    """Run each panel's query with macros expanded; missing tables become a note."""
    existing = {
        r[0]
        for r in client.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
    }
    variables = variables or {k: list(v) for k, v in VARIABLES.items()}
    results = []
    for spec in board.panels:
        missing = [t for t in spec.tables if t not in existing]
        if missing:
            results.append(PanelResult(spec, note=f"waiting for table {', '.join(missing)}"))
            continue
        sql = expand(spec.sql, start, end, interval_s, variables)
        try:
            res = client.query(sql)
        except Exception as exc:  # shown on the board; the query tests make this not happen
            log.warning("panel %r failed: %s", spec.title, exc)
            results.append(PanelResult(spec, note=f"query failed: {str(exc)[:300]}"))
            continue
        results.append(PanelResult(spec, list(res.column_names), list(res.result_rows)))
    return results


# ---- rendering ---------------------------------------------------------------------------------


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, str | bytes):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def _fmt(v: Any) -> str:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, float | Decimal):
        f = float(v)
        return f"{f:,.3f}".rstrip("0").rstrip(".") if abs(f) < 1000 else f"{f:,.0f}"
    if isinstance(v, list | tuple):
        return ", ".join(map(str, v))
    return "" if v is None else str(v)


def _axis(v: float) -> str:
    """Compact axis label.

    >>> _axis(1364142.0), _axis(0.5), _axis(44814)
    ('1.36M', '0.5', '44.8k')
    """
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.3g}{suffix}"
    return f"{v:.3g}"


def _series_colour(name: str, i: int) -> str:
    return SEVERITY_COLOURS.get(name, PALETTE[i % len(PALETTE)])


def _threshold_colour(spec: PanelSpec, value: Any) -> str | None:
    f = _num(value)
    if f is None or not spec.thresholds:
        return None
    chosen = spec.thresholds[0][1]
    for limit, name in spec.thresholds[1:]:
        if f >= limit:
            chosen = name
    return colour(chosen)


def _series(r: PanelResult) -> dict[str, list[tuple[float, float]]]:
    """Long (time, label, value) or wide (time, v1, v2...) rows as named point lists."""
    types = [c.type for c in r.spec.columns]
    label_idx = next((i for i, t in enumerate(types) if t in ("text", "severity")), None)
    out: dict[str, list[tuple[float, float]]] = {}
    for row in r.rows:
        t = row[0]
        x = t.timestamp() if isinstance(t, datetime) else _num(t)
        if x is None:
            continue
        for i, col in enumerate(r.columns[1:], start=1):
            if i == label_idx or types[i] != "number":
                continue
            y = _num(row[i])
            if y is None:
                continue
            name = str(row[label_idx]) if label_idx is not None else col
            if label_idx is not None and sum(1 for t in types if t == "number") > 1:
                name = f"{name} {col}"
            out.setdefault(name, []).append((x, y))
    return out


def _svg_timeseries(r: PanelResult, start: datetime, end: datetime) -> str:
    series = _series(r)
    if not series:
        return '<p class="empty">no data in range</p>'
    w, h, pad_l, pad_b = 560, 200, 48, 22
    x0, x1 = start.timestamp(), end.timestamp()
    ys = [y for pts in series.values() for _, y in pts]
    y0 = min(0.0, min(ys)) if r.spec.min_val is None else r.spec.min_val
    y1 = max(ys) if r.spec.max_val is None else r.spec.max_val
    if r.spec.stack:
        totals: dict[float, float] = {}
        for pts in series.values():
            for x, y in pts:
                totals[x] = totals.get(x, 0.0) + y
        y1 = max(y1, max(totals.values()))
    y1 = y1 if y1 > y0 else y0 + 1

    def px(x: float) -> float:
        return pad_l + (x - x0) / max(x1 - x0, 1) * (w - pad_l - 4)

    def py(y: float) -> float:
        return 4 + (1 - (y - y0) / (y1 - y0)) * (h - pad_b - 4)

    parts = [
        f'<svg viewBox="0 0 {w} {h}" width="100%" role="img">',
        f'<rect x="{pad_l}" y="4" width="{w - pad_l - 4}" height="{h - pad_b - 4}" '
        'fill="#181b1f" stroke="#2c3235"/>',
    ]
    for frac in (0, 0.5, 1):
        yv = y0 + frac * (y1 - y0)
        parts.append(
            f'<text x="{pad_l - 4}" y="{py(yv) + 4:.1f}" class="ax" '
            f'text-anchor="end">{_axis(yv)}</text>'
        )
    for frac in (0, 0.5, 1):
        xv = x0 + frac * (x1 - x0)
        label = datetime.fromtimestamp(xv, UTC).strftime("%m-%d %H:%M")
        anchor = ("start", "middle", "end")[int(frac * 2)]
        parts.append(
            f'<text x="{px(xv):.1f}" y="{h - 6}" class="ax" text-anchor="{anchor}">{label}</text>'
        )
    for frac, name in r.spec.thresholds[1:]:
        if y0 <= frac <= y1:
            parts.append(
                f'<line x1="{pad_l}" x2="{w - 4}" y1="{py(frac):.1f}" '
                f'y2="{py(frac):.1f}" stroke="{colour(name)}" stroke-dasharray="4 3"/>'
            )
    for i, (name, pts) in enumerate(sorted(series.items())):
        pts.sort()
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        c = _series_colour(name, i)
        if len(pts) == 1:
            x, y = pts[0]
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{c}"/>')
        else:
            parts.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="1.6"/>')
    parts.append("</svg>")
    legend = "".join(
        f'<span class="lg"><i style="background:{_series_colour(n, i)}"></i>{html.escape(n)}</span>'
        for i, n in enumerate(sorted(series))
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def _svg_bars(r: PanelResult) -> str:
    rows = [(str(row[0]), _num(row[1]) or 0.0) for row in r.rows]
    if not rows:
        return '<p class="empty">no data in range</p>'
    w, h, pad_b = 560, 200, 22
    top = max(v for _, v in rows) or 1
    bw = (w - 8) / len(rows)
    parts = [f'<svg viewBox="0 0 {w} {h}" width="100%" role="img">']
    for i, (label, v) in enumerate(rows):
        bh = v / top * (h - pad_b - 16)
        x = 4 + i * bw
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{h - pad_b - bh:.1f}" width="{bw - 4:.1f}" '
            f'height="{bh:.1f}" fill="{_series_colour(label, i)}"/>'
        )
        parts.append(
            f'<text x="{x + bw / 2:.1f}" y="{h - 6}" class="ax" '
            f'text-anchor="middle">{html.escape(label)}</text>'
        )
        parts.append(
            f'<text x="{x + bw / 2:.1f}" y="{h - pad_b - bh - 3:.1f}" class="ax" '
            f'text-anchor="middle">{html.escape(_fmt(v))}</text>'
        )
    return "".join(parts) + "</svg>"


def _stat(r: PanelResult) -> str:
    if not r.rows:
        return '<p class="empty">no data in range</p>'
    row = r.rows[0]
    cells = []
    for name, v in zip(r.columns, row, strict=False):
        bg = SEVERITY_COLOURS.get(name) if r.spec.severity_series else None
        bg = bg or _threshold_colour(r.spec, v)
        style = f"background:{bg}" if bg else "background:#22252b;color:#d8d9da"
        cells.append(
            f'<div class="stat" style="{style}"><b>{html.escape(_fmt(v))}</b>'
            f"<span>{html.escape(name)}</span></div>"
        )
    return '<div class="stats">' + "".join(cells) + "</div>"


def _table(r: PanelResult) -> str:
    if not r.rows:
        return '<p class="empty">no rows in range</p>'
    types = {c.name: c.type for c in r.spec.columns}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in r.columns)
    body = []
    for row in r.rows[:50]:
        tds = []
        for name, v in zip(r.columns, row, strict=False):
            bg = None
            if types.get(name) == "severity":
                bg = SEVERITY_COLOURS.get(str(v))
            elif name == r.spec.color_column:
                bg = _threshold_colour(r.spec, v)
            style = f' style="background:{bg};color:#111"' if bg else ""
            tds.append(f"<td{style}>{html.escape(_fmt(v))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    more = f'<p class="empty">{len(r.rows) - 50} more rows</p>' if len(r.rows) > 50 else ""
    return f'<div class="tw"><table><tr>{head}</tr>{"".join(body)}</table></div>{more}'


def render_panel(r: PanelResult, start: datetime, end: datetime) -> str:
    kind = r.spec.kind
    if r.note:
        inner = f'<p class="empty">{html.escape(r.note)}</p>'
    elif kind == "timeseries":
        inner = _svg_timeseries(r, start, end)
    elif kind == "barchart":
        inner = _svg_bars(r)
    elif kind == "stat":
        inner = _stat(r)
    else:
        inner = _table(r)
    return (
        f'<section class="panel" style="grid-column: span {r.spec.w}">'
        f"<h3>{html.escape(r.spec.title)}</h3>{inner}</section>"
    )


_CSS = """
body{background:#111217;color:#d8d9da;font:13px/1.4 system-ui,sans-serif;margin:16px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px;color:#fff}
h3{font-size:13px;margin:0 0 6px;color:#ccccdc}.meta{color:#8e8e8e}
.board{display:grid;grid-template-columns:repeat(24,1fr);gap:8px}
.panel{background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:8px;min-width:0}
.ax{font-size:10px;fill:#8e8e8e}.legend{font-size:11px}.lg{margin-right:10px}
.lg i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.empty{color:#8e8e8e;font-style:italic}.tw{overflow-x:auto;max-height:320px}
table{border-collapse:collapse;width:100%;font-size:11px}
th,td{border-bottom:1px solid #2c3235;padding:2px 6px;text-align:left;white-space:nowrap}
.stats{display:flex;gap:6px}.stat{flex:1;padding:10px;border-radius:3px;color:#111}
.stat b{display:block;font-size:26px}.sev i{display:inline-block;width:12px;height:12px;
margin:0 4px 0 10px;vertical-align:middle}
"""


def render_html(
    results: Sequence[tuple[BoardSpec, list[PanelResult]]], start: datetime, end: datetime
) -> str:
    """One self-contained page for all boards."""
    sev = "".join(f'<i style="background:{c}"></i>{n}' for n, c in SEVERITY_COLOURS.items())
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>finpulse boards</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>finpulse boards</h1>",
        f'<p class="meta">{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC · '
        f'segment = All · channel = All · <span class="sev">severity{sev}</span></p>',
    ]
    for board, panels in results:
        out.append(f"<h2>{html.escape(board.title)}</h2><div class='board'>")
        out.extend(render_panel(p, start, end) for p in panels)
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out)


def _latest_event(client: Any) -> datetime | None:
    """Just after the newest stored transaction: a replayed or simulated stream is shown where
    its data is; live, this is about now."""
    (latest,) = client.query("SELECT max(ts) FROM transactions").result_rows[0]
    if latest is None or latest.year < 2000:
        return None
    latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
    return latest.astimezone(UTC) + timedelta(minutes=1)


def write_board_html(
    settings: Settings, path: Path | str, end: datetime | None = None, client: Any = None
) -> Path:
    """Render every board against ClickHouse into ``path``; returns the absolute path.

    The range is ``settings.board_range_s`` ending at ``end`` (default: just after the newest
    stored transaction, or now when there is none), with "All" segments and channels.
    """
    from finpulse.sinks.clickhouse import make_client
    from finpulse.sinks.rollups import refresh_rollups

    own = client is None
    client = client or make_client(settings)
    try:
        try:
            refresh_rollups(client, settings.clickhouse_database)
        except Exception as exc:  # e.g. a read-only user: show the rollups as they are
            log.warning("could not refresh the rollups first: %s", exc)
        end = end or _latest_event(client) or datetime.now(UTC)
        start = end - timedelta(seconds=settings.board_range_s)
        interval = choose_interval(start, end)
        results = [
            (b, run_board(client, b, start, end, interval))
            for b in boards(settings.response_target_minutes)
        ]
    finally:
        if own:
            client.close()
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(results, start, end), encoding="utf-8")
    return out


__all__ = ["PanelResult", "choose_interval", "render_html", "run_board", "write_board_html"]
