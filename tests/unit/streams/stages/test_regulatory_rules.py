"""Boundary tests for every regulation-derived rule: just under, at, just over."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from finpulse.config.policy import load_policy
from finpulse.streams.stages.rules import RuleEngine, add_working_days

ENGINE = RuleEngine(load_policy())
TS = datetime(2026, 3, 6, 2, 0, tzinfo=UTC)  # Friday 10:00 in China


def fired(features):
    return {c.rule_id for c in ENGINE.evaluate("transaction", features, subject_id="c", ts=TS)}


CASH = {"is_cash": True, "is_transfer": False, "customer_type": "individual"}
TRANSFER_IND = {"is_cash": False, "is_transfer": True, "customer_type": "individual"}
TRANSFER_INST = {"is_cash": False, "is_transfer": True, "customer_type": "institution"}


@pytest.mark.parametrize(
    ("amount", "expected"), [(49999.99, False), (50000, True), (50000.01, True)]
)
def test_large_cash_single(amount, expected):
    assert (
        "large_cash_single" in fired({**CASH, "amount_cny": amount, "cash_same_day_cny": amount})
    ) is expected


@pytest.mark.parametrize(
    ("cumulative", "expected"), [(49999.99, False), (50000, True), (50000.01, True)]
)
def test_large_cash_same_day_cumulative(cumulative, expected):
    got = fired({**CASH, "amount_cny": 20000.0, "cash_same_day_cny": cumulative})
    assert ("large_cash_cumulative" in got) is expected
    assert "large_cash_single" not in got


def test_cash_rules_ignore_transfers():
    assert not fired({**TRANSFER_IND, "amount_cny": 60000.0, "cash_same_day_cny": 0.0}) & {
        "large_cash_single",
        "large_cash_cumulative",
    }


@pytest.mark.parametrize(
    ("amount", "expected"), [(499999.99, False), (500000, True), (500000.01, True)]
)
def test_large_transfer_individual(amount, expected):
    assert (
        "large_transfer_individual" in fired({**TRANSFER_IND, "amount_cny": amount})
    ) is expected


@pytest.mark.parametrize(
    ("amount", "expected"), [(1999999.99, False), (2000000, True), (2000000.01, True)]
)
def test_large_transfer_institution(amount, expected):
    got = fired({**TRANSFER_INST, "amount_cny": amount})
    assert ("large_transfer_institution" in got) is expected
    assert "large_transfer_individual" not in got  # an institution's 500k is not reportable


@pytest.mark.parametrize(("count", "expected"), [(2, False), (3, True), (4, True)])
def test_structuring_cash(count, expected):
    got = fired({**CASH, "amount_cny": 48000.0, "near_cash_threshold_count_24h": count})
    assert ("structuring_cash" in got) is expected


@pytest.mark.parametrize(("count", "expected"), [(2, False), (3, True), (4, True)])
def test_structuring_transfer(count, expected):
    got = fired(
        {**TRANSFER_IND, "amount_cny": 480000.0, "near_transfer_threshold_count_24h": count}
    )
    assert ("structuring_transfer" in got) is expected


def test_report_due_is_five_working_days_in_china_time():
    [cand] = [
        c
        for c in ENGINE.evaluate(
            "transaction", {**CASH, "amount_cny": 60000.0}, subject_id="c", ts=TS
        )
        if c.rule_id == "large_cash_single"
    ]
    assert cand.report_due == date(2026, 3, 13)  # Fri + 5 working days
    late = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)  # already Saturday 01:00 in China
    [cand] = [
        c
        for c in ENGINE.evaluate(
            "transaction", {**CASH, "amount_cny": 60000.0}, subject_id="c", ts=late
        )
        if c.rule_id == "large_cash_single"
    ]
    assert cand.report_due == date(2026, 3, 13)  # Sat + 5 working days = next Friday
    assert add_working_days(date(2026, 3, 7), 1) == date(2026, 3, 9)


def test_evidence_shows_values_and_thresholds():
    [cand] = [
        c
        for c in ENGINE.evaluate(
            "transaction", {**CASH, "amount_cny": 50001.0}, subject_id="c", ts=TS
        )
        if c.rule_id == "large_cash_single"
    ]
    assert cand.evidence["amount_cny"] == 50001.0
    assert cand.evidence["threshold: amount_cny gte"] == 50000
