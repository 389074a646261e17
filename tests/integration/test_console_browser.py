"""The console in a real browser (Debian's headless Chromium driven by Playwright): log in,
filter the inbox, open an alert, confirm fraud; the verdict reaches the broker, ClickHouse
and the risk model. The screenshots in docs/images/ come from this test: it writes them into
the test's own folder, and into docs/images/ only with FINPULSE_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from finpulse.streams.core.topics import ALERT_ACTIONS, FEEDBACK, TRANSACTIONS
from tests import factories as f
from tests.console_helpers import PASSWORDS, chromium_path, large_cash, start_console
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _screenshots_dir(tmp_path: Path) -> Path:
    """docs/images/ when asked to update the docs' screenshots, else the test's folder."""
    return DOCS_IMAGES if os.environ.get("FINPULSE_UPDATE_SCREENSHOTS") == "1" else tmp_path


def _query(env, sql):
    client = env.client()
    try:
        return client.query(sql.replace("{db}", env.settings.clickhouse_database)).result_rows
    finally:
        client.close()


def test_analyst_confirms_fraud_in_the_browser_and_the_model_learns_it(env, broker_kind, tmp_path):
    shots = _screenshots_dir(tmp_path)
    console = start_console(env)
    events = [
        large_cash("c-console-1", 60000),
        large_cash("c-console-2", 75000),
        large_cash("c-console-3", 52000),
        f.transaction(customer_id="c-console-1", amount=88.0),
    ]
    env.produce(
        TRANSACTIONS, [f.encode(e) for e in events], [e["customer_id"].encode() for e in events]
    )
    wait_for(lambda: _query(env, "SELECT count() FROM {db}.alerts FINAL")[0][0] >= 3, 60, "alerts")
    target = events[0]["event_id"]
    [(alert_id,)] = _query(
        env,
        "SELECT alert_id FROM {db}.alerts FINAL WHERE rule_id = 'large_value.cash' "
        f"AND source_event_id = '{target}'",
    )

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.goto(console.url + "/inbox")
        assert page.url.endswith("/login")  # no session: the login page
        page.fill("input[name=user]", "ana")
        page.fill("input[name=password]", PASSWORDS["ana"])
        page.click("button[type=submit]")
        page.wait_for_url("**/inbox")
        assert page.locator("tr.alert-row").count() >= 3

        page.select_option("select[name=owner]", "aml-reporting")
        page.select_option("select[name=state]", "open")
        page.click("#filters button[type=submit]")
        page.wait_for_url("**owner=aml-reporting**")
        rows = page.locator("tr.alert-row")
        assert rows.count() >= 3
        assert all("aml-reporting" in t for t in rows.all_inner_texts())
        if broker_kind == "kafka":
            page.screenshot(path=str(shots / "console-inbox.png"), full_page=True)

        page.click(f"a[href='/alerts/{alert_id}']")
        page.wait_for_url(f"**/alerts/{alert_id}")
        assert page.inner_text("#state") == "open"
        assert "60000" in page.content()  # the customer's transaction beside the alert
        if broker_kind == "kafka":
            page.screenshot(path=str(shots / "console-alert.png"), full_page=True)

        page.locator("form:has(#do-confirm_fraud) input[name=reason]").fill("customer disowns it")
        page.click("#do-confirm_fraud")
        page.wait_for_url(f"**/alerts/{alert_id}")
        assert page.inner_text("#state") == "resolved"
        assert "customer disowns it" in page.inner_text("#history")
        browser.close()

    [message] = env.consume(FEEDBACK, 1)
    feedback = json.loads(message.value)
    assert (feedback["kind"], feedback["ref_event_id"]) == ("fraud_confirmed", target)
    assert message.key == b"c-console-1"
    [action_msg] = env.consume(ALERT_ACTIONS, 1)
    assert json.loads(action_msg.value)["actor"] == "ana"
    rows = _query(
        env,
        "SELECT actor, action, state, reason FROM {db}.alert_actions FINAL "
        f"WHERE alert_id = '{alert_id}'",
    )
    assert rows == [("ana", "confirm_fraud", "resolved", "customer disowns it")]
    # the risk model learned the label: the transaction's score row carries it
    labelled = wait_for(
        lambda: (
            _query(env, f"SELECT label FROM {{db}}.risk_scores FINAL WHERE event_id = '{target}'")
            == [(1,)]
        ),
        60,
        "the label on the risk score",
    )
    assert labelled
    labels = wait_for(
        lambda: _query(env, "SELECT max(n) FROM {db}.model_metrics FINAL WHERE model = 'risk'")[0][
            0
        ],
        30,
        "the risk model's label count",
    )
    assert labels >= 1
