"""Minute aggregates, late events and the SLA minute counts one partition sends to the channel
owners (explicit times)."""

from __future__ import annotations

from collections import Counter

from finpulse.config.settings import Settings
from finpulse.models.events import ChannelMinutes, ServiceChannel
from finpulse.sinks.tables import SERVICE_MINUTES_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.partitioning import key_partition
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import CHANNEL_MINUTES
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.records import PartitionRecord, SlaState
from finpulse.streams.stages.service.service_level import AGG_RETENTION_MS, ServiceLevel
from finpulse.streams.stages.service.windows import MINUTE_MS, to_ms

from ._events import interaction, record

T0 = 1_767_607_200_000  # 2026-01-05T10:00Z


def _level() -> ServiceLevel:
    return ServiceLevel(Settings(topic_partitions=4), Counter())


def _add(level: ServiceLevel, meta: PartitionRecord, ms: int, wait: float, offset: int = 0) -> None:
    ev = interaction(channel="call_center", wait_seconds=wait)
    meta.watermark_ms = max(meta.watermark_ms or ms, ms)
    level.add(meta, ev, record(offset=offset), ms, repeat=False, complaint=False, touched=set())


def test_contacts_add_to_their_minute_and_version_follows_the_offset():
    level, meta, touched = _level(), PartitionRecord(), set()
    ev = interaction(channel="chat", wait_seconds=40.0, transfers=1)
    level.add(meta, ev, record(offset=9), 61_000, repeat=True, complaint=True, touched=touched)
    [(partition, key)] = touched
    assert (partition, key) == (0, "60000|chat|individual|retail")
    contacts, answered, *_rest, transferred, complaints, repeats = meta.minute_aggregates[key]
    assert (contacts, answered, transferred, complaints, repeats) == (1, 0, 1, 1, 1)
    assert meta.version == 10 and meta.sla.minutes == {"chat": {60000: [1, 0]}}


def test_late_contacts_are_counted_not_applied():
    level = _level()
    meta = PartitionRecord(aggregate_floor_ms=5 * MINUTE_MS, sla=SlaState(6 * MINUTE_MS))
    _add(level, meta, 4 * MINUTE_MS, 5.0)  # below the floor and already judged
    _add(level, meta, 6 * MINUTE_MS + 1, 5.0)  # aggregated, but its SLA minute is closed
    assert level.counts == Counter({"service.late_dropped": 1, "service.late_for_sla": 2})
    assert list(meta.minute_aggregates) == [f"{6 * MINUTE_MS}|call_center|individual|retail"]


def test_a_closed_minute_goes_to_every_channel_owner_once():
    level, meta, out = _level(), PartitionRecord(), BatchOutput()
    for k in range(6):
        _add(level, meta, T0 + k * 9000, 5.0 if k < 4 else 240.0)
    level.close_minutes(2, meta, out)  # only the minute before: nothing in it
    assert [ChannelMinutes.model_validate_json(m.value).minutes for m in out.messages] == [[]] * 6
    out.messages.clear()
    _add(level, meta, T0 + MINUTE_MS + 20_000, 5.0)  # past the end plus the 20 s grace
    level.close_minutes(2, meta, out)
    sent = {m.key.decode(): ChannelMinutes.model_validate_json(m.value) for m in out.messages}
    assert sorted(sent) == sorted(c.value for c in ServiceChannel)
    assert {m.topic for m in out.messages} == {CHANNEL_MINUTES}
    assert all(m.partition == key_partition(m.key, 4) for m in out.messages)
    call = sent["call_center"]
    assert (call.source_partition, to_ms(call.closed_minute)) == (2, T0)
    assert [(to_ms(c.minute), c.contacts, c.answered) for c in call.minutes] == [(T0, 6, 4)]
    assert all(sent[ch].minutes == [] for ch in sent if ch != "call_center")
    out.messages.clear()
    level.close_minutes(2, meta, out)  # nothing new closed: nothing sent
    assert out.messages == []


def test_a_minute_closed_again_after_a_crash_sends_the_same_bytes():
    def run() -> list[bytes | None]:
        level, meta, out = _level(), PartitionRecord(), BatchOutput()
        for k in range(5):
            _add(level, meta, T0 + k * 7000, 30.0)
        _add(level, meta, T0 + 2 * MINUTE_MS, 5.0)
        level.close_minutes(0, meta, out)
        return [m.value for m in out.messages]

    assert run() == run()


def test_pruning_of_old_aggregates_follows_the_closed_minute():
    level, meta, out = _level(), PartitionRecord(), BatchOutput()
    _add(level, meta, T0, 5.0)
    meta.watermark_ms = T0 + 20 * MINUTE_MS
    level.close_minutes(1, meta, out)
    assert meta.sla.closed_minute_ms is not None and meta.minute_aggregates == {}
    assert meta.aggregate_floor_ms == meta.sla.closed_minute_ms - AGG_RETENTION_MS


def test_minute_rows_are_written_whole_in_key_order():
    level, out = _level(), BatchOutput()
    parts = BatchCache(MemoryState("p"))
    meta = parts.get("p0", PartitionRecord, partition=0)
    for ms, offset in ((61_000, 3), (1_000, 4)):
        _add(level, meta, ms, 5.0, offset)
    keys = set((0, k) for k in meta.minute_aggregates)
    level.write_minutes(parts, keys, out)
    rows = out.rows[SERVICE_MINUTES_TABLE]
    assert [r[0].minute for r in rows] == [0, 1] and {r[-2] for r in rows} == {5}
