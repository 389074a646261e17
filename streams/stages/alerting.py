"""The alert manager: deduplicate, escalate and publish early warnings.

Runs last in the pipeline. For each (rule, subject) it keeps one open alert per
suppression window (event time, so replays give the same result):

* the first firing opens an alert with a deterministic id and publishes it (``new``);
* later firings inside the window are folded in (``occurrences`` counted, not re-sent);
* every ``escalate_every`` repeats raise the severity one level (up to ``max_severity``),
  and a severity above what was last sent publishes the alert again (``escalated``);
* a re-delivered event is never folded twice: the pipeline's one re-delivery guard skips
  it before any stage sees it, and this state is committed with that guard.

Every change is written to the ClickHouse ``alerts`` table (one row per alert id,
latest version wins); new and escalated alerts go to ``finpulse.alerts``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import msgspec

from finpulse.config.policy import Policy
from finpulse.models.alerts import Alert, AlertCandidate, Severity, alert_id
from finpulse.sinks.tables import ALERTS_TABLE
from finpulse.streams.core.batch import BatchOutput, KeyedState, Outgoing, Valid
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import ALERTS

log = logging.getLogger(__name__)

STATE_NAME = "alert_state"


class AlertState(msgspec.Struct, array_like=True):
    """The open alert of one (rule, subject): its window and what was sent. Times are
    ISO 8601 text, so an alert restored from the changelog keeps its events' offsets."""

    alert_id: str
    first_seen: str
    until: str  # end of the suppression window
    occurrences: int = 0
    severity: str = "blue"
    sent_severity: str | None = None  # the severity last published; None: not yet

    @classmethod
    def from_legacy(cls, old: dict[str, Any]) -> AlertState:
        """The record of the previous release (a JSON object with short keys)."""
        return cls(old["id"], old["first"], old["until"], old["n"], old["sev"], old["sent"])


def alert_row(alert: Alert) -> tuple[Any, ...]:
    """The ``alerts`` table row of an alert (evidence and context as JSON text)."""
    d = alert.model_dump(mode="python")
    d["severity"] = alert.severity.value
    d["severity_rank"] = alert.severity.rank
    d["suppressed"] = alert.occurrences - 1
    d["evidence"] = json.dumps(alert.evidence, sort_keys=True, default=str)
    d["context"] = json.dumps(alert.context, sort_keys=True, default=str)
    return tuple(d[c] for c in ALERTS_TABLE.columns)


class AlertStage:
    """Folds ``out.candidates`` into alerts; see the module docstring."""

    name: ClassVar[str] = "alerting"
    kinds: ClassVar[frozenset[str]] = frozenset({"transaction", "interaction", "feedback"})
    state_names: ClassVar[tuple[str, ...]] = (STATE_NAME,)

    def __init__(self, policy: Policy, state: KeyedState) -> None:
        self.policy = policy
        self.state = state
        self.published = 0
        self.suppressed = 0

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        if not out.candidates:
            return
        records = {ev.event_id: rec for ev, rec in batch}  # type: ignore[attr-defined]
        fallback = batch[0][1]
        by_key: dict[str, list[AlertCandidate]] = defaultdict(list)
        for cand in out.candidates:
            by_key[f"{cand.rule_id}|{cand.subject_type}|{cand.subject_id}"].append(cand)
        rows = []
        for key, cands in by_key.items():
            cands.sort(key=lambda c: c.ts)
            record = records.get(cands[-1].source_event_id or "", fallback)
            alert = self._fold(key, cands, record, out)
            if alert is not None:
                rows.append(alert_row(alert))
        out.add_rows(ALERTS_TABLE, rows)

    def _fold(
        self, key: str, cands: list[AlertCandidate], record: RawRecord, out: BatchOutput
    ) -> Alert | None:
        rule = self.policy.rule(cands[0].rule_id)
        window = timedelta(minutes=rule.suppression_minutes)
        st: AlertState | None = self.state.get(key)
        latest: Alert | None = None
        changed = False
        for cand in cands:
            if st is None or cand.ts >= datetime.fromisoformat(st.until):
                st = AlertState(
                    alert_id=alert_id(
                        rule.id, cand.subject_type, cand.subject_id, cand.ts.isoformat()
                    ),
                    first_seen=cand.ts.isoformat(),
                    until=(cand.ts + window).isoformat(),
                    severity=cand.severity.value,
                )
            st.occurrences += 1
            n = st.occurrences
            severity = max(Severity(st.severity), cand.severity, key=lambda s: s.rank)
            if rule.escalate_every and n > 1 and (n - 1) % rule.escalate_every == 0:
                severity = severity.escalated()
            if severity.rank > rule.max_severity.rank:
                severity = max(rule.max_severity, cand.severity, key=lambda s: s.rank)
            st.severity = severity.value
            sent = Severity(st.sent_severity) if st.sent_severity else None
            status = (
                "new" if sent is None else ("escalated" if severity.rank > sent.rank else "updated")
            )
            latest = self._alert(st, rule, cand, severity, status)
            if status in ("new", "escalated"):
                st.sent_severity = severity.value
                out.messages.append(
                    Outgoing(ALERTS, latest.alert_id.encode(), latest.model_dump_json().encode())
                )
                self.published += 1
            else:
                self.suppressed += 1
            changed = True
        if changed:
            self.state.put(key, st, record)
        return latest

    def _alert(
        self, st: AlertState, rule: Any, cand: AlertCandidate, severity: Severity, status: str
    ) -> Alert:
        return Alert(
            alert_id=st.alert_id,
            status=status,
            rule_id=rule.id,  # type: ignore[arg-type]
            domain=cand.domain,
            severity=severity,
            subject_type=cand.subject_type,
            subject_id=cand.subject_id,
            owner=rule.owner,
            route=f"{rule.route}:{rule.owner}",
            first_seen=datetime.fromisoformat(st.first_seen),
            last_seen=cand.ts,
            occurrences=st.occurrences,
            source_event_id=cand.source_event_id,
            score=cand.score,
            reason_codes=cand.reason_codes,
            evidence=cand.evidence,
            model_version=cand.model_version,
            report_due=cand.report_due,
            context=cand.context,
            customer_id=cand.customer_id,
            segment=cand.segment,
            channel=cand.channel,
            created_at=datetime.now(UTC),
        )
