"""Complaint aging across the 15-day deadline, in event time (explicit timestamps)."""

from __future__ import annotations

from finpulse.sinks.tables import COMPLAINTS_TABLE
from finpulse.streams.core.state import MemoryState
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.complaints import (
    CLOSED,
    DUE_SOON,
    OPEN,
    OVERDUE,
    SWEEP_EVERY_MS,
    ComplaintBook,
)
from finpulse.streams.stages.service.names import RULE_COMPLAINT_DUE_SOON, RULE_COMPLAINT_OVERDUE
from finpulse.streams.stages.service.windows import DAY_MS, HOUR_MS
from tests import factories as f
from tests.service_helpers import Driver, at, contact

INFO = {"customer_id": "c-1", "customer_type": "individual", "segment": "retail", "channel": "app"}


def _book():
    cache = BatchCache(MemoryState("p"))
    return cache, ComplaintBook(cache, deadline_days=15, due_soon_days=3)


def test_status_moves_open_due_soon_overdue_with_the_clock():
    _cache, book = _book()
    opened = 5 * DAY_MS + 3 * HOUR_MS
    book.open(0, opened, "cmp-1", "i-1", INFO, None)
    seen = []
    for hours in range(0, 17 * 24, 6):
        for change in book.age(0, opened + hours * HOUR_MS, None):
            if change.changed:
                seen.append((change.status, round(change.days_open, 2)))
    assert seen == [(DUE_SOON, 12.0), (OVERDUE, 15.0)]


def test_one_check_per_whole_day_open_and_hourly_sweeps():
    _cache, book = _book()
    book.open(0, 0, "cmp-1", "i-1", INFO, None)
    assert [c.days_open for c in book.age(0, DAY_MS, None)] == [1.0]
    assert book.age(0, DAY_MS + 10, None) == []  # sweep not due yet
    later = book.age(0, DAY_MS + SWEEP_EVERY_MS, None)
    assert later == []  # due, but still day 1: nothing new
    assert [int(c.days_open) for c in book.age(0, 2 * DAY_MS + SWEEP_EVERY_MS, None)] == [2]


def test_closing_before_the_deadline_stops_aging():
    cache, book = _book()
    book.open(0, 0, "cmp-1", "i-1", INFO, None)
    [closed] = book.close(0, 3 * DAY_MS, "cmp-1", 0, "f-1", None)
    assert closed.status == CLOSED and closed.days_open == 3.0
    assert book.age(0, 20 * DAY_MS, None, force=True) == []
    assert cache.values["p0"].complaint_days == []
    assert book.close(0, 4 * DAY_MS, "cmp-1", 0, "f-2", None) == []  # unknown now


def test_reopening_the_same_id_is_ignored():
    _cache, book = _book()
    assert [c.status for c in book.open(0, 0, "cmp-1", "i-1", INFO, None)] == [OPEN]
    assert book.open(0, 1000, "cmp-1", "i-2", INFO, None) == []


def test_pipeline_ages_complaint_by_partition_event_time_and_closes_by_ref_event():
    d = Driver()
    complaint = contact("c-7", at(), interaction_type="complaint", complaint_id="cmp-7")
    d.interactions([complaint])
    # a follow-up contact on the same complaint does not open a second one
    d.interactions(
        [contact("c-7", at(hours=2), interaction_type="complaint", complaint_id="cmp-7")]
    )
    # other customers' events on the same partition advance its clock
    d.transactions([f.transaction(customer_id="c-8", ts=at(days=12, hours=1))])
    [soon] = d.candidates(RULE_COMPLAINT_DUE_SOON)
    assert soon.subject_id == "cmp-7" and soon.severity.value == "yellow"
    assert soon.customer_id == "c-7" and soon.evidence["days_open"] >= 12
    d.transactions([f.transaction(customer_id="c-8", ts=at(days=15, hours=2))])
    [overdue] = d.candidates(RULE_COMPLAINT_OVERDUE)
    assert overdue.severity.value == "red"
    d.feedback(
        [
            f.feedback(
                customer_id="c-7",
                kind="complaint_closed",
                ref_event_id=complaint["event_id"],
                ts=at(days=16),
                value=None,
            )
        ]
    )
    rows = [r for out in d.outputs for r in out.rows.get(COMPLAINTS_TABLE, [])]
    statuses = [(r[0], r[1]) for r in rows]
    assert statuses == [
        ("cmp-7", OPEN),
        ("cmp-7", DUE_SOON),
        ("cmp-7", OVERDUE),
        ("cmp-7", CLOSED),
    ]
    closed = rows[-1]
    assert closed[9] is not None and round(closed[10], 1) == 16.0  # closed_at, days_open
    # closed complaints are no longer aged
    d.transactions([f.transaction(customer_id="c-8", ts=at(days=20))])
    assert len(d.candidates(RULE_COMPLAINT_OVERDUE)) == 1


def test_due_soon_alert_escalates_on_day_14_then_overdue_is_red():
    import json

    from finpulse.streams.core.topics import ALERTS

    d = Driver()
    d.interactions([contact("c-9", at(), interaction_type="complaint", complaint_id="cmp-9")])
    for day in (12, 13, 14, 15):
        d.transactions([f.transaction(customer_id="c-8", ts=at(days=day, hours=1))])
    sent = [json.loads(m.value) for out in d.outputs for m in out.messages if m.topic == ALERTS]
    sent = [a for a in sent if a["domain"] == "service"]  # not the risk model's first scores
    assert [(a["rule_id"], a["status"], a["severity"]) for a in sent] == [
        (RULE_COMPLAINT_DUE_SOON, "new", "yellow"),
        (RULE_COMPLAINT_DUE_SOON, "escalated", "orange"),
        (RULE_COMPLAINT_OVERDUE, "new", "red"),
    ]
    assert {a["subject_id"] for a in sent} == {"cmp-9"}


def test_close_processed_before_its_complaint_still_closes_it():
    # Topics are consumed independently: after a crash the complaint may be re-delivered
    # after the feedback that closes it was already processed.
    d = Driver()
    complaint = contact("c-5", at(), interaction_type="complaint", complaint_id="cmp-5")
    close = f.feedback(
        customer_id="c-5",
        kind="complaint_closed",
        ref_event_id=complaint["event_id"],
        ts=at(hours=3),
        value=None,
    )
    d.feedback([close])
    d.interactions([complaint])
    rows = [r for out in d.outputs for r in out.rows.get(COMPLAINTS_TABLE, [])]
    assert [(r[0], r[1]) for r in rows] == [("cmp-5", OPEN), ("cmp-5", CLOSED)]
    d.transactions([f.transaction(customer_id="c-8", ts=at(days=13))])
    assert d.candidates(RULE_COMPLAINT_DUE_SOON) == []  # closed: it does not age


def test_close_survives_state_keys_restored_out_of_step():
    # After a SIGKILL the customer's record and the partition's book are separate changelog
    # keys and may come back at different points.
    _cache, book = _book()
    [closed] = book.close(0, 3 * DAY_MS, "cmp-1", 0, "f-1", None, known=INFO)  # book lost it
    assert closed.status == CLOSED and closed.info["customer_id"] == "c-1"
    assert closed.days_open == 3.0
    book.open(0, DAY_MS, "cmp-2", "i-2", INFO, None)  # the customer lost it: find it by ref
    assert book.find(0, "i-2") == ("cmp-2", 1)
    assert book.find(0, "cmp-2") == ("cmp-2", 1)
    assert book.find(0, "i-404") is None
