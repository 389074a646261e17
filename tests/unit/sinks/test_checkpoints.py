"""Which checkpoint is the latest (finpulse.sinks.checkpoints): the furthest learning-stream
position, then the newest; the in-memory store answers as the ClickHouse query does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finpulse.sinks.checkpoints import MemoryCheckpoints, checkpoint_row
from finpulse.sinks.tables import MODEL_CHECKPOINTS_TABLE

T0 = datetime(2026, 12, 7, tzinfo=UTC)


def row(name: str, position: int | None, minutes: int) -> tuple[object, ...]:
    at = T0 + timedelta(minutes=minutes)
    return checkpoint_row("risk", "risk-v1", 0, name, at, position=position)


def test_a_row_has_the_tables_columns_with_its_position_last():
    r = row("a", 12, 0)
    assert len(r) == len(MODEL_CHECKPOINTS_TABLE.columns)
    assert MODEL_CHECKPOINTS_TABLE.columns[-1] == "position" and r[-1] == 12
    assert row("a", None, 0)[-1] == -1


def test_the_furthest_position_wins_over_a_newer_older_one_and_ties_go_to_the_newest():
    store = MemoryCheckpoints()
    for name, position, minutes in [
        ("a", 9, 1),
        ("lagging", 4, 50),
        ("b", 9, 3),
        ("old", None, 99),
    ]:
        store.save_row(row(name, position, minutes))
    assert store.load_latest("risk") == "b"
