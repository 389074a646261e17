"""Minute windows and SLA arithmetic, driven by explicit event times (a fake clock)."""

from __future__ import annotations

import pytest

from finpulse.streams.stages.service.records import SlaState
from finpulse.streams.stages.service.windows import (
    AGG_FIELDS,
    MINUTE_MS,
    Contact,
    add_contact,
    advance_sla,
    combine,
    empty_agg,
    metrics,
    minute_of,
    record_sla_contact,
    sla_window_breached,
    wilson_upper,
)

T0 = 1_767_607_200_000  # 2026-01-05T10:00:00Z, a whole minute
SLA = {"window_minutes": 2, "target": 0.8, "z": 2.33, "min_contacts": 3, "grace_ms": 20_000}


def _contacts(state, channel, minute_index, late, on_time):
    m = T0 + minute_index * MINUTE_MS
    for _ in range(late):
        record_sla_contact(state, channel, m, False)
    for _ in range(on_time):
        record_sla_contact(state, channel, m, True)


def test_minute_closes_only_after_its_end_plus_grace():
    st = SlaState()
    _contacts(st, "call_center", 0, late=5, on_time=0)
    assert advance_sla(st, T0 + MINUTE_MS + 19_999, **SLA) == []
    [check] = advance_sla(st, T0 + MINUTE_MS + 20_000, **SLA)
    assert (check.minute_ms, check.contacts, check.answered) == (T0, 5, 0)
    assert check.breached and check.consecutive == 1
    assert advance_sla(st, T0 + MINUTE_MS + 50_000, **SLA) == []  # already closed


def test_consecutive_breaches_count_and_reset_on_a_good_minute():
    st = SlaState()
    for i in range(3):
        _contacts(st, "chat", i, late=4, on_time=0)
    _contacts(st, "chat", 3, late=0, on_time=30)
    checks = advance_sla(st, T0 + 4 * MINUTE_MS + 20_000, **SLA)
    assert [c.consecutive for c in checks] == [1, 2, 3, 0]
    assert [c.minute_ms - T0 for c in checks] == [0, MINUTE_MS, 2 * MINUTE_MS, 3 * MINUTE_MS]


def test_pooled_window_sums_the_trailing_minutes():
    st = SlaState()
    _contacts(st, "app", 0, late=1, on_time=1)
    _contacts(st, "app", 1, late=1, on_time=2)
    _contacts(st, "app", 2, late=0, on_time=4)
    checks = advance_sla(st, T0 + 3 * MINUTE_MS + 20_000, **SLA)
    # window of 2 minutes: [m0], [m0, m1], [m1, m2]
    assert [(c.contacts, c.answered) for c in checks] == [(2, 1), (5, 3), (7, 6)]


def test_too_few_contacts_never_breach_and_reset_the_run():
    st = SlaState()
    _contacts(st, "call_center", 0, late=5, on_time=0)
    _contacts(st, "call_center", 1, late=5, on_time=0)
    advance_sla(st, T0 + 2 * MINUTE_MS + 20_000, **SLA)
    assert st.breached_run["call_center"] == 2
    # three idle minutes later one late contact arrives: the run restarted, 1 < min_contacts
    _contacts(st, "call_center", 5, late=1, on_time=0)
    checks = advance_sla(st, T0 + 6 * MINUTE_MS + 20_000, **SLA)
    assert checks[-1].minute_ms == T0 + 5 * MINUTE_MS
    assert not checks[-1].breached and checks[-1].consecutive == 0


def test_long_idle_gap_judges_only_minutes_that_can_hold_contacts():
    st = SlaState()
    _contacts(st, "web", 0, late=3, on_time=0)
    advance_sla(st, T0 + MINUTE_MS + 20_000, **SLA)
    _contacts(st, "web", 600, late=3, on_time=0)  # ten hours later
    checks = advance_sla(st, T0 + 601 * MINUTE_MS + 20_000, **SLA)
    # minute 1 still pools minute 0 (2-minute window); minutes 2..599 hold nothing
    assert [c.minute_ms for c in checks] == [T0 + MINUTE_MS, T0 + 600 * MINUTE_MS]
    assert [c.consecutive for c in checks] == [2, 1]  # the run did not carry over the gap
    assert set(st.minutes["web"]) == {T0 + 600 * MINUTE_MS}  # old minutes pruned


def test_channels_are_judged_independently():
    st = SlaState()
    _contacts(st, "chat", 0, late=6, on_time=0)
    _contacts(st, "app", 0, late=0, on_time=6)
    checks = {c.channel: c for c in advance_sla(st, T0 + MINUTE_MS + 20_000, **SLA)}
    assert checks["chat"].breached and not checks["app"].breached


@pytest.mark.parametrize(
    ("contacts", "answered", "breached"),
    [(3, 0, True), (3, 1, False), (10, 5, True), (10, 7, False), (100, 75, False), (100, 70, True)],
)
def test_breach_needs_the_upper_bound_below_target(contacts, answered, breached):
    kw = {"target": 0.8, "z": 2.33, "min_contacts": 3}
    assert sla_window_breached(contacts=contacts, answered=answered, **kw) is breached


def test_z_zero_is_the_point_estimate():
    assert wilson_upper(7, 10, 0.0) == pytest.approx(0.7)
    assert sla_window_breached(contacts=10, answered=7, target=0.8, z=0.0, min_contacts=1)


def test_partial_aggregates_of_partitions_sum_to_the_whole():
    waits = [3.0, 25.0, 12.0, 90.0, 19.9, 20.0, 40.0]
    contacts = [
        Contact(w, 100.0 + i, i % 2 == 0, None if i == 3 else i % 3 == 0, i % 2, i == 4, i > 4)
        for i, w in enumerate(waits)
    ]
    whole = empty_agg()
    parts = [empty_agg(), empty_agg()]
    for i, c in enumerate(contacts):
        add_contact(whole, c, 20.0)
        add_contact(parts[i % 2], c, 20.0)
    assert combine(parts) == whole
    m = metrics(whole)
    assert m["contacts"] == 7
    assert m["service_level"] == pytest.approx(4 / 7)  # 3, 12, 19.9 and 20.0 are within 20 s
    assert m["avg_speed_of_answer_s"] == pytest.approx(sum(waits) / 7)
    assert m["first_contact_resolution"] == pytest.approx(2 / 6)
    assert dict(zip(AGG_FIELDS, whole, strict=True))["transferred"] == 3


def test_minute_of_floors_to_the_minute():
    assert minute_of(T0 + 59_999) == T0
    assert minute_of(T0 + 60_000) == T0 + MINUTE_MS


def test_from_ms_is_exact_and_inverts_to_ms():
    import random
    from datetime import timedelta

    from finpulse.streams.stages.service.windows import EPOCH, from_ms, to_ms

    rng = random.Random(7)
    for _ in range(20_000):  # 1938 .. 2100, whole milliseconds
        ms = rng.randrange(-(10**12), 4_102_444_800_000)
        assert from_ms(ms) == EPOCH + timedelta(milliseconds=ms)
        assert to_ms(from_ms(ms)) == ms
