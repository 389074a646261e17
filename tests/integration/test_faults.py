"""Faults on real services: ClickHouse down mid-stream, worker killed mid-stream."""

from __future__ import annotations

import pytest

from finpulse.streams.core.topics import TRANSACTIONS
from tests import factories as f
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _produce_txns(env, n):
    events = [f.transaction() for _ in range(n)]
    env.produce(
        TRANSACTIONS, [f.encode(e) for e in events], [e["customer_id"].encode() for e in events]
    )
    return events


def _exact(env, table="transactions"):
    db = env.settings.clickhouse_database
    client = env.client()
    try:
        final, unique = client.query(
            f"SELECT (SELECT count() FROM {db}.{table} FINAL), "
            f"(SELECT uniqExact(event_id) FROM {db}.{table})"
        ).result_rows[0]
        return int(final), int(unique)
    finally:
        client.close()


def test_clickhouse_down_mid_stream_loses_nothing_and_duplicates_nothing(env, own_clickhouse):
    own = own_clickhouse
    try:
        worker = env.worker()
        _produce_txns(env, 1000)
        env.wait_rows("transactions", 1000)

        own.stop_service("clickhouse")
        _produce_txns(env, 1500)
        # The worker keeps retrying (backpressure), it neither crashes nor drops.
        wait_for(lambda: worker.stats().get("sink_retries", 0) >= 3, 30, "sink retries")
        assert worker.alive()

        own.start_clickhouse()
        assert env.wait_rows("transactions", 2500, timeout_s=90) == 2500
        assert _exact(env) == (2500, 2500)
    finally:
        own.stop()


def test_worker_killed_mid_stream_restarts_without_loss_or_duplicates(env):
    first = env.worker(name="first")
    _produce_txns(env, 3000)
    wait_for(lambda: env.row_count("transactions") >= 500, 60, "some rows written")
    first.kill()  # SIGKILL: no graceful commit
    _produce_txns(env, 2000)
    env.worker(name="second")
    assert env.wait_rows("transactions", 5000, timeout_s=90) == 5000
    assert _exact(env) == (5000, 5000)
