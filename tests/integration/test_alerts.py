"""Early warnings end to end: broker → worker → finpulse.alerts, ClickHouse and a webhook."""

from __future__ import annotations

import json

import pytest

from streams.topics import ALERTS, TRANSACTIONS
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

        [msg] = env.consume(ALERTS, 1)
        alert = json.loads(msg.value)
        assert alert["rule_id"] == "large_cash_single"
        assert alert["severity"] == "orange" and alert["owner"] == "aml-reporting"
        assert alert["subject_id"] == "c-big" and alert["report_due"]
        assert alert["evidence"]["amount_cny"] == 60000.0

        wait_for(lambda: hook.received, 30, "webhook POST")
        headers, body = hook.received[0]
        assert body["alert_id"] == alert["alert_id"]
        assert headers["X-Finpulse-Alert-Id"] == alert["alert_id"]
        assert headers["X-Finpulse-Signature"].startswith("sha256=")

        db = env.settings.clickhouse_database
        client = env.client()
        rows = wait_for(
            lambda: (
                client.query(
                    f"SELECT rule_id, occurrences, suppressed FROM {db}.alerts FINAL"
                ).result_rows
                if env.row_count("transactions") == 3
                else None
            ),
            30,
            "alert row",
        )
        assert rows == [("large_cash_single", 2, 1)]  # second deposit folded in, not re-sent
        client.close()
        assert len(hook.received) == 1


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
        wait_for(lambda: env.row_count("deadletters") == 1, 30, "notify dead letter")
        client = env.client()
        [(error_type, topic, error)] = client.query(
            f"SELECT error_type, source_topic, error FROM "
            f"{env.settings.clickhouse_database}.deadletters FINAL"
        ).result_rows
        client.close()
        assert (error_type, topic) == ("notify_failed", ALERTS)
        assert "after 3 attempts: HTTP 503" in error
        assert hook.attempts == 3
        assert wait_for(lambda: worker.stats().get("notify_failed") == 1, 10, "counter")
