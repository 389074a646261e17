"""Early warnings end to end: broker → worker → finpulse.alerts, ClickHouse and a webhook."""

from __future__ import annotations

import base64
import json

import pytest

from finpulse.streams.core.topics import ALERTS, TRANSACTIONS
from tests import factories as f
from tests.waiting import wait_for
from tests.webhook_server import RecordingWebhook

pytestmark = pytest.mark.integration


def _large_cash(customer):
    return f.transaction(
        customer_id=customer,
        txn_type="cash_deposit",
        channel="branch",
        direction="credit",
        amount=60000,
    )


def test_large_cash_alert_reaches_topic_clickhouse_and_webhook_once(env):
    with RecordingWebhook() as hook:
        env.worker(webhook_url=hook.url, webhook_secret="s3cret")
        events = [_large_cash("c-big"), _large_cash("c-big"), f.transaction(amount=10)]
        env.produce(TRANSACTIONS, [f.encode(e) for e in events], [b"c-big", b"c-big", b"c-x"])

        db = env.settings.clickhouse_database
        client = env.client()
        cash_rows = (
            f"SELECT rule_id, occurrences, suppressed FROM {db}.alerts FINAL "
            "WHERE rule_id = 'large_value.cash'"
        )
        rows = wait_for(
            lambda: (
                client.query(cash_rows).result_rows if env.row_count("transactions") == 3 else None
            ),
            30,
            "alert row",
        )
        assert rows == [("large_value.cash", 2, 1)]  # second deposit folded in, not re-sent
        n_alerts = client.query(f"SELECT count() FROM {db}.alerts FINAL").result_rows[0][0]
        client.close()

        # other rules or the model may fire on these events too: look at the cash alert
        published = [json.loads(m.value) for m in env.consume(ALERTS, n_alerts)]
        [alert] = [a for a in published if a["rule_id"] == "large_value.cash"]
        assert alert["severity"] == "orange" and alert["owner"] == "aml-reporting"
        assert alert["subject_id"] == "c-big" and alert["report_due"]
        assert alert["evidence"]["total"] == 60000.0

        def cash_posts():
            return [(h, b) for h, b in hook.received if b["rule_id"] == "large_value.cash"]

        wait_for(cash_posts, 30, "webhook POST")
        [(headers, body)] = cash_posts()  # sent once
        assert body["alert_id"] == alert["alert_id"]
        assert headers["X-Finpulse-Alert-Id"] == alert["alert_id"]
        assert headers["X-Finpulse-Signature"].startswith("sha256=")


def test_failing_webhook_dead_letters_alerts_and_never_blocks_scoring(env):
    with RecordingWebhook(status=503) as hook:
        worker = env.worker(
            webhook_url=hook.url,
            webhook_max_attempts=3,
            webhook_retry_initial_s=0.05,
            webhook_retry_max_s=0.1,
        )
        env.produce(TRANSACTIONS, [f.encode(_large_cash("c-1"))], [b"c-1"])
        more = [f.transaction() for _ in range(300)]
        env.produce(TRANSACTIONS, [f.encode(e) for e in more])
        assert env.wait_rows("transactions", 301) == 301

        # Every alert of the run fails delivery (other rules or the model may fire too):
        # wait until dead letters, the worker's counter and the attempts all agree.
        def settled():
            n = env.row_count("deadletters")
            failed = worker.stats().get("notify_failed")
            return n if n >= 1 and failed == n and hook.attempts == 3 * n else None

        n = wait_for(settled, 45, "every failed alert dead-lettered after 3 attempts")
        client = env.client()
        rows = client.query(
            f"SELECT error_type, source_topic, error, raw_b64 FROM "
            f"{env.settings.clickhouse_database}.deadletters FINAL"
        ).result_rows
        client.close()
        assert len(rows) == n
        assert {(r[0], r[1]) for r in rows} == {("notify_failed", ALERTS)}
        assert all("after 3 attempts: HTTP 503" in r[2] for r in rows)
        rules = {json.loads(base64.b64decode(r[3]))["rule_id"] for r in rows}
        assert "large_value.cash" in rules
