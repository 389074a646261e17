"""Customer status rows: written on a change of what the view shows, lifecycle candidates."""

from __future__ import annotations

from finpulse.config.policy import load_policy
from finpulse.sinks.tables import CUSTOMER_STATUS_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.state import MemoryState
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.stages.service import customers as cu
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.customer_status import CustomerStatus, CustomerView
from finpulse.streams.stages.service.records import (
    OpenComplaint,
    RecentRiskAlerts,
    RiskAlert,
    ServiceCustomer,
)
from finpulse.streams.stages.service.windows import DAY_MS

from ._events import record


def _status(risks: MemoryState | None = None) -> CustomerStatus:
    return CustomerStatus(RuleEngine(load_policy()), risks or MemoryState("r"))


def _known(ms: int = 0) -> ServiceCustomer:
    cust = ServiceCustomer()
    cu.note_activity(cust, ms, "individual", "retail")
    return cust


def test_row_only_when_the_view_changes_or_a_day_begins():
    status, cust, out = _status(), _known(), BatchOutput()
    for ms in (0, 1000, DAY_MS):
        status.write("c-1", cust, record(), ms, out)
    rows = out.rows[CUSTOMER_STATUS_TABLE]
    assert [r[-3] for r in rows] == [1, 2] and cust.status_version == 2
    assert cust.lifecycle_stage == "new"


def test_risk_alert_lowers_health_in_the_row():
    risks = MemoryState("r")
    risks.put("c-1", RecentRiskAlerts([RiskAlert(0, "card_testing", "red", None)]), None)
    out = BatchOutput()
    _status(risks).write("c-1", _known(), record(partition=2), 0, out)
    [row] = out.rows[CUSTOMER_STATUS_TABLE]
    assert row[14] == "card_testing" and row[16] == 9.0 and row[-2] == 2


def test_a_stage_change_evaluates_the_customer_rules():
    status, out = _status(), BatchOutput()
    cust = _known()
    status.write("c-1", cust, record(), 0, out)
    cust.last_csat = 1  # dissatisfied with an open complaint
    cust.open_complaints = {"k-1": OpenComplaint(0, ["i-1"])}
    status.write("c-1", cust, record(), 1000, out)
    assert cust.lifecycle_stage == "at_risk"
    assert [c.subject_id for c in out.candidates] == ["c-1"]
    assert out.candidates[0].source_event_id == "lifecycle|c-1|2"


def test_publish_writes_back_known_customers_and_early_closes_only():
    custs = BatchCache(MemoryState("c"))
    custs.values["c-known"] = _known()
    custs.get("c-empty", ServiceCustomer, partition=0)
    touched = {c: (record(), 0) for c in ("c-known", "c-empty")}
    out = BatchOutput()
    _status().publish(custs, touched, out)
    assert set(custs.dirty) == {"c-known"} and len(out.rows[CUSTOMER_STATUS_TABLE]) == 1


def test_view_signature_follows_complaints_and_last_answer():
    cust = _known()
    before = CustomerView.of(cust, None, 0).signature(cust)
    cust.open_complaints = {"k": OpenComplaint(0, [])}
    assert CustomerView.of(cust, None, 0).signature(cust) != before
