"""The large-value report register: one ClickHouse row per report, from its alert.

A large-value report rule's alert (``report: large_value`` in the policy) carries the
report in its evidence (see :class:`~finpulse.streams.stages.rules.RuleEngine`); each
version of the alert (a later transaction of the day folded in) rewrites the report's row
with a higher ``version``. The report id is the alert id: deterministic, so a replay
writes the same row.

>>> from datetime import UTC, date, datetime
>>> ts = datetime(2026, 3, 2, 1, tzinfo=UTC)
>>> alert = Alert(alert_id="al-x", rule_id="large_value.cash", domain="compliance",
...     severity="orange", subject_type="customer", subject_id="c-1", owner="aml",
...     route="webhook:aml", first_seen=ts, last_seen=ts, occurrences=2,
...     report_due=date(2026, 3, 9), report_calendar="official", customer_id="c-1",
...     segment="retail", evidence={"criterion": "cash", "article": "Art. 5(1)",
...     "direction": "credit", "currency_class": "rmb", "report_day": "2026-03-02",
...     "total": 55000.0, "threshold": 50000.0, "transactions": 2,
...     "transaction_ids": "t-1 t-2", "account_ids": "acct:a", "customer_type": "individual"})
>>> row = dict(zip(LARGE_VALUE_REPORTS_TABLE.columns, report_row(alert)))
>>> row["report_day"], row["transaction_ids"], row["total"], row["version"]
(datetime.date(2026, 3, 2), ['t-1', 't-2'], Decimal('55000.00'), 2)
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from finpulse.models.alerts import Alert
from finpulse.sinks.tables import LARGE_VALUE_REPORTS_TABLE

_CENT = Decimal("0.01")


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(_CENT)


def report_row(alert: Alert) -> tuple[Any, ...]:
    """The register row of a large-value report alert (columns of the table's order)."""
    ev = alert.evidence
    row = {
        "report_id": alert.alert_id,
        "report_day": date.fromisoformat(str(ev["report_day"])),
        "customer_id": alert.customer_id or alert.subject_id,
        "customer_type": ev.get("customer_type") or "",
        "segment": alert.segment or "",
        "criterion": ev["criterion"],
        "article": ev["article"],
        "direction": ev["direction"],
        "currency_class": ev["currency_class"],
        "total": _money(ev["total"]),
        "threshold": _money(ev["threshold"]),
        "transaction_count": int(ev["transactions"] or 0),
        "transaction_ids": str(ev["transaction_ids"] or "").split(),
        "account_ids": str(ev["account_ids"] or "").split(),
        "first_seen": alert.first_seen,
        "last_seen": alert.last_seen,
        "report_due": alert.report_due,
        "calendar": alert.report_calendar or "",
        "alert_id": alert.alert_id,
        "version": alert.occurrences,
    }
    return tuple(row[c] for c in LARGE_VALUE_REPORTS_TABLE.columns)
