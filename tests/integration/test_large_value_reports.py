"""The large-value boundary cases (tests/large_value_cases.py) on a live worker: events
produced to the broker, alerts and report register rows checked in ClickHouse."""

from __future__ import annotations

import pytest

from finpulse.streams.core.topics import TRANSACTIONS
from tests.factories import encode
from tests.large_value_cases import (
    CASES,
    EARLY_WARNING,
    REPORT_QUERY,
    expected_reports,
    expected_structuring,
    reports_by_customer,
)

pytestmark = pytest.mark.integration


def test_every_boundary_case_on_the_live_worker(env):
    events = [ev for case in CASES for ev in case.events()]
    worker = env.worker(max_future_skew_s=366 * 86400.0)  # some cases lie weeks ahead
    env.produce(
        TRANSACTIONS, [encode(e) for e in events], [e["customer_id"].encode() for e in events]
    )
    worker.wait_for(lambda s: s["processed"] >= len(events), 120, "every case processed")

    db = env.settings.clickhouse_database
    client = env.client()
    try:
        rows = client.query(REPORT_QUERY.format(db=db)).result_rows
        alerts = client.query(
            f"SELECT subject_id, rule_id, alert_id FROM {db}.alerts FINAL "
            "WHERE rule_id LIKE 'large_value.%' OR rule_id LIKE 'structuring.%'"
        ).result_rows
        report_ids = client.query(
            f"SELECT customer_id, report_id FROM {db}.large_value_reports FINAL"
        ).result_rows
    finally:
        client.close()

    assert reports_by_customer(rows) == expected_reports()
    large = sorted((s, a) for s, r, a in alerts if r.startswith("large_value."))
    assert large == sorted(report_ids)  # one alert per report, the same id
    structuring: dict[str, set[str]] = {c.customer_id: set() for c in CASES}
    for subject, rule, _ in alerts:
        if rule.startswith("structuring.") and rule != EARLY_WARNING:
            structuring[subject].add(rule)
    assert structuring == expected_structuring()
    warned = {s for s, r, _ in alerts if r == EARLY_WARNING}
    assert {s for s, rules in structuring.items() if rules} <= warned
