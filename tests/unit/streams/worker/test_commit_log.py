"""The commit log: a commit cut short while its tables' changelogs are published is redone
whole on restart; a commit cut short while its log is written leaves the previous state."""

from __future__ import annotations

import orjson
import pytest

from finpulse.streams.core.batch import Outgoing
from finpulse.streams.worker import commit_log
from finpulse.streams.worker.commit_log import log_entries, redo

RISK, ALERTS = "app-risk-changelog", "app-alert-changelog"


def _record(topic: str, key: str, value: object, partition: int = 0) -> Outgoing:
    encoded = None if value is None else orjson.dumps(value)
    return Outgoing(topic, orjson.dumps(key), encoded, partition)


def _recover(published: list[Outgoing]) -> dict[str, dict[object, object]]:
    """What Faust's recovery gives: per table, the newest value of each key."""
    stores: dict[str, dict[object, object]] = {RISK: {}, ALERTS: {}}
    for m in published:
        if m.topic in stores:
            key = orjson.loads(m.key or b"null")
            if m.value is None:
                stores[m.topic].pop(key, None)
            else:
                stores[m.topic][key] = orjson.loads(m.value)
    return stores


def _entries(published: list[Outgoing]) -> dict[bytes, bytes]:
    return {m.key: m.value for m in published if m.topic == "log" and m.key and m.value}


def test_a_crash_between_the_log_and_the_tables_is_redone_whole() -> None:
    first = [_record(RISK, "c1", {"n": 1}), _record(ALERTS, "r|c1", {"n": 1})]
    second = [_record(RISK, "c1", {"n": 2}), _record(ALERTS, "r|c1", {"n": 2})]
    published = [*log_entries(first, "log", epoch=1), *first]
    # the second commit: its log is written, then only the risk table's record lands
    published += [*log_entries(second, "log", epoch=2), second[0]]
    stores = _recover(published)
    assert stores[ALERTS]["r|c1"] == {"n": 1}  # out of step before the redo
    assert redo(_entries(published), {0}, stores) == 2
    assert stores == {RISK: {"c1": {"n": 2}}, ALERTS: {"r|c1": {"n": 2}}}


def test_a_crash_inside_the_log_leaves_the_previous_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commit_log, "CHUNK_BYTES", 40)  # one record per chunk
    first = [_record(RISK, "c1", {"n": 1}), _record(ALERTS, "r|c1", {"n": 1})]
    second = [_record(RISK, "c1", {"n": 2}), _record(ALERTS, "r|c1", {"n": 2})]
    published = [*log_entries(first, "log", epoch=1), *first]
    entries = log_entries(second, "log", epoch=2)
    assert len(entries) == 2
    published.append(entries[0])  # killed after the first chunk of the second commit
    stores = _recover(published)
    assert redo(_entries(published), {0}, stores) == 0  # incomplete: nothing redone
    assert stores == {RISK: {"c1": {"n": 1}}, ALERTS: {"r|c1": {"n": 1}}}


def test_redo_touches_only_the_assigned_partitions_and_deletes_tombstones() -> None:
    records = [_record(RISK, "c1", None, partition=0), _record(RISK, "c2", {"n": 5}, partition=1)]
    entries = {m.key: m.value for m in log_entries(records, "log", epoch=3) if m.key and m.value}
    stores = {RISK: {"c1": {"n": 1}, "c2": {"n": 4}}}
    assert redo(entries, {0}, stores) == 1
    assert stores == {RISK: {"c2": {"n": 4}}}


def test_a_record_without_its_partition_is_refused() -> None:
    with pytest.raises(ValueError, match="needs its partition"):
        log_entries([Outgoing(RISK, b'"c1"', b"{}")], "log", epoch=1)
