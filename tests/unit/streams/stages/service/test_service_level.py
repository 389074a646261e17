"""Minute aggregates, late events and SLA judgement of one partition (explicit times)."""

from __future__ import annotations

from collections import Counter

from finpulse.config.policy import load_policy
from finpulse.config.settings import Settings
from finpulse.sinks.tables import SERVICE_MINUTES_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.state import MemoryState
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.names import RULE_SLA
from finpulse.streams.stages.service.records import PartitionRecord, SlaState
from finpulse.streams.stages.service.service_level import AGG_RETENTION_MS, ServiceLevel
from finpulse.streams.stages.service.windows import MINUTE_MS

from ._events import interaction, record


def _level() -> ServiceLevel:
    return ServiceLevel(Settings(), RuleEngine(load_policy()), Counter())


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


def test_an_outage_breaches_and_raises_the_sla_rule_at_the_minute_close():
    level, meta, out = _level(), PartitionRecord(), BatchOutput()
    for m in range(8):
        for k in range(6):
            _add(level, meta, m * MINUTE_MS + k * 9000, 5.0 if m < 3 else 240.0)
        level.close_minutes(0, meta, out)
    [first, *_] = [c for c in out.candidates if c.rule_id == RULE_SLA]
    assert first.evidence["consecutive_below_target"] == 3
    assert first.source_event_id.startswith("sla|call_center|")
    assert first.context == {
        "threshold_s": 20.0,
        "partition": 0,
        "partitions": Settings().topic_partitions,
    }


def test_kept_sla_checks_and_pruning_of_old_aggregates():
    level, meta, out = _level(), PartitionRecord(), BatchOutput()
    level.keep_sla_checks = True
    _add(level, meta, 0, 5.0)
    meta.watermark_ms = 20 * MINUTE_MS
    level.close_minutes(1, meta, out)
    assert {p for p, _check in level.sla_checks} == {1}
    assert meta.sla.closed_minute_ms is not None and meta.minute_aggregates == {}
    assert meta.aggregate_floor_ms == meta.sla.closed_minute_ms - AGG_RETENTION_MS


def test_minute_rows_are_written_whole_in_key_order():
    level, out = _level(), BatchOutput()
    parts = BatchCache(MemoryState("p"))
    meta = parts.get("p0", PartitionRecord)
    for ms, offset in ((61_000, 3), (1_000, 4)):
        _add(level, meta, ms, 5.0, offset)
    keys = set((0, k) for k in meta.minute_aggregates)
    level.write_minutes(parts, keys, out)
    rows = out.rows[SERVICE_MINUTES_TABLE]
    assert [r[0].minute for r in rows] == [0, 1] and {r[-2] for r in rows} == {5}
