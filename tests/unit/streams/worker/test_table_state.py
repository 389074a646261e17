"""A Faust table's values: restored as bytes, decoded into their records on first read,
written to the changelog by the state codec."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state_codec import StateCodec, encode
from finpulse.streams.stages.alerting import AlertState
from finpulse.streams.worker.table_state import FaustTableState

TOPIC = "app-alert_state-changelog"


def _table(restored: dict[str, bytes]) -> FaustTableState:
    """A table whose memory store Faust's recovery filled with ``restored`` on partition 0
    (a fake Faust table object: only the attributes FaustTableState reads)."""
    table = SimpleNamespace(
        name="alert_state",
        data=SimpleNamespace(data=dict(restored), _key_partition=dict.fromkeys(restored, 0)),
        changelog_topic=SimpleNamespace(get_topic_name=lambda: TOPIC),
    )
    return FaustTableState(table, StateCodec("alert_state", AlertState))


def test_restored_records_of_this_and_the_previous_release_are_read_and_bad_ones_start_fresh():
    st = AlertState("a-1", "2026-01-01T00:00:00+08:00", "2026-01-01T01:00:00+08:00", 2, "red")
    legacy = {"id": "a-2", "first": "f", "until": "u", "n": 3, "sev": "blue", "sent": "blue"}
    table = _table({"k1": encode(st), "k2": orjson.dumps(legacy), "k3": b"\xc1garbage"})
    assert table.get("k1", partition=0) == st
    assert table.get("k2", partition=0) == AlertState("a-2", "f", "u", 3, "blue", "blue")
    assert table.get("k3", partition=0) is None
    assert table.get("k3", "fresh", partition=0) == "fresh"
    assert dict(table.items()) == {"k1": st, "k2": table.get("k2", partition=0)}


def test_changes_go_to_the_changelog_encoded_one_record_per_key():
    table = _table({})
    record = RawRecord("finpulse.alerts", 3, 10, b"{}", b"k")
    first = AlertState("a-1", "f", "u", 1)
    table.put("k", first, record)
    table.put("k", AlertState("a-1", "f", "u", 2), record)
    table.delete("gone", record)
    (put, deleted) = table.changelog()
    assert (put.key, put.partition, deleted.key, deleted.value) == (b'"k"', 3, b'"gone"', None)
    assert StateCodec("t", AlertState).decode(put.value or b"").occurrences == 2
    assert table.changelog() == []
