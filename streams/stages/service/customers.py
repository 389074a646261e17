"""Per-customer service context: activity, contacts, satisfaction, lifecycle and health.

The customer record is a :class:`~finpulse.streams.stages.service.records.ServiceCustomer`
in keyed state (keyed by ``customer_id``, so partition-local), updated once per batch: who the
customer is, first and last seen, events per day (60 days), contacts of the last 24 h, the
last 5 log wait ratios, survey answers, the predicted dissatisfaction, interactions awaiting
their survey (:mod:`finpulse.streams.stages.service.pending`), open complaints, complaint
closes that came first, and the lifecycle stage and status row last written.

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

>>> c = ServiceCustomer()
>>> note_activity(c, 0, "individual", "retail")
>>> lifecycle(c, 0), round(health(0.0, dissatisfaction(c)), 1)
('new', 90.0)
>>> note_contact(c, 1000), note_contact(c, 2000)
(0, 1)
"""

from __future__ import annotations

import math

from finpulse.streams.stages.service.records import RecentRiskAlerts, RiskAlert, ServiceCustomer
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


def note_activity(c: ServiceCustomer, ms: int, customer_type: str, segment: str) -> None:
    """Count one event of the customer at ``ms``."""
    c.customer_type, c.segment = customer_type, segment
    c.first_seen_ms = ms if c.first_seen_ms is None else min(c.first_seen_ms, ms)
    c.last_seen_ms = ms if c.last_seen_ms is None else max(c.last_seen_ms, ms)
    days = c.events_per_day
    day = ms // DAY_MS
    days[day] = days.get(day, 0) + 1
    if len(days) > ACTIVITY_DAYS:
        newest = max(days)
        for d in [d for d in days if d <= newest - ACTIVITY_DAYS]:
            del days[d]


def note_contact(c: ServiceCustomer, ms: int) -> int:
    """Record a service contact at ``ms``; returns the contacts in the 24 h before it."""
    recent = [t for t in c.contact_ms if ms - CONTACT_WINDOW_MS < t <= ms]
    prior = len(recent)
    recent.append(ms)
    c.contact_ms = recent[-50:]
    return prior


def contacts_24h(c: ServiceCustomer, ms: int) -> int:
    """Contacts in the 24 h up to and including ``ms``."""
    return sum(1 for t in c.contact_ms if ms - CONTACT_WINDOW_MS < t <= ms)


def activity(c: ServiceCustomer, now_ms: int) -> tuple[int, int]:
    """Events in the last 30 days and in the 30 days before those."""
    today = now_ms // DAY_MS
    last = prev = 0
    for d, n in c.events_per_day.items():
        age = today - d
        if 0 <= age < NEW_DAYS:
            last += n
        elif NEW_DAYS <= age < 2 * NEW_DAYS:
            prev += n
    return last, prev


def dissatisfaction(c: ServiceCustomer) -> float:
    """0..1: predicted and surveyed dissatisfaction, raised by open complaints."""
    pd = c.predicted_dissatisfaction
    predicted = 0.1 if pd is None else pd
    last = c.last_csat
    d = predicted if last is None else 0.5 * predicted + 0.5 * CSAT_DISSATISFACTION[last]
    return min(1.0, d + 0.15 * len(c.open_complaints))


def lifecycle(c: ServiceCustomer, now_ms: int, counts: tuple[int, int] | None = None) -> str:
    """The lifecycle stage (see module doc); ``counts`` is ``activity(c, now_ms)`` if the
    caller has it."""
    last_seen = now_ms if c.last_seen_ms is None else c.last_seen_ms
    if now_ms - last_seen >= DORMANT_DAYS * DAY_MS:
        return "dormant"
    last, prev = activity(c, now_ms) if counts is None else counts
    falling = prev >= 4 and last < 0.5 * prev
    last_csat = c.last_csat
    pd = c.predicted_dissatisfaction
    dissatisfied = (last_csat is not None and last_csat <= 2) or (pd is not None and pd >= 0.5)
    if falling or (dissatisfied and c.open_complaints):
        return "at_risk"
    first_seen = now_ms if c.first_seen_ms is None else c.first_seen_ms
    if now_ms - first_seen < NEW_DAYS * DAY_MS:
        return "new"
    return "active"


def recent_risk(risks: RecentRiskAlerts | None, now_ms: int) -> list[RiskAlert]:
    """Risk alerts of the 24 h before ``now_ms``."""
    if not risks:
        return []
    return [a for a in risks.alerts if 0 <= now_ms - a.ms <= CONTACT_WINDOW_MS]


def risk_score(alerts: list[RiskAlert], now_ms: int) -> float:
    """0..100: the latest of ``alerts`` (oldest first) scored and decayed over days (0
    without any alert).

    >>> risk_score([RiskAlert(0, "card_testing", "orange", None)], 7 * DAY_MS) < 75 * 0.4
    True
    """
    if not alerts:
        return 0.0
    last = alerts[-1]
    base = float(last.score) if last.score is not None else SEVERITY_SCORE.get(last.severity, 50.0)
    age_days = max(0.0, (now_ms - last.ms) / DAY_MS)
    return min(100.0, base * math.exp(-age_days / RISK_DECAY_DAYS))


def health(risk: float, dissat: float) -> float:
    """Joint health 0..100 (higher is better).

    >>> health(0, 0), health(50, 0.5), health(90, 0.9) < 1.5
    (100.0, 25.0, True)
    """
    return round(100.0 * (1.0 - risk / 100.0) * (1.0 - dissat), 3)


def prune_pending(c: ServiceCustomer, now_ms: int, ttl_ms: int) -> None:
    """Drop interactions whose survey can no longer arrive, keep at most PENDING_MAX."""
    keep = {k: v for k, v in c.awaiting_survey.items() if now_ms - v.scored_ms <= ttl_ms}
    if len(keep) > PENDING_MAX:
        keep = dict(sorted(keep.items(), key=lambda kv: kv[1].scored_ms)[-PENDING_MAX:])
    c.awaiting_survey = keep
