"""The alert manager: deduplicate, escalate and publish early warnings.

Runs last in the pipeline. For each (rule, subject) it keeps one open alert per
suppression window (event time, so replays give the same result):

* the first firing opens an alert with a deterministic id and publishes it (``new``);
* later firings inside the window are folded in (``occurrences`` counted, not re-sent);
* every ``escalate_every`` repeats raise the severity one level (up to ``max_severity``),
  and a severity above what was last sent publishes the alert again (``escalated``);
* an alert that would be sent while a silence covers its rule and subject
  (:mod:`finpulse.models.silences`, fed from ``finpulse.alert_actions``) is recorded with
  status ``silenced`` and counted, not sent; the next firing after the silence ends is sent;
* a re-delivered event is never folded twice: the pipeline's one re-delivery guard skips
  it before any stage sees it, and this state is committed with that guard.

A candidate with a ``fold_key`` is folded apart from the subject's others (a large-value
report: per direction and currency class); one with a ``window_key`` (its CST day) opens a
new alert when that key changes instead of when the suppression window ends. A candidate
of an earlier window than the open alert's (a late event) makes an alert of its own
without touching the open one.

Every change is written to the ClickHouse ``alerts`` table (one row per alert id,
latest version wins), and for a large-value report rule to the report register
(:mod:`finpulse.streams.stages.report_register`); new and escalated alerts go to
``finpulse.alerts``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import msgspec

from finpulse.config.policy import Policy
from finpulse.models.alerts import Alert, AlertCandidate, Severity, alert_id
from finpulse.models.silences import Silences
from finpulse.sinks.tables import ALERTS_TABLE, LARGE_VALUE_REPORTS_TABLE
from finpulse.streams.core.batch import BatchOutput, KeyedState, Outgoing, Valid
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import ALERTS
from finpulse.streams.stages.report_register import report_row

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
    window: str | None = None  # a windowed rule's window (e.g. the CST day of a report)

    @classmethod
    def from_legacy(cls, old: dict[str, Any]) -> AlertState:
        """The record of the previous release (a JSON object with short keys)."""
        return cls(
            old["id"], old["first"], old["until"], old["n"], old["sev"], old["sent"], old.get("w")
        )


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
    kinds: ClassVar[frozenset[str]] = frozenset(
        {
            "transaction",
            "interaction",
            "feedback",
            "channel_minute",
            "model_detection",
            "model_input_minute",
        }
    )
    state_names: ClassVar[tuple[str, ...]] = (STATE_NAME,)

    def __init__(
        self,
        policy: Policy,
        state: KeyedState,
        silences: Silences | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.policy = policy
        self.state = state
        self.silences = silences if silences is not None else Silences()
        self.clock = clock
        self.published = 0
        self.suppressed = 0
        self.silenced = 0

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        if not out.candidates:
            return
        records = {ev.event_id: rec for ev, rec in batch}  # type: ignore[attr-defined]
        fallback = batch[0][1]
        by_key: dict[str, list[AlertCandidate]] = defaultdict(list)
        for cand in out.candidates:
            key = f"{cand.rule_id}|{cand.subject_type}|{cand.subject_id}"
            by_key[f"{key}|{cand.fold_key}" if cand.fold_key else key].append(cand)
        rows, reports = [], []
        for key, cands in by_key.items():
            cands.sort(key=lambda c: c.ts)
            record = records.get(cands[-1].source_event_id or "", fallback)
            for alert in self._fold(key, cands, record, out):
                rows.append(alert_row(alert))
                if self.policy.rule(alert.rule_id).report == "large_value":
                    reports.append(report_row(alert))
        out.add_rows(ALERTS_TABLE, rows)
        out.add_rows(LARGE_VALUE_REPORTS_TABLE, reports)

    def _fold(
        self, key: str, cands: list[AlertCandidate], record: RawRecord, out: BatchOutput
    ) -> list[Alert]:
        """Fold the candidates of one key; returns the latest version of each alert touched."""
        rule = self.policy.rule(cands[0].rule_id)
        window = timedelta(minutes=rule.suppression_minutes)
        st: AlertState | None = self.state.get(key, partition=record.partition)
        latest: dict[str, Alert] = {}
        changed = False
        for cand in cands:
            own = st
            if cand.window_key is not None:
                if st is not None and cand.window_key < (st.window or ""):  # a late event
                    own = None
                elif st is None or cand.window_key != st.window:
                    own = st = None
            elif st is not None and cand.ts >= datetime.fromisoformat(st.until):
                own = st = None
            if own is None:
                subject = f"{cand.subject_id}|{cand.fold_key}" if cand.fold_key else cand.subject_id
                own = AlertState(
                    alert_id=alert_id(
                        rule.id, cand.subject_type, subject, cand.window_key or cand.ts.isoformat()
                    ),
                    first_seen=cand.ts.isoformat(),
                    until=(cand.ts + window).isoformat(),
                    severity=cand.severity.value,
                    window=cand.window_key,
                )
                if st is None:
                    st = own
            own.occurrences += 1
            n = own.occurrences
            severity = max(Severity(own.severity), cand.severity, key=lambda s: s.rank)
            if rule.escalate_every and n > 1 and (n - 1) % rule.escalate_every == 0:
                severity = severity.escalated()
            if severity.rank > rule.max_severity.rank:
                severity = max(rule.max_severity, cand.severity, key=lambda s: s.rank)
            own.severity = severity.value
            sent = Severity(own.sent_severity) if own.sent_severity else None
            status = (
                "new" if sent is None else ("escalated" if severity.rank > sent.rank else "updated")
            )
            if status in ("new", "escalated") and self.silences.silencing(
                rule.id, cand.subject_id, self.clock()
            ):
                status = "silenced"
                self.silenced += 1
            alert = latest[own.alert_id] = self._alert(own, rule, cand, severity, status)
            if status in ("new", "escalated"):
                own.sent_severity = severity.value
                out.messages.append(
                    Outgoing(ALERTS, alert.alert_id.encode(), alert.model_dump_json().encode())
                )
                self.published += 1
            elif status != "silenced":
                self.suppressed += 1
            changed = True
        if changed:
            self.state.put(key, st, record)
        return list(latest.values())

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
            report_calendar=cand.report_calendar,
            context=cand.context,
            customer_id=cand.customer_id,
            segment=cand.segment,
            channel=cand.channel,
            created_at=datetime.now(UTC),
        )
