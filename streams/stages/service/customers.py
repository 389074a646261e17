"""Per-customer service context: activity, contacts, satisfaction, lifecycle and health.

The customer record is a small JSON-able dict in keyed state (keyed by ``customer_id``, so
partition-local), updated once per batch:

======  ===============================================================
``ct``  customer type, ``sg`` segment
``f``   first seen (event ms), ``l`` last seen
``dy``  events per day index, last 60 days
``cn``  contact times within the last 24 h
``wt``  log wait ratios of the last 5 contacts (4 decimals)
``cs``  [sum, n] of survey answers, ``lc`` last answer
``pd``  moving average of the predicted P(dissatisfied)
``pe``  interactions waiting for a survey: event_id -> [ms, x, yhat, p, channel]
        (x and channel encoded, :mod:`finpulse.streams.stages.service.pending`)
``cm``  open complaints: complaint_id -> [open day, [interaction event ids]]
``st``  lifecycle stage last written, ``v`` row version
======  ===============================================================

Lifecycle stage, from activity in event time (``now`` = the customer's latest event):

* **dormant**: no activity for 60 days (only the ClickHouse view ``customer_lifecycle``
  can see this, since a dormant customer sends no events that would rewrite the row);
* **at_risk**: activity falling (at least 4 events in the previous 30 days and fewer than
  half as many in the last 30), or dissatisfied (last CSAT <= 2 or predicted P >= 0.5)
  with an open complaint;
* **new**: first seen less than 30 days ago;
* **active**: otherwise.

Health (0-100, higher is better) joins both sides: ``100 * (1 - risk/100) * (1 - d)``,
with ``risk`` the score of the customer's latest risk alert decayed with a 7-day time
constant and ``d`` the dissatisfaction (predicted and surveyed, +0.15 per open complaint).

>>> c = {}
>>> note_activity(c, 0, "individual", "retail")
>>> lifecycle(c, 0), round(health(0.0, dissatisfaction(c)), 1)
('new', 90.0)
>>> note_contact(c, 1000), note_contact(c, 2000)
(0, 1)
"""

from __future__ import annotations

import math
from typing import Any

from finpulse.streams.stages.service.windows import DAY_MS

NEW_DAYS = 30
DORMANT_DAYS = 60
ACTIVITY_DAYS = 60
RISK_DECAY_DAYS = 7.0
CONTACT_WINDOW_MS = DAY_MS
RECENT_WAITS = 5
PENDING_MAX = 10
SEVERITY_SCORE = {"blue": 25.0, "yellow": 50.0, "orange": 75.0, "red": 90.0}
# what a survey answer says about dissatisfaction (0..1)
CSAT_DISSATISFACTION = {1: 1.0, 2: 0.8, 3: 0.4, 4: 0.1, 5: 0.0}
LIFECYCLE_STAGES = ("new", "active", "at_risk", "dormant")


def note_activity(c: dict[str, Any], ms: int, customer_type: str, segment: str) -> None:
    """Count one event of the customer at ``ms``."""
    c["ct"], c["sg"] = customer_type, segment
    c["f"] = min(c.get("f", ms), ms)
    c["l"] = max(c.get("l", ms), ms)
    days: dict[str, int] = c.setdefault("dy", {})
    day = ms // DAY_MS
    key = str(day)
    days[key] = days.get(key, 0) + 1
    if len(days) > ACTIVITY_DAYS:
        newest = max(int(d) for d in days)
        for d in [d for d in days if int(d) <= newest - ACTIVITY_DAYS]:
            del days[d]


def note_contact(c: dict[str, Any], ms: int) -> int:
    """Record a service contact at ``ms``; returns the contacts in the 24 h before it."""
    recent = [t for t in c.get("cn", []) if ms - CONTACT_WINDOW_MS < t <= ms]
    prior = len(recent)
    recent.append(ms)
    c["cn"] = recent[-50:]
    return prior


def contacts_24h(c: dict[str, Any], ms: int) -> int:
    """Contacts in the 24 h up to and including ``ms``."""
    return sum(1 for t in c.get("cn", []) if ms - CONTACT_WINDOW_MS < t <= ms)


def activity(c: dict[str, Any], now_ms: int) -> tuple[int, int]:
    """Events in the last 30 days and in the 30 days before those."""
    today = now_ms // DAY_MS
    last = prev = 0
    for d, n in c.get("dy", {}).items():
        age = today - int(d)
        if 0 <= age < NEW_DAYS:
            last += n
        elif NEW_DAYS <= age < 2 * NEW_DAYS:
            prev += n
    return last, prev


def dissatisfaction(c: dict[str, Any]) -> float:
    """0..1: predicted and surveyed dissatisfaction, raised by open complaints."""
    predicted = float(c.get("pd", 0.1))
    last = c.get("lc")
    d = predicted if last is None else 0.5 * predicted + 0.5 * CSAT_DISSATISFACTION[int(last)]
    return min(1.0, d + 0.15 * len(c.get("cm", {})))


def lifecycle(c: dict[str, Any], now_ms: int, counts: tuple[int, int] | None = None) -> str:
    """The lifecycle stage (see module doc); ``counts`` is ``activity(c, now_ms)`` if the
    caller has it."""
    if now_ms - c.get("l", now_ms) >= DORMANT_DAYS * DAY_MS:
        return "dormant"
    last, prev = activity(c, now_ms) if counts is None else counts
    falling = prev >= 4 and last < 0.5 * prev
    last_csat = c.get("lc")
    dissatisfied = (last_csat is not None and last_csat <= 2) or float(c.get("pd", 0.0)) >= 0.5
    if falling or (dissatisfied and c.get("cm")):
        return "at_risk"
    if now_ms - c.get("f", now_ms) < NEW_DAYS * DAY_MS:
        return "new"
    return "active"


def recent_risk(risks: dict[str, Any] | None, now_ms: int) -> list[list[Any]]:
    """Risk alerts ``[ms, rule_id, severity, score]`` of the 24 h before ``now_ms``."""
    if not risks:
        return []
    return [a for a in risks.get("a", []) if 0 <= now_ms - a[0] <= CONTACT_WINDOW_MS]


def risk_score(risks: dict[str, Any] | None, now_ms: int) -> float:
    """0..100: the latest risk alert's score decayed over days (0 without any alert).

    >>> risk_score({"a": [[0, "card_testing", "orange", None]]}, 7 * DAY_MS) < 75 * 0.4
    True
    """
    if not risks or not risks.get("a"):
        return 0.0
    ms, _rule, severity, score = risks["a"][-1]
    base = float(score) if score is not None else SEVERITY_SCORE.get(severity, 50.0)
    age_days = max(0.0, (now_ms - ms) / DAY_MS)
    return min(100.0, base * math.exp(-age_days / RISK_DECAY_DAYS))


def health(risk: float, dissat: float) -> float:
    """Joint health 0..100 (higher is better).

    >>> health(0, 0), health(50, 0.5), health(90, 0.9) < 1.5
    (100.0, 25.0, True)
    """
    return round(100.0 * (1.0 - risk / 100.0) * (1.0 - dissat), 3)


def prune_pending(c: dict[str, Any], now_ms: int, ttl_ms: int) -> None:
    """Drop interactions whose survey can no longer arrive, keep at most PENDING_MAX."""
    pending: dict[str, list[Any]] = c.get("pe", {})
    keep = {k: v for k, v in pending.items() if now_ms - v[0] <= ttl_ms}
    if len(keep) > PENDING_MAX:
        keep = dict(sorted(keep.items(), key=lambda kv: kv[1][0])[-PENDING_MAX:])
    c["pe"] = keep
