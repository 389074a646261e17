"""Service end to end: an outage in interactions -> SLA alert on the topic, in ClickHouse and at
a local webhook; the per-partition minute rows sum to exact channel totals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from finpulse.streams.core.topics import ALERTS, INTERACTIONS
from finpulse.streams.stages.service.names import RULE_SLA
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


def test_two_workers_write_partial_rows_that_sum_exactly_and_the_outage_is_seen(env):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=20)
    events = _outage_contacts(start)
    first = env.worker(name="w1")
    second = env.worker(name="w2")
    # both workers own a partition before any event arrives (no mid-stream rebalance needed)
    wait_for(lambda: first.stats() and second.stats(), 30, "both workers running")
    env.produce(
        INTERACTIONS, [f.encode(e) for e in events], [e["customer_id"].encode() for e in events]
    )
    alerts = [json.loads(m.value) for m in env.consume(ALERTS, 1)]
    # the channel's owner judges the pooled minutes (streams/stages/service/channel_level.py)
    assert alerts and {(a["rule_id"], a["subject_id"]) for a in alerts} == {
        (RULE_SLA, "call_center")
    }
    db = env.settings.clickhouse_database
    client = env.client()
    try:

        def totals():
            return client.query(
                f"SELECT sum(contacts), sum(answered_in_sl) FROM {db}.service_minutes FINAL"
            ).result_rows[0]

        wait_for(lambda: totals()[0] == len(events), 60, "all contacts in service_minutes")
        assert totals() == (len(events), PER_MINUTE * (CLEAN_MINUTES + 2))
        levels = client.query(
            f"SELECT service_level FROM {db}.service_channel_minutes ORDER BY minute"
        ).result_rows
        assert [r[0] for r in levels[CLEAN_MINUTES : CLEAN_MINUTES + DOWN_MINUTES]] == [0.0] * 6
    finally:
        client.close()

    def processed():
        return [w.stats().get("processed", 0) for w in (first, second)]

    wait_for(lambda: sum(processed()) >= len(events), 10, "stats of both workers")
    assert min(processed()) > 0, processed()  # both workers did part of the work
