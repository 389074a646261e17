"""Consumer lag (finpulse.streams.worker.lag): next offset, lag in events and in event time, the
interval figures, and the rows written to ``consumer_lag``."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from finpulse.sinks.tables import CONSUMER_LAG_TABLE
from finpulse.streams.worker.intake import IntakeBuffer
from finpulse.streams.worker.lag import LagMonitor, Position, partition_lag

T = "finpulse.transactions"
AT = datetime(2026, 1, 5, 10, tzinfo=UTC)


def msg(offset: int, ts: float, partition: int = 0, generation: int = 1) -> Any:
    return SimpleNamespace(
        tp=TP(T, partition), offset=offset, timestamp=ts, generation_id=generation
    )


def test_partition_lag_is_events_behind_and_event_time_between_fetched_and_processed() -> None:
    assert partition_lag(1000, 400, fetched_ts=130.0, processed_ts=100.0) == (600, 30.0)
    assert partition_lag(1000, 1000, fetched_ts=130.0, processed_ts=100.0) == (0, 0.0)
    # out-of-order timestamps never give a negative lag
    assert partition_lag(1000, 990, fetched_ts=99.0, processed_ts=100.0) == (10, 0.0)
    # a high watermark older than the processed offset (fetch answered before) is no lag
    assert partition_lag(10, 11, fetched_ts=None, processed_ts=None) == (0, 0.0)


def test_next_offset_is_newest_processed_plus_one_else_first_fetched() -> None:
    assert Position((5, 1.0), (20, 9.0), (11, 4.0)).lag(30) == (12, 18, 5.0)
    assert Position((5, 1.0), (20, 9.0), None).lag(30) == (5, 25, 8.0)
    assert Position(None, None, None).lag(30) == (30, 0, 0.0)  # the fetch returned nothing
    assert Position((5, 1.0), (20, 9.0), (20, 9.0)).lag(21) == (21, 0, 0.0)  # caught up


class Counters:
    def __init__(self) -> None:
        self.events, self.deadletters = 0, 0

    def __call__(self) -> tuple[int, int]:
        return self.events, self.deadletters


def monitor() -> tuple[LagMonitor, IntakeBuffer, Counters]:
    buffer = IntakeBuffer(maxsize=10_000)
    counters = Counters()
    return LagMonitor("host:1", {T: buffer}, counters), buffer, counters


def test_rows_follow_fetch_and_commit_of_a_paused_then_resumed_worker() -> None:
    lag, buffer, counters = monitor()
    tp0, tp1 = TP(T, 0), TP(T, 1)
    high = {tp0: 100, tp1: 50}
    for o in range(100):
        buffer.put(msg(o, 1000.0 + o))
    lag.note_processed([msg(o, 1000.0 + o) for o in range(100)])
    rows = lag.rows([tp1, tp0], 1, high.get, {tp0: 100}, at=AT, now_monotonic=lag._since + 5)
    # tp1 was never fetched from in this generation; its high watermark says where it is
    assert [r[2:9] for r in rows] == [
        (T, 0, 100, 100, 100, 0, 0.0),
        (T, 1, 50, 50, None, 0, 0.0),
    ]
    # paused: 300 more produced; after the resume 200 are fetched, none committed yet
    high[tp0] = 400
    for o in range(100, 300):
        buffer.put(msg(o, 1000.0 + o))
    (row, _) = lag.rows([tp0, tp1], 1, high.get, {}, at=AT, now_monotonic=lag._since + 5)
    assert row[4:9] == (100, 400, None, 300, 200.0)  # next, high, end, events, seconds
    # 150 committed
    counters.events, counters.deadletters = 150, 3
    lag.note_processed([msg(o, 1000.0 + o) for o in range(100, 250)])
    lag.note_batch_ms(40.0)
    lag.note_batch_ms(60.0)
    (row, _) = lag.rows([tp0, tp1], 1, high.get, {}, at=AT, now_monotonic=lag._since + 5)
    assert row[4:9] == (250, 400, None, 150, 50.0)
    assert row[9:14] == (30.0, 40.0, 60.0, 3, 5.0)  # events/s, p50, p99, dead letters, s
    # caught up
    for o in range(300, 400):
        buffer.put(msg(o, 1000.0 + o))
    counters.events = 300
    lag.note_processed([msg(o, 1000.0 + o) for o in range(250, 400)])
    (row, _) = lag.rows([tp0, tp1], 1, high.get, {}, at=AT, now_monotonic=lag._since + 10)
    assert row[4:14] == (400, 400, None, 0, 0.0, 15.0, 0.0, 0.0, 0, 10.0)
    assert len(row) == len(CONSUMER_LAG_TABLE.columns)
    assert row[0] == AT and row[1] == "host:1"
    assert row[-1] == f"host:1|{T}|0|2026-01-05T10:00:00.000+00:00"


def test_a_new_generation_forgets_the_old_progress() -> None:
    lag, buffer, _ = monitor()
    tp0 = TP(T, 0)
    for o in range(10):
        buffer.put(msg(o, float(o)))
    lag.note_processed([msg(o, float(o)) for o in range(10)])
    # rebalance: generation 2 re-fetches from the committed offset 6
    (row,) = lag.rows([tp0], 2, {tp0: 10}.get, {}, at=AT)
    assert row[4:9] == (10, 10, None, 0, 0.0)  # nothing known of generation 2: at the end
    for o in range(6, 10):
        buffer.put(msg(o, float(o), generation=2))
    (row,) = lag.rows([tp0], 2, {tp0: 10}.get, {}, at=AT)
    assert row[4:9] == (6, 10, None, 4, 3.0)


def test_partitions_without_a_high_watermark_and_revoked_ones_have_no_row() -> None:
    lag, _, _ = monitor()
    tp0, tp1 = TP(T, 0), TP(T, 1)
    lag.note_processed([msg(3, 1.0, partition=1)])
    assert lag.rows([tp0], 1, lambda tp: None, {}, at=AT) == []
    assert tp1 not in lag.processed  # revoked: forgotten


def test_the_batch_goes_to_the_consumer_lag_table() -> None:
    lag, _, _ = monitor()
    out = lag.batch([("row",)])
    assert out.rows == {CONSUMER_LAG_TABLE: [("row",)]} and out.valid_count == 0
