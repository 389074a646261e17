"""Alerts judged the way a fraud on-call team judges them: per case and per customer.

A *case* is one injected pattern instance of the simulator's ground truth (its customer and
its first event's time). :func:`case_report` gives, per pattern,

* ``case_recall_any_alert``: the share of cases whose customer got any risk or compliance
  alert within ``within_s`` (one hour) of the case's first event;
* ``case_recall_any_time``: the same without the time limit (from the first event on);
* the time from a case's first event to its first alert (median, p90, in seconds; nearest
  rank, :mod:`finpulse.streams.core.quantiles`);
* ``case_recall_observable``: the share of cases alerted (from the first event on) within
  ``within_s`` of the moment the case became *observable* (the ground truth's
  ``observable_ts``, else its first event): a mule's second new payer, a structuring case's
  second transaction just under the threshold, a large-value case's crossing transaction.
  Before that a case is one ordinary-looking payment, which no monitor can tell apart;

and over the run the share of clean customers (no injected pattern) with any alert, and the
precision of the alerts at each severity (an alert is right when its customer has a case
that started before it and ended at most ``after_s`` (24 h) before it).

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 1, 5, tzinfo=UTC)
>>> case = {"pattern": "mule", "customer_id": "c1", "start_ts": t0.isoformat(),
...         "end_ts": (t0 + timedelta(hours=2)).isoformat()}
>>> alerts = [Alert("c1", t0 + timedelta(minutes=20), "red"),
...           Alert("c9", t0, "yellow")]
>>> r = case_report([case], alerts, clean={"c8", "c9"})
>>> r["patterns"]["mule"]["case_recall_any_alert"], r["patterns"]["mule"]["time_to_alert_s"]
(1.0, {'median': 1200.0, 'p90': 1200.0})
>>> late = {**case, "customer_id": "c2", "observable_ts": (t0 + timedelta(hours=2)).isoformat()}
>>> m = case_report([late], [Alert("c2", t0 + timedelta(minutes=150), "red")], set())
>>> m["patterns"]["mule"]["case_recall_any_alert"], m["patterns"]["mule"]["case_recall_observable"]
(0.0, 1.0)
>>> r["clean_customer_alert_rate"], r["precision_by_severity"]
(0.5, {'red': {'alerts': 1, 'precision': 1.0}, 'yellow': {'alerts': 1, 'precision': 0.0}})
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from finpulse.streams.core.quantiles import percentile

ALERT_DOMAINS = ("risk", "compliance")  # fraud and AML alerts; service alerts are apart


class Alert(NamedTuple):
    """One alert a team is told about: whose, when (event time), how severe."""

    customer_id: str
    ts: datetime
    severity: str


def _case_start(case: Mapping[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(case["start_ts"]), datetime.fromisoformat(case["end_ts"])


def _observable(case: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(case.get("observable_ts") or case["start_ts"])


def case_report(
    cases: Sequence[Mapping[str, Any]],
    firings: Iterable[Alert],
    clean: set[str],
    alerts: Iterable[Alert] | None = None,
    within_s: float = 3600.0,
    after_s: float = 86_400.0,
) -> dict[str, Any]:
    """Per-pattern case recall and time to alert, clean-customer alert rate (from every
    rule or score ``firings``), precision per severity (of the ``alerts`` raised from them
    after suppression; the firings if not given). See module doc."""
    firings = list(firings)
    by_customer: dict[str, list[Alert]] = defaultdict(list)
    for a in firings:
        by_customer[a.customer_id].append(a)
    for v in by_customer.values():
        v.sort(key=lambda a: a.ts)
    patterns: dict[str, Any] = {}
    for pattern in sorted({str(c["pattern"]) for c in cases}):
        delays: list[float] = []
        n = in_time = seen_in_time = 0
        for case in cases:
            if case["pattern"] != pattern:
                continue
            n += 1
            start, _ = _case_start(case)
            first = next(
                (a for a in by_customer.get(case["customer_id"], ()) if a.ts >= start), None
            )
            if first is not None:
                delay = (first.ts - start).total_seconds()
                delays.append(delay)
                in_time += delay <= within_s
                seen_in_time += (first.ts - _observable(case)).total_seconds() <= within_s
        delays.sort()
        patterns[pattern] = {
            "cases": n,
            "case_recall_any_alert": round(in_time / n, 4),
            "case_recall_any_time": round(len(delays) / n, 4),
            "case_recall_observable": round(seen_in_time / n, 4),
            "time_to_alert_s": {
                "median": percentile(delays, 0.5) if delays else None,
                "p90": percentile(delays, 0.9) if delays else None,
            },
        }
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for case in cases:
        spans[case["customer_id"]].append(_case_start(case))
    right: dict[str, list[bool]] = defaultdict(list)
    for a in firings if alerts is None else alerts:
        ok = any(
            s <= a.ts and (a.ts - e).total_seconds() <= after_s for s, e in spans[a.customer_id]
        )
        right[a.severity].append(ok)
    return {
        "patterns": patterns,
        "clean_customers": len(clean),
        "clean_customer_alert_rate": round(len(clean & set(by_customer)) / len(clean), 4)
        if clean
        else None,
        "precision_by_severity": {
            s: {"alerts": len(v), "precision": round(sum(v) / len(v), 4)}
            for s, v in sorted(right.items())
        },
    }
