"""Model checkpoints in the real ClickHouse (finpulse.sinks.checkpoints, migration 0052):
several workers' checkpoints at one learning-stream position are one row, the furthest
position is restored even when a replaying worker wrote an older one later, and the
previous table's newest checkpoint of each model is carried over."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from finpulse.config.settings import Settings
from finpulse.sinks.checkpoints import ClickHouseCheckpoints, checkpoint_row, loads_blob
from finpulse.sinks.clickhouse import ClickHouseSink, make_client
from finpulse.sinks.migrate import migrate
from finpulse.sinks.tables import MODEL_CHECKPOINTS_TABLE

pytestmark = pytest.mark.integration
_n = itertools.count()
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
TABLE = MODEL_CHECKPOINTS_TABLE.name


@pytest.fixture
def settings(clickhouse: Any) -> Settings:
    s = Settings(
        clickhouse_url=clickhouse.clickhouse_url,
        clickhouse_database=f"checkpoints_{next(_n)}_{int(datetime.now().timestamp())}",
        sink_retry_initial_s=0.01,
        sink_retry_max_s=0.05,
    )
    migrate(s)
    return s


def _write(settings: Settings, rows: list[tuple[Any, ...]]) -> None:
    """One insert through the sink the committer uses."""
    t = MODEL_CHECKPOINTS_TABLE
    asyncio.run(ClickHouseSink(settings, t.name, t.columns, t.id_column).write(rows))


def _query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` ({db}.{table}: the checkpoints table)."""
    client = make_client(settings)
    try:
        query = sql.format(db=settings.clickhouse_database, table=TABLE)
        return list(client.query(query).result_rows)
    finally:
        client.close()


def _worker_row(worker: str, position: int, minutes: int, model: str = "risk") -> tuple[Any, ...]:
    labels = 5 * position
    obj = {"worker": worker, "position": position}
    at = T0 + timedelta(minutes=minutes)
    return checkpoint_row(model, f"{model}-v1+{labels}", labels, obj, at, position=position)


def test_three_workers_checkpoints_at_one_position_are_one_row_and_the_furthest_loads(
    settings: Settings,
) -> None:
    # three workers pass risk positions 4 and 9, each an insert with its own satisfaction
    # checkpoint (the inserts differ: the insert deduplication by row ids keeps all three)
    for k, worker in enumerate(("a", "b", "c")):
        for position in (4, 9):
            minutes = 10 * position + k
            risk = _worker_row(worker, position, minutes)
            _write(settings, [risk, _worker_row(worker, position + k, minutes, "satisfaction")])
    # a worker replaying the stream from an old checkpoint writes position 4 last
    _write(settings, [_worker_row("late", 4, 500)])
    loaded = ClickHouseCheckpoints(settings).load_latest("risk")
    assert loaded["position"] == 9 and loaded["worker"] == "c"
    _query(settings, "OPTIMIZE TABLE {db}.{table} FINAL")
    rows = _query(
        settings, "SELECT position, count() FROM {db}.{table} WHERE model = 'risk' GROUP BY ALL"
    )
    assert sorted(rows) == [(4, 1), (9, 1)]
    # of one position, the newest row is kept: c's at 9 (so b's and c's were stored)
    kept = _query(settings, "SELECT position, blob FROM {db}.{table} WHERE model = 'risk'")
    assert {p: loads_blob(b)["worker"] for p, b in kept} == {4: "late", 9: "c"}
    assert ClickHouseCheckpoints(settings).load_latest("risk") == loaded


def test_the_previous_tables_newest_checkpoint_per_model_is_carried_over_once(
    settings: Settings,
) -> None:
    old = [
        (f"risk:v{k}:{k}", "risk", T0 + timedelta(minutes=k), f"risk-v1+{k}", k, _blob(k))
        for k in (1, 3, 2)
    ] + [("sat:v7:7", "satisfaction", T0, "satisfaction-7", 7, _blob(7))]
    client = make_client(settings)
    try:
        client.insert(
            "model_checkpoints",
            old,
            column_names=[
                "checkpoint_id",
                "model",
                "created_at",
                "model_version",
                "n_learned",
                "blob",
            ],
        )
        # the migration runs again as on a database the previous release created
        for _ in range(2):
            client.command(
                "ALTER TABLE schema_migrations DELETE WHERE version = 52",
                settings={"mutations_sync": 2},
            )
            assert migrate(settings) == [52]
    finally:
        client.close()
    store = ClickHouseCheckpoints(settings)
    assert store.load_latest("risk") == {"k": 3} and store.load_latest("satisfaction") == {"k": 7}
    rows = _query(settings, "SELECT model, position, n_learned FROM {db}.{table} FINAL")
    assert sorted(rows) == [("risk", -1, 3), ("satisfaction", -1, 7)]
    # a checkpoint with a position, even older, is further than a carried-over one
    _write(settings, [checkpoint_row("risk", "risk-v1+0", 0, {"k": 0}, T0, position=0)])
    assert store.load_latest("risk") == {"k": 0}


def _blob(k: int) -> str:
    return checkpoint_row("m", "v", 0, {"k": k})[5]
