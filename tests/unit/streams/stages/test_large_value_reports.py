"""The large-value boundary cases (tests/large_value_cases.py) through the worker's own
pipeline offline: features, rules, alert manager and report register rows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from finpulse.config.settings import Settings
from finpulse.sinks.tables import ALERTS_TABLE, LARGE_VALUE_REPORTS_TABLE
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import TRANSACTIONS
from finpulse.streams.worker.app import default_stages
from finpulse.streams.worker.pipeline import Pipeline
from tests.large_value_cases import (
    CASES,
    EARLY_WARNING,
    OFF_PROFILE,
    expected_reports,
    expected_structuring,
)

COLUMNS = LARGE_VALUE_REPORTS_TABLE.columns


def _run() -> tuple[dict[str, dict[str, Any]], dict[str, tuple[Any, ...]]]:
    """Every case's events, one per batch; the latest register and alert row by id."""
    settings = Settings(restore_model_checkpoints=False, max_future_skew_s=None)
    pipeline = Pipeline(settings, stages=default_stages)
    reports: dict[str, dict[str, Any]] = {}
    alerts: dict[str, tuple[Any, ...]] = {}
    offset = 0
    for case in CASES:
        for ev in case.events():
            record = RawRecord(TRANSACTIONS, 0, offset, json.dumps(ev).encode(), b"k")
            offset += 1
            out = pipeline.process("transaction", [record])
            assert not out.deadletters, out.deadletters
            for row in out.rows.get(LARGE_VALUE_REPORTS_TABLE, ()):
                reports[row[0]] = dict(zip(COLUMNS, row, strict=True))
            for row in out.rows.get(ALERTS_TABLE, ()):
                alerts[row[0]] = row
    return reports, alerts


@pytest.fixture(scope="module")
def run() -> tuple[dict[str, dict[str, Any]], dict[str, tuple[Any, ...]]]:
    return _run()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_boundary_case_gives_exactly_its_reports(case, run):
    reports, _ = run
    got = sorted(
        (
            r["criterion"], r["direction"], r["currency_class"], r["report_day"].isoformat(),
            f"{r['total']:.2f}", r["transaction_count"], r["report_due"].isoformat(),
            r["calendar"],
        )
        for r in reports.values()
        if r["customer_id"] == case.customer_id
    )  # fmt: skip
    assert got == expected_reports()[case.customer_id]
    for r in reports.values():
        if r["customer_id"] == case.customer_id:
            assert len(r["transaction_ids"]) == r["transaction_count"]
            assert set(r["transaction_ids"]) <= {e["event_id"] for e in case.events()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_one_alert_per_report_and_structuring_on_the_same_criteria(case, run):
    reports, alerts = run
    mine = [
        a
        for a in alerts.values()
        if a[ALERTS_TABLE.columns.index("subject_id")] == case.customer_id
    ]
    rule = ALERTS_TABLE.columns.index("rule_id")
    large = sorted(a[0] for a in mine if a[rule].startswith("large_value."))
    assert large == sorted(
        r["alert_id"] for r in reports.values() if r["customer_id"] == case.customer_id
    )
    structuring = {a[rule] for a in mine if a[rule].startswith("structuring.")}
    regulatory = structuring - {EARLY_WARNING, OFF_PROFILE}
    assert regulatory == expected_structuring()[case.customer_id]
    if regulatory:  # the third transaction under the threshold came after a second one
        assert EARLY_WARNING in structuring


def test_a_later_transaction_of_the_day_folds_into_the_open_report(run):
    reports, alerts = run
    [r] = [r for r in reports.values() if r["customer_id"] == "lv-cash-fold"]
    assert r["transaction_ids"] == ["lv-cash-fold-0", "lv-cash-fold-1"] and r["version"] == 2
    alert = dict(zip(ALERTS_TABLE.columns, alerts[r["alert_id"]], strict=True))
    assert alert["occurrences"] == 2 and alert["status"] == "updated"  # not re-sent
