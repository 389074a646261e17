"""Pooling one channel's minute counts from every source partition (explicit times)."""

from __future__ import annotations

from finpulse.streams.core.state_codec import StateCodec
from finpulse.streams.stages.service.pooling import judge, judged_through, pool, pooled_cells
from finpulse.streams.stages.service.records import ChannelRecord
from finpulse.streams.stages.service.windows import MINUTE_MS

M = MINUTE_MS
RULES = {"window_minutes": 2, "target": 0.8, "z": 1.645, "min_contacts": 3}


def _judge(rec: ChannelRecord, partitions: int = 3, wait_ms: int = 60_000):
    return judge(rec, "chat", partitions=partitions, wait_ms=wait_ms, **RULES)


def test_a_cell_sent_again_replaces_itself():
    rec = ChannelRecord()
    for _ in range(3):  # re-delivered, or re-sent after the source's crash
        pool(rec, source=1, closed=5 * M, cells={5 * M: [4, 1]})
    pool(rec, source=2, closed=5 * M, cells={5 * M: [2, 2]})
    assert pooled_cells(rec) == {5 * M: [6, 3]}
    pool(rec, source=1, closed=5 * M, cells={5 * M: [5, 1]})  # re-run with one more contact
    assert pooled_cells(rec) == {5 * M: [7, 3]}


def test_a_source_never_moves_back():
    rec = ChannelRecord()
    pool(rec, source=0, closed=7 * M, cells={})
    pool(rec, source=0, closed=5 * M, cells={})  # an older message re-delivered
    assert rec.sources == {0: 7 * M}


def test_a_minute_waits_for_every_source_then_is_judged_on_all_contacts():
    rec = ChannelRecord()
    # each partition alone has too few contacts to judge (min 3), pooled they breach
    for source in range(3):
        pool(rec, source=source, closed=0, cells={0: [2, 0]})
        if source < 2:
            assert _judge(rec) == []  # not every source has closed minute 0
    [check] = _judge(rec)
    assert (check.minute_ms, check.contacts, check.answered, check.breached) == (0, 6, 0, True)


def test_an_idle_source_holds_the_channel_back_no_longer_than_the_wait():
    rec = ChannelRecord()
    pool(rec, source=0, closed=0, cells={0: [3, 0]})
    pool(rec, source=1, closed=0, cells={0: [3, 0]})
    assert _judge(rec, partitions=3) == []  # source 2 silent: minute 0 waits
    pool(rec, source=0, closed=1 * M, cells={1 * M: [3, 0]})
    assert [c.minute_ms for c in _judge(rec, partitions=3)] == [0]  # lead 1 min past it
    assert judged_through({0: 10 * M, 1: 10 * M, 2: 0}, partitions=3, wait_ms=120_000) == 8 * M


def test_a_cell_after_its_minute_was_judged_counts_in_later_windows():
    rec = ChannelRecord()
    pool(rec, source=0, closed=1 * M, cells={0: [4, 4], 1 * M: [4, 4]})
    assert [c.minute_ms for c in _judge(rec, partitions=2)] == [0]
    late = pool(rec, source=1, closed=1 * M, cells={0: [9, 0], 1 * M: [9, 0]})
    assert late == 1
    [check] = _judge(rec, partitions=2)
    # minute 1's window (minutes 0-1) holds the late cell of minute 0
    assert (check.minute_ms, check.contacts, check.answered) == (1 * M, 26, 8)


def test_cells_are_kept_only_while_a_window_needs_them():
    rec = ChannelRecord()
    for m in range(10):
        pool(rec, source=0, closed=m * M, cells={m * M: [1, 1]})
        _judge(rec, partitions=1)
    assert sorted(rec.cells) == [9 * M]  # the next minute's 2-minute window needs minute 9
    pool(rec, source=0, closed=9 * M, cells={3 * M: [1, 1]})  # re-sent long after: dropped
    assert sorted(rec.cells) == [9 * M]


def test_the_record_survives_the_state_codec_and_judges_on():
    codec = StateCodec("service_channels", ChannelRecord)
    run = ChannelRecord()
    restored = ChannelRecord()
    checks = {"run": [], "restored": []}
    for m in range(6):
        cells = {m * M: [5, 0 if m >= 2 else 5]}
        for name, rec in (("run", run), ("restored", restored)):
            pool(rec, source=0, closed=m * M, cells=cells)
            checks[name] += _judge(rec, partitions=1)
        restored = codec.decode(codec.encode(restored))  # a restart after every minute
    assert checks["run"] == checks["restored"]
    assert [c.consecutive for c in checks["run"]] == [0, 0, 1, 2, 3, 4]
