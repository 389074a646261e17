"""Service state survives a worker restart or crash (Faust changelog): a minute that spans the
restart keeps its exact count (re-delivered events are not counted twice), and a complaint
opened before it closes after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from finpulse.streams.core.topics import FEEDBACK, INTERACTIONS
from tests import factories as f
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _send(env, topic, events):
    env.produce(topic, [f.encode(e) for e in events], [e["customer_id"].encode() for e in events])


def _scalar(env, sql):
    client = env.client()
    try:
        return client.query(sql.format(db=env.settings.clickhouse_database)).result_rows[0][0]
    except Exception:  # table not there yet / ClickHouse busy: caller keeps waiting
        return None
    finally:
        client.close()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_minute_aggregates_and_complaints_continue_after_restart(env, how):
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    complaint = f.interaction(
        customer_id="c-cmp",
        ts=(minute + timedelta(seconds=1)).isoformat(),
        interaction_type="complaint",
        complaint_id="cmp-restart",
        channel="chat",
    )
    first = [
        f.interaction(customer_id=f"c-a{k}", ts=(minute + timedelta(seconds=2 + k)).isoformat())
        for k in range(39)
    ]
    contacts = "SELECT sum(contacts) FROM {db}.service_minutes FINAL"
    worker = env.worker(name="first")
    _send(env, INTERACTIONS, [complaint, *first])
    wait_for(lambda: _scalar(env, contacts) == 40, 60, "40 contacts before the restart")
    if how == "stop":
        assert worker.stop(timeout_s=20) == 0
    else:
        worker.kill()  # SIGKILL: offsets and changelog as far as they got; events re-delivered

    second = [
        f.interaction(customer_id=f"c-b{k}", ts=(minute + timedelta(seconds=42 + k)).isoformat())
        for k in range(15)
    ]
    closed = f.feedback(
        customer_id="c-cmp",
        kind="complaint_closed",
        ref_event_id=complaint["event_id"],
        ts=(minute + timedelta(seconds=58)).isoformat(),
        value=None,
    )
    env.worker(name="second")
    _send(env, INTERACTIONS, second)
    _send(env, FEEDBACK, [closed])
    # the minute row rewritten after the restart holds both halves (state came back)
    try:
        wait_for(lambda: _scalar(env, contacts) == 55, 60, "55 contacts after the restart")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; contacts now {_scalar(env, contacts)}") from None
    statuses = (
        "SELECT groupArray(status) FROM (SELECT status FROM {db}.complaints FINAL "
        "WHERE complaint_id = 'cmp-restart' ORDER BY ts)"
    )
    try:
        wait_for(
            lambda: _scalar(env, statuses) == ["open", "closed"],
            30,
            "complaint closed after the restart",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; statuses now {_scalar(env, statuses)}") from None
    keys = "uniqExact(minute, channel, segment, source_partition)"
    rows = _scalar(env, "SELECT count() FROM {db}.service_minutes FINAL")
    assert rows == _scalar(env, f"SELECT {keys} FROM {{db}}.service_minutes")
