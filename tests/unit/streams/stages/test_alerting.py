"""Alert manager: dedup per (subject, rule) in the window, escalation, idempotence.

Event time is the clock, so these tests set timestamps explicitly (a fake clock).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from finpulse.config.policy import parse_policy
from finpulse.models.alerts import AlertCandidate, Severity
from finpulse.sinks.tables import ALERTS_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import ALERTS
from finpulse.streams.stages.alerting import AlertStage

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
POLICY = parse_policy(
    {
        "rules": [
            {
                "id": "burst",
                "on": "transaction",
                "domain": "risk",
                "subject": "customer",
                "severity": "yellow",
                "owner": "fraud-oncall",
                "suppression_minutes": 30,
                "escalate_every": 2,
                "max_severity": "orange",
                "when": {"feature": "n", "gte": 1},
            }
        ]
    }
)


class Ev:
    def __init__(self, event_id):
        self.event_id = event_id


def run(stage, *cands):
    out = BatchOutput()
    out.candidates.extend(cands)
    batch = [(Ev(c.source_event_id), RawRecord("t", 0, i, b"")) for i, c in enumerate(cands)]
    stage.process("transaction", batch, out)
    alerts = [json.loads(m.value) for m in out.messages if m.topic == ALERTS]
    rows = [dict(zip(ALERTS_TABLE.columns, r, strict=True)) for r in out.rows.get(ALERTS_TABLE, [])]
    return alerts, rows


def cand(minute, event_id, subject="c-1", severity=Severity.YELLOW):
    return AlertCandidate(
        rule_id="burst",
        severity=severity,
        subject_type="customer",
        subject_id=subject,
        ts=T0 + timedelta(minutes=minute),
        source_event_id=event_id,
        evidence={"n": 1},
    )


def test_first_firing_publishes_and_repeats_are_folded_in():
    stage = AlertStage(POLICY, MemoryState("alert_state"))
    alerts, rows = run(stage, cand(0, "e1"))
    assert [a["status"] for a in alerts] == ["new"]
    assert alerts[0]["owner"] == "fraud-oncall" and alerts[0]["severity"] == "yellow"
    first_id = alerts[0]["alert_id"]

    alerts, rows = run(stage, cand(5, "e2"))
    assert alerts == []  # suppressed duplicate: counted, not re-sent
    assert rows[0]["alert_id"] == first_id and rows[0]["occurrences"] == 2
    assert rows[0]["suppressed"] == 1


def test_repeats_escalate_up_to_the_cap():
    stage = AlertStage(POLICY, MemoryState("alert_state"))
    run(stage, cand(0, "e1"))
    alerts, _ = run(stage, cand(1, "e2"), cand(2, "e3"))  # 3rd firing: (3-1) % 2 == 0
    assert [(a["status"], a["severity"]) for a in alerts] == [("escalated", "orange")]
    alerts, rows = run(stage, cand(3, "e4"), cand(4, "e5"))  # would be red, capped at orange
    assert alerts == []
    assert rows[0]["severity"] == "orange" and rows[0]["occurrences"] == 5


def test_a_new_window_opens_a_new_alert():
    stage = AlertStage(POLICY, MemoryState("alert_state"))
    a1, _ = run(stage, cand(0, "e1"))
    a2, _ = run(stage, cand(29, "e2"))
    a3, _ = run(stage, cand(30, "e3"))  # window is [0, 30) minutes
    assert a2 == [] and len(a3) == 1
    assert a3[0]["alert_id"] != a1[0]["alert_id"]
    assert a3[0]["occurrences"] == 1


def test_subjects_are_independent_and_ids_deterministic():
    s1, s2 = AlertStage(POLICY, MemoryState("a")), AlertStage(POLICY, MemoryState("b"))
    a, _ = run(s1, cand(0, "e1", "c-1"), cand(0, "e2", "c-2"))
    b, _ = run(s2, cand(0, "e1", "c-1"), cand(0, "e2", "c-2"))
    assert len(a) == 2
    assert [x["alert_id"] for x in a] == [x["alert_id"] for x in b]


def test_higher_severity_candidate_escalates_at_once():
    stage = AlertStage(POLICY, MemoryState("alert_state"))
    run(stage, cand(0, "e1"))
    alerts, _ = run(stage, cand(1, "e2", severity=Severity.RED))
    assert [(a["status"], a["severity"]) for a in alerts] == [("escalated", "red")]
