"""``finpulse reports large-value``: one CST day's large-value reports for the compliance team.

Reads the report register (``large_value_reports``, latest version of each report) and
writes CSV with a header row naming every field, or JSON (one object per report). The
transaction and account id lists are space-separated in CSV.

>>> import io
>>> out = io.StringIO()
>>> write_reports([{"report_id": "al-x", "transaction_ids": ["t-1", "t-2"]}], "csv", out,
...               fields=("report_id", "transaction_ids"))
>>> out.getvalue().splitlines()
['report_id,transaction_ids', 'al-x,t-1 t-2']
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import date
from typing import IO, Any

from finpulse.config.settings import Settings
from finpulse.sinks.tables import LARGE_VALUE_REPORTS_TABLE

FIELDS: tuple[str, ...] = LARGE_VALUE_REPORTS_TABLE.columns


def day_reports(settings: Settings, day: date, client: Any = None) -> list[dict[str, Any]]:
    """The reports of CST ``day``, ordered by criterion, customer and direction."""
    from finpulse.sinks.clickhouse import make_client

    own = client is None
    client = make_client(settings) if own else client
    try:
        result = client.query(
            f"SELECT {', '.join(FIELDS)} FROM {settings.clickhouse_database}."
            f"{LARGE_VALUE_REPORTS_TABLE.name} FINAL WHERE report_day = {{day:Date}} "
            "ORDER BY criterion, customer_id, direction, currency_class",
            parameters={"day": day},
        )
        return [dict(zip(FIELDS, row, strict=True)) for row in result.result_rows]
    finally:
        if own:
            client.close()


def _text(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    if value is None:
        return ""
    return str(value) if not isinstance(value, int) else value


def write_reports(
    reports: list[dict[str, Any]], fmt: str, out: IO[str], fields: Sequence[str] = FIELDS
) -> None:
    """Write ``reports`` as ``csv`` (header row first) or ``json``."""
    if fmt == "json":
        rows = [{f: r.get(f) for f in fields} for r in reports]
        json.dump(rows, out, default=str, indent=1)
        out.write("\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for r in reports:
        writer.writerow([_text(r.get(f)) for f in fields])
