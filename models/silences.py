"""Silences: a rule quiet for one subject, or for every subject, until a given time.

The alert manager asks :meth:`Silences.silencing` before it sends an alert; a silenced alert
is recorded and counted, not sent. Silences are judged on the wall clock when the alert
would be sent (as Alertmanager does), and they end by themselves.

>>> from datetime import datetime, timedelta, UTC
>>> t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
>>> s = Silences()
>>> s.add(Silence("ac-1", "large_cash_single", "c-1", t0, t0 + timedelta(hours=2)))
>>> s.silencing("large_cash_single", "c-1", t0 + timedelta(hours=1)).action_id
'ac-1'
>>> s.silencing("large_cash_single", "c-2", t0) is None  # another subject
True
>>> s.silencing("large_cash_single", "c-1", t0 + timedelta(hours=2)) is None  # expired
True
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from finpulse.models.actions import ActionKind, AlertAction


@dataclass(frozen=True)
class Silence:
    """``rule_id`` quiet for ``subject_id`` (``None``: every subject) in [starts, ends)."""

    action_id: str
    rule_id: str
    subject_id: str | None
    starts: datetime
    ends: datetime

    @classmethod
    def of(cls, action: AlertAction) -> Silence | None:
        """The silence an action sets, or ``None`` (not a silence)."""
        if action.action is not ActionKind.SILENCE or action.silence_until is None:
            return None
        return cls(
            action.action_id, action.rule_id, action.subject_id, action.ts, action.silence_until
        )


class Silences:
    """The silences known to a worker, by rule (every worker holds all of them)."""

    def __init__(self) -> None:
        self._by_rule: dict[str, dict[str, Silence]] = defaultdict(dict)

    def add(self, silence: Silence) -> None:
        """Add a silence (the same action twice is one silence)."""
        self._by_rule[silence.rule_id][silence.action_id] = silence

    def __len__(self) -> int:
        return sum(len(s) for s in self._by_rule.values())

    def silencing(self, rule_id: str, subject_id: str, now: datetime) -> Silence | None:
        """The silence in force for ``(rule_id, subject_id)`` at ``now``, or ``None``.
        Silences ended before ``now`` are forgotten."""
        rule = self._by_rule.get(rule_id)
        if not rule:
            return None
        found = None
        for key, s in list(rule.items()):
            if s.ends <= now:
                del rule[key]
            elif s.starts <= now and s.subject_id in (None, subject_id):
                found = s
        return found
