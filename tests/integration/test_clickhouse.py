"""The ClickHouse sink and migrations against the real ClickHouse server."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from finpulse.config.settings import Settings
from finpulse.sinks.clickhouse import ClickHouseSink, make_client
from finpulse.sinks.migrate import discover, migrate
from finpulse.sinks.tables import TRANSACTIONS_TABLE
from finpulse.streams.local.stack import free_port

pytestmark = pytest.mark.integration
_n = itertools.count()
NOW = datetime.now(UTC)  # re-delivered events carry their original timestamp


@pytest.fixture
def settings(clickhouse):
    s = Settings(
        clickhouse_url=clickhouse.clickhouse_url,
        clickhouse_database=f"sink_{next(_n)}_{int(datetime.now().timestamp())}",
        sink_max_rows=100,
        sink_retry_initial_s=0.01,
        sink_retry_max_s=0.05,
    )
    migrate(s)
    return s


def _rows(n, start=0):
    return [
        (
            f"e-{i}",
            NOW,
            "c-1",
            "individual",
            "retail",
            "a-1",
            Decimal("10.5"),
            "CNY",
            "debit",
            "card_payment",
            "pos",
            None,
            None,
            None,
            None,
            None,
            None,
            1,
            0,
            i,
        )
        for i in range(start, start + n)
    ]


def _count(settings, final=False):
    client = make_client(settings)
    try:
        q = f"SELECT count() FROM {settings.clickhouse_database}.transactions"
        return client.query(q + (" FINAL" if final else "")).result_rows[0][0]
    finally:
        client.close()


def _sink(settings):
    sink = ClickHouseSink(settings, "transactions", TRANSACTIONS_TABLE.columns, "event_id")
    sink.setup()
    return sink


def test_migrate_is_idempotent(settings):
    assert migrate(settings) == []
    client = make_client(settings)
    tables = {
        r[0]
        for r in client.query(
            f"SELECT name FROM system.tables WHERE database = '{settings.clickhouse_database}'"
        ).result_rows
    }
    client.close()
    assert {
        "transactions",
        "interactions",
        "feedback",
        "deadletters",
        "schema_migrations",
    } <= tables
    versions = [m.version for m in discover()]
    assert versions == sorted(set(versions))


def test_sink_writes_in_chunks(settings):
    sink = _sink(settings)
    asyncio.run(sink.write(_rows(250)))
    assert sink.rows_written == 250
    assert _count(settings) == 250


def test_replayed_batch_is_not_inserted_twice(settings):
    sink = _sink(settings)
    batch = _rows(80)
    asyncio.run(sink.write(batch))
    asyncio.run(sink.write(batch))  # e.g. a retry whose first attempt had landed
    assert _count(settings) == 80  # dropped at insert by the dedup token, before any merge


def test_redelivered_events_in_other_batches_collapse(settings):
    sink = _sink(settings)
    asyncio.run(sink.write(_rows(60)))
    asyncio.run(sink.write(_rows(60, start=30)))  # 30 overlap, batch differs
    assert _count(settings, final=True) == 90


def test_unreachable_clickhouse_means_wait_not_drop(settings):
    down = settings.model_copy(update={"clickhouse_url": f"http://127.0.0.1:{free_port()}"})
    sink = _sink(down)

    async def scenario():
        task = asyncio.create_task(sink.write(_rows(5)))
        done, _ = await asyncio.wait({task}, timeout=1.0)
        assert not done
        assert sink.retries >= 2
        # ClickHouse "comes back": point the sink at the live server.
        sink.settings = settings
        await asyncio.wait_for(task, timeout=10)

    asyncio.run(scenario())
    assert _count(settings) == 5
