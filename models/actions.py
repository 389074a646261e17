"""What on-call staff do with an alert: the ``finpulse.alert_actions`` contract.

Every action is one event (who, when, what, why) on ``finpulse.alert_actions`` and one row in
ClickHouse, so every change is auditable and replayable. Its id is derived from the form that
produced it, so submitting the same form twice records one action.

A verdict on a transaction alert also labels the transaction for the risk model
(:func:`verdict_feedback`):

>>> from datetime import datetime, UTC
>>> a = AlertAction(action_id="ac-1", ts=datetime(2026, 1, 5, tzinfo=UTC), actor="ana",
...     action="confirm_fraud", alert_id="al-1", rule_id="model.risk_score",
...     owner="fraud-ops", severity="red", subject_type="customer", subject_id="c-1",
...     customer_id="c-1", source_event_id="t-9", reason="card reported stolen")
>>> fb = verdict_feedback(a)
>>> fb.kind.value, fb.ref_event_id, fb.event_id
('fraud_confirmed', 't-9', 'fb-ac-1')
>>> a.state
'resolved'
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from finpulse.models.events import Feedback, FeedbackKind
from finpulse.models.ids import letter_hex


class ActionKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    RESOLVE = "resolve"
    CONFIRM_FRAUD = "confirm_fraud"
    CLEAR = "clear"
    SILENCE = "silence"


# The alert's state after each action (a silence leaves it as it was).
STATES: dict[ActionKind, str] = {
    ActionKind.ACKNOWLEDGE: "acknowledged",
    ActionKind.ASSIGN: "assigned",
    ActionKind.RESOLVE: "resolved",
    ActionKind.CONFIRM_FRAUD: "resolved",
    ActionKind.CLEAR: "resolved",
    ActionKind.SILENCE: "",
}
VERDICTS: dict[ActionKind, FeedbackKind] = {
    ActionKind.CONFIRM_FRAUD: FeedbackKind.FRAUD_CONFIRMED,
    ActionKind.CLEAR: FeedbackKind.FRAUD_CLEARED,
}
REASON_MAX = 500


def _plain_text(value: str) -> str:
    """Printable text only: no control characters (newlines and tabs allowed)."""
    if any(ord(c) < 32 and c not in "\n\t" for c in value) or "\x7f" in value:
        raise ValueError("control characters are not allowed")
    return value


PlainText = Annotated[str, Field(max_length=REASON_MAX), AfterValidator(_plain_text)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]


def action_id(alert_id: str, actor: str, action: str, nonce: str) -> str:
    """Deterministic id of the action a form produced: a re-submitted form (same ``nonce``)
    gives the same id, so it is recorded once.

    >>> a = action_id("al-1", "ana", "acknowledge", "n1")
    >>> a == action_id("al-1", "ana", "acknowledge", "n1")
    True
    >>> a == action_id("al-1", "bob", "acknowledge", "n1")
    False
    """
    raw = f"{alert_id}|{actor}|{action}|{nonce}".encode()
    return "ac-" + letter_hex(hashlib.sha1(raw).hexdigest()[:24])


class AlertAction(BaseModel):
    """One action on one alert, as published on ``finpulse.alert_actions``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: str
    ts: AwareDatetime = Field(description="when it was done (wall clock)")
    actor: Name = Field(description="the console account that did it")
    action: ActionKind
    alert_id: str
    rule_id: str
    owner: str = Field(description="the team that owns the alert's rule")
    severity: str
    subject_type: str
    subject_id: str | None = Field(
        description="the alert's subject; for a silence, None silences the whole rule"
    )
    customer_id: str | None = None
    source_event_id: str | None = Field(None, description="the event the alert is about")
    assignee: Name | None = None
    reason: PlainText = ""
    silence_until: AwareDatetime | None = Field(None, description="end of a silence")

    @property
    def state(self) -> str:
        """The alert's state after this action ('' for a silence)."""
        return STATES[self.action]


def verdict_feedback(action: AlertAction) -> Feedback | None:
    """The fraud label a verdict puts on ``finpulse.feedback``, or ``None`` (not a verdict, or
    the alert names no transaction)."""
    kind = VERDICTS.get(action.action)
    if kind is None or not action.source_event_id or not action.customer_id:
        return None
    return Feedback(
        event_id=f"fb-{action.action_id}",
        ts=action.ts,
        customer_id=action.customer_id,
        kind=kind,
        ref_event_id=action.source_event_id,
    )


def action_row(action: AlertAction) -> dict[str, object]:
    """The ``alert_actions`` row of an action (column -> value)."""
    d = action.model_dump(mode="python")
    d["action"] = action.action.value
    d["state"] = action.state
    return d
