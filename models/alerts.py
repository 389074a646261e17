"""Early-warning contract: severities, what rules and models emit, and the published alert.

Rules and models emit :class:`AlertCandidate` objects; the alert manager
(:mod:`finpulse.streams.stages.alerting`) deduplicates, escalates and routes them into
:class:`Alert` records published on ``finpulse.alerts`` and stored in ClickHouse.

>>> Severity.RED.rank > Severity.BLUE.rank
True
>>> Severity.YELLOW.escalated()
<Severity.ORANGE: 'orange'>
>>> alert_id("large_cash", "customer", "c-1", "2026-01-05")  # doctest: +ELLIPSIS
'al-...'
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from finpulse.models.ids import letter_hex


class Severity(StrEnum):
    """Four early-warning levels, blue < yellow < orange < red."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def escalated(self, steps: int = 1) -> Severity:
        """The severity ``steps`` levels higher, capped at red."""
        return _ORDER[min(self.rank + steps, len(_ORDER) - 1)]


_ORDER = [Severity.BLUE, Severity.YELLOW, Severity.ORANGE, Severity.RED]
_RANK = {s: i for i, s in enumerate(_ORDER)}

SubjectType = Literal["customer", "account", "channel", "complaint", "model", "segment"]
Domain = Literal["risk", "service", "model_health", "compliance"]


def alert_id(rule_id: str, subject_type: str, subject_id: str, window_key: str) -> str:
    """Deterministic alert id: the same (rule, subject, suppression window) gives the same id,
    so a re-delivered event re-creates the same alert instead of a new one."""
    raw = f"{rule_id}|{subject_type}|{subject_id}|{window_key}".encode()
    return "al-" + letter_hex(hashlib.sha1(raw).hexdigest()[:24])


class AlertCandidate(BaseModel):
    """A rule or model firing on one event (before dedup and escalation)."""

    model_config = ConfigDict(frozen=True)

    rule_id: str = Field(description="policy rule id, or model id for model-score alerts")
    domain: Domain = "risk"
    severity: Severity
    subject_type: SubjectType
    subject_id: str
    ts: AwareDatetime = Field(description="event time of the triggering event")
    source_event_id: str | None = None
    score: float | None = Field(None, description="0-100 risk score or model output")
    reason_codes: list[str] = Field(default_factory=list)
    evidence: dict[str, float | str | bool | None] = Field(
        default_factory=dict, description="the values compared with the thresholds"
    )
    model_version: str | None = None
    report_due: date | None = Field(None, description="regulatory report deadline")
    report_calendar: str | None = Field(
        None, description="calendar of report_due: official, or fallback (Monday-Friday)"
    )
    fold_key: str | None = Field(
        None, description="alerts of one rule and subject are kept apart per fold key"
    )
    window_key: str | None = Field(
        None, description="a new value opens a new alert (instead of the suppression window)"
    )
    context: dict[str, float | str | bool | None] = Field(
        default_factory=dict, description="other context, e.g. the service side of a risk alert"
    )
    customer_id: str | None = None
    segment: str | None = None
    channel: str | None = None


class Alert(BaseModel):
    """An early warning as published on ``finpulse.alerts`` (see README for the JSON Schema)."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    status: Literal["new", "escalated", "updated", "silenced"] = Field(
        "new", description="silenced: recorded and counted, not sent (a console silence)"
    )
    rule_id: str
    domain: Domain
    severity: Severity
    subject_type: SubjectType
    subject_id: str
    owner: str = Field(description="team on call for this rule (policy)")
    route: str = Field(description="notifier route, e.g. webhook:risk-oncall")
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    occurrences: int = Field(1, ge=1, description="firings folded into this alert (dedup)")
    source_event_id: str | None = None
    score: float | None = None
    reason_codes: list[str] = Field(default_factory=list)
    evidence: dict[str, float | str | bool | None] = Field(default_factory=dict)
    model_version: str | None = None
    report_due: date | None = None
    report_calendar: str | None = Field(None, description="official | fallback (report_due)")
    context: dict[str, float | str | bool | None] = Field(default_factory=dict)
    customer_id: str | None = None
    segment: str | None = None
    channel: str | None = None
    created_at: datetime | None = Field(None, description="wall-clock time of publication")
