"""Complaints from the customer's side: open from interactions, close from feedback, publish."""

from __future__ import annotations

from collections import Counter

from finpulse.config.policy import load_policy
from finpulse.config.settings import Settings
from finpulse.sinks.tables import COMPLAINTS_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.state import MemoryState
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.complaints import (
    CLOSED,
    EARLY_CLOSES_KEPT,
    OPEN,
    ComplaintBook,
    Complaints,
    is_complaint,
)
from finpulse.streams.stages.service.records import EarlyClose, OpenComplaint, ServiceCustomer
from finpulse.streams.stages.service.windows import DAY_MS

from ._events import feedback, interaction, record


def _setup() -> tuple[Complaints, ComplaintBook]:
    complaints = Complaints(Settings(), RuleEngine(load_policy()), Counter())
    return complaints, complaints.book(BatchCache(MemoryState("p")))


def _close(ref: str, event_id: str = "f-1"):
    return feedback(event_id=event_id, kind="complaint_closed", ref_event_id=ref, value=None)


def test_complaint_interactions():
    assert is_complaint(interaction(interaction_type="complaint"))
    assert not is_complaint(interaction())


def test_follow_up_contacts_join_the_open_complaint():
    complaints, book = _setup()
    cust = ServiceCustomer()
    first = interaction(event_id="i-1", complaint_id="k-1")
    assert [c.status for c in complaints.on_interaction(book, cust, first, record(), 0)] == [OPEN]
    again = interaction(event_id="i-2", complaint_id="k-1")
    assert complaints.on_interaction(book, cust, again, record(), 1000) == []
    assert cust.open_complaints == {"k-1": OpenComplaint(0, ["i-1", "i-2"])}
    changes = complaints.on_close(book, cust, _close("i-2"), record(), DAY_MS)
    assert [(c.complaint_id, c.status) for c in changes] == [("k-1", CLOSED)]
    assert cust.open_complaints == {}


def test_a_close_before_its_complaint_is_kept_then_applied():
    complaints, book = _setup()
    cust = ServiceCustomer()
    assert complaints.on_close(book, cust, _close("i-1"), record(), 5000) == []
    assert cust.early_closes == {"i-1": EarlyClose(5000, "f-1")}
    assert complaints.counts["service.complaint_close_unmatched"] == 1
    ev = interaction(event_id="i-1", interaction_type="complaint")
    changes = complaints.on_interaction(book, cust, ev, record(), 1000)
    assert [(c.status, c.ts_ms) for c in changes] == [(OPEN, 1000), (CLOSED, 5000)]
    assert cust.open_complaints == {} and cust.early_closes == {}


def test_early_closes_are_bounded_newest_kept():
    complaints, book = _setup()
    cust = ServiceCustomer()
    for k in range(EARLY_CLOSES_KEPT + 2):
        complaints.on_close(book, cust, _close(f"i-{k}", f"f-{k}"), record(), k)
    assert list(cust.early_closes) == [f"i-{k}" for k in range(2, EARLY_CLOSES_KEPT + 2)]


def test_a_close_the_customer_lost_is_found_in_the_book():
    complaints, book = _setup()
    book.open(0, 0, "k-1", "i-1", {"customer_id": "c-1"}, None)
    changes = complaints.on_close(book, ServiceCustomer(), _close("i-1"), record(), DAY_MS)
    assert [(c.complaint_id, c.status) for c in changes] == [("k-1", CLOSED)]


def test_publish_rows_only_for_status_changes_candidates_for_every_check():
    complaints, book = _setup()
    cust = ServiceCustomer()
    complaints.on_interaction(book, cust, interaction(complaint_id="k-1"), record(), 0)
    changes = book.age(0, 13 * DAY_MS, None, force=True) + book.age(
        0, 14 * DAY_MS, None, force=True
    )
    assert [c.changed for c in changes] == [True, False]
    out = BatchOutput()
    complaints.publish(changes, out)
    assert [r[1] for r in out.rows[COMPLAINTS_TABLE]] == ["due_soon"]
    assert len(out.candidates) == 2  # the due-soon rule, checked on every daily change
