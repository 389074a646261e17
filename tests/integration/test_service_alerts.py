"""Service end to end: an outage in interactions -> SLA alert on the topic, in ClickHouse and at
a local webhook; the per-partition minute rows sum to exact channel totals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from streams.service.names import RULE_SLA
from streams.topics import ALERTS, INTERACTIONS
from tests import factories as f
from tests.waiting import wait_for
from tests.webhook_server import RecordingWebhook

pytestmark = pytest.mark.integration

PER_MINUTE = 8
CLEAN_MINUTES = 4
DOWN_MINUTES = 6


def _outage_contacts(start: datetime) -> list[dict]:
    events = []
    for m in range(CLEAN_MINUTES + DOWN_MINUTES + 2):
        down = CLEAN_MINUTES <= m < CLEAN_MINUTES + DOWN_MINUTES
        for k in range(PER_MINUTE):
            ts = start + timedelta(minutes=m, seconds=3 + 7 * k)
            events.append(
                f.interaction(
                    customer_id=f"c-{m}-{k}",
                    ts=ts.isoformat(),
                    wait_seconds=240.0 if down else 6.0,
                    channel="call_center",
                )
            )
    return events


def test_channel_outage_alert_reaches_topic_clickhouse_and_webhook(env):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=20)
    events = _outage_contacts(start)
    with RecordingWebhook() as hook:
        env.worker(webhook_url=hook.url)
        env.produce(
            INTERACTIONS,
            [f.encode(e) for e in events],
            [e["customer_id"].encode() for e in events],
        )

        messages = env.consume(ALERTS, 1)
        alerts = [json.loads(m.value) for m in messages]
        sla = [a for a in alerts if a["rule_id"] == RULE_SLA]
        assert sla, alerts
        alert = sla[0]
        assert (alert["domain"], alert["subject_type"], alert["subject_id"]) == (
            "service",
            "channel",
            "call_center",
        )
        assert alert["owner"] == "contact-centre-ops" and alert["severity"] == "orange"
        outage_start = start + timedelta(minutes=CLEAN_MINUTES)
        raised = datetime.fromisoformat(alert["first_seen"])
        assert outage_start < raised <= outage_start + timedelta(minutes=5)
        assert alert["evidence"]["consecutive_below_target"] >= 3

        wait_for(lambda: any(b["rule_id"] == RULE_SLA for _, b in hook.received), 30, "webhook")
        [(_, body)] = [(h, b) for h, b in hook.received if b["rule_id"] == RULE_SLA]
        assert body["alert_id"] == alert["alert_id"]

        env.wait_rows("interactions", len(events), timeout_s=30)
        db = env.settings.clickhouse_database
        client = env.client()
        try:
            rows = wait_for(
                lambda: (
                    client.query(
                        f"SELECT rule_id, domain, channel FROM {db}.alerts FINAL "
                        f"WHERE rule_id = '{RULE_SLA}'"
                    ).result_rows
                ),
                30,
                "alert row",
            )
            assert rows == [(RULE_SLA, "service", "call_center")]

            def totals():
                return client.query(
                    f"SELECT sum(contacts), sum(answered_in_sl), uniqExact(source_partition) "
                    f"FROM {db}.service_minutes FINAL"
                ).result_rows[0]

            # exact totals over both partitions' partial rows
            try:
                wait_for(lambda: totals()[0] == len(events), 30, "all contacts in service_minutes")
            except AssertionError as exc:
                raise AssertionError(f"{totals()} for {len(events)} contacts") from exc
            _, answered, partitions = totals()
            assert answered == PER_MINUTE * (CLEAN_MINUTES + 2)
            assert partitions == 2
            by_minute = client.query(
                f"SELECT minute, contacts, service_level FROM {db}.service_channel_minutes "
                f"WHERE channel = 'call_center' ORDER BY minute"
            ).result_rows
            assert [r[1] for r in by_minute] == [PER_MINUTE] * (CLEAN_MINUTES + DOWN_MINUTES + 2)
            levels = [r[2] for r in by_minute]
            assert levels[CLEAN_MINUTES : CLEAN_MINUTES + DOWN_MINUTES] == [0.0] * DOWN_MINUTES
            assert levels[0] == 1.0
            statuses = client.query(
                f"SELECT count(), countIf(lifecycle = 'new') FROM {db}.customer_status FINAL"
            ).result_rows[0]
            assert statuses == (len(events), len(events))
        finally:
            client.close()
