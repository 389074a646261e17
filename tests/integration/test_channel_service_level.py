"""A channel's service level is judged once, on all its contacts, whatever the workers: an
outage spread over both partitions and two workers raises one SLA alert; a worker killed in
the middle of a minute neither loses nor double-counts that minute's pooled contacts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from finpulse.streams.core.partitioning import key_partition
from finpulse.streams.core.topics import ALERTS, INTERACTIONS
from finpulse.streams.stages.service.names import RULE_SLA
from tests import factories as f
from tests.service_helpers import Driver
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

PER_MINUTE = 8
CLEAN, DOWN = 4, 6
WAIT_S = 3600.0  # the owner waits for every partition (a killed worker's too)


def _contacts(start: datetime) -> list[dict[str, Any]]:
    """Call-centre contacts of many customers (so on both partitions), an outage in the middle."""
    events = []
    for m in range(CLEAN + DOWN + 2):
        down = CLEAN <= m < CLEAN + DOWN
        for k in range(PER_MINUTE):
            events.append(
                f.interaction(
                    customer_id=f"c-{m}-{k}",
                    ts=(start + timedelta(minutes=m, seconds=3 + 7 * k)).isoformat(),
                    wait_seconds=240.0 if down else 6.0,
                    channel="call_center",
                )
            )
    return events


def _expected_firings(events: list[dict[str, Any]], partitions: int) -> int:
    """SLA rule firings of the same contacts replayed offline, partitioned like the broker."""
    d = Driver(topic_partitions=partitions, service_pool_wait_s=WAIT_S)
    for e in events:
        d.interactions([e], partition=key_partition(e["customer_id"].encode(), partitions))
    return len(d.candidates(RULE_SLA))


def _send(env, events: list[dict[str, Any]]) -> None:
    env.produce(
        INTERACTIONS, [f.encode(e) for e in events], [e["customer_id"].encode() for e in events]
    )


def _sla_rows(env) -> list[tuple[str, int]]:
    client = env.client()
    try:
        return client.query(
            f"SELECT alert_id, occurrences FROM {env.settings.clickhouse_database}.alerts FINAL "
            f"WHERE rule_id = '{RULE_SLA}'"
        ).result_rows
    except Exception:  # table busy: the caller keeps waiting
        return []
    finally:
        client.close()


def _check_one_alert(env, events: list[dict[str, Any]]) -> None:
    partitions = env.settings.topic_partitions
    assert len({key_partition(e["customer_id"].encode(), partitions) for e in events}) == 2
    firings = _expected_firings(events, partitions)
    assert firings >= 1
    env.wait_rows("interactions", len(events), timeout_s=120)
    # every minute the owner can close is judged: the alert has folded every firing
    try:
        wait_for(lambda: [r[1] for r in _sla_rows(env)] == [firings], 120, "every firing")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; rows {_sla_rows(env)}, {firings} firings") from None
    alerts = [json.loads(m.value) for m in env.consume(ALERTS, 10**6, timeout_s=3)]
    sla = [a for a in alerts if a["rule_id"] == RULE_SLA]
    assert [a["status"] for a in sla] == ["new"], sla
    [alert] = sla
    assert (alert["subject_type"], alert["subject_id"]) == ("channel", "call_center")
    # the window of the firing minute: two whole minutes of both partitions, all late
    assert (alert["context"]["contacts"], alert["context"]["answered_in_sl"]) == (
        2 * PER_MINUTE,
        0,
    )
    assert alert["evidence"]["consecutive_below_target"] == 3


def test_an_outage_over_two_workers_raises_one_alert_per_channel(env):
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    events = _contacts(start)
    first = env.worker(name="w1", service_pool_wait_s=WAIT_S)
    second = env.worker(name="w2", service_pool_wait_s=WAIT_S)
    wait_for(lambda: first.stats() and second.stats(), 60, "both workers running")
    _send(env, events)
    _check_one_alert(env, events)


def test_a_worker_killed_mid_minute_neither_loses_nor_double_counts_it(env):
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    events = _contacts(start)
    # the kill falls inside minute CLEAN + 2, the third of the outage: the alert's minute
    cut = (CLEAN + 2) * PER_MINUTE + PER_MINUTE // 2
    first = env.worker(name="w1", service_pool_wait_s=WAIT_S)
    second = env.worker(name="w2", service_pool_wait_s=WAIT_S)
    wait_for(lambda: first.stats() and second.stats(), 60, "both workers running")
    _send(env, events[:cut])
    env.wait_rows("interactions", cut, timeout_s=120)
    second.kill()  # SIGKILL: its uncommitted work comes again, its minute half counted
    _send(env, events[cut:])
    env.worker(name="w3", service_pool_wait_s=WAIT_S)
    _check_one_alert(env, events)
