"""Service x risk friction rows: one per risk rule, its newest alert."""

from __future__ import annotations

from collections import Counter

from finpulse.sinks.tables import SERVICE_FRICTION_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.stages.service.friction import friction_rows, record_friction
from finpulse.streams.stages.service.records import RiskAlert

from ._events import interaction


def test_one_row_per_rule_newest_first():
    ev = interaction(event_id="i-1", customer_id="c-1", channel="app")
    risks = [
        RiskAlert(0, "a", "red", 90.0),
        RiskAlert(1000, "b", "orange", None),
        RiskAlert(2000, "a", "blue", 10.0),
    ]
    rows = friction_rows(ev, 3000, risks, 2)
    assert [(r[5], r[6], r[8], r[9]) for r in rows] == [
        ("a", "blue", 1.0, 2),
        ("b", "orange", 2.0, 2),
    ]
    assert {(r[0], r[2], r[4]) for r in rows} == {("i-1", "c-1", "app")}


def test_record_counts_contacts_with_friction_once():
    out, counts = BatchOutput(), Counter()
    record_friction(interaction(), 5000, [RiskAlert(0, "a", "red", None)] * 3, 0, out, counts)
    assert len(out.rows[SERVICE_FRICTION_TABLE]) == 1
    assert counts["service.friction_contacts"] == 1
