"""The commit log: a commit cut short while its tables' changelogs are published is redone
whole on restart; a commit cut short while its log is written leaves the previous state."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

from finpulse.streams.core.batch import Outgoing
from finpulse.streams.core.state_codec import StateCodec, encode
from finpulse.streams.worker import commit_log
from finpulse.streams.worker.commit_log import DictTarget, log_entries, redo
from finpulse.streams.worker.table_state import FaustTableState

RISK, ALERTS = "app-risk-changelog", "app-alert-changelog"
CODEC = StateCodec("any")


def _record(topic: str, key: str, value: object, partition: int = 0) -> Outgoing:
    encoded = None if value is None else encode(value)
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
                stores[m.topic][key] = CODEC.decode(m.value)
    return stores


def _targets(stores: dict[str, dict[object, object]]) -> dict[str, DictTarget]:
    return {topic: DictTarget(data) for topic, data in stores.items()}


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
    assert redo(_entries(published), {0}, _targets(stores)) == 2
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
    assert redo(_entries(published), {0}, _targets(stores)) == 0  # incomplete: nothing redone
    assert stores == {RISK: {"c1": {"n": 1}}, ALERTS: {"r|c1": {"n": 1}}}


def test_redo_touches_only_the_assigned_partitions_and_deletes_tombstones() -> None:
    records = [_record(RISK, "c1", None, partition=0), _record(RISK, "c2", {"n": 5}, partition=1)]
    entries = {m.key: m.value for m in log_entries(records, "log", epoch=3) if m.key and m.value}
    stores = {RISK: {"c1": {"n": 1}, "c2": {"n": 4}}}
    assert redo(entries, {0}, _targets(stores)) == 1
    assert stores == {RISK: {"c2": {"n": 4}}}


def test_a_record_without_its_partition_is_refused() -> None:
    with pytest.raises(ValueError, match="needs its partition"):
        log_entries([Outgoing(RISK, b'"c1"', b"{}")], "log", epoch=1)


def test_what_redo_applied_is_published_again_so_a_second_crash_cannot_lose_it() -> None:
    """Two crashes: the first cuts a commit's table records short (redo completes it in
    memory); later commits replace the partition's log entries; the second restart must still
    find the first commit's records, so the worker republishes what redo applied."""
    table = FaustTableState(
        SimpleNamespace(
            name="risk",
            data=SimpleNamespace(data={}, _key_partition={}),
            changelog_topic=SimpleNamespace(get_topic_name=lambda: RISK),
        )
    )
    second = [_record(RISK, "c1", {"n": 2}), _record(RISK, "c2", {"n": 7})]
    published = [*log_entries(second, "log", epoch=2), second[0]]  # c2's record lost
    recovered = _recover(published)[RISK]
    table.store.data.update(recovered)  # type: ignore[attr-defined]  # a memory store
    redo(_entries(published), {0}, {RISK: table})
    assert table.get("c2", partition=0) == {"n": 7}
    republished = table.changelog()  # the next commit publishes them to the table
    published += [*log_entries(republished, "log", epoch=3), *republished]
    third = [_record(RISK, "c1", {"n": 3})]  # a later commit replaces the log entries
    published += [*log_entries(third, "log", epoch=4), *third]
    after_second_crash = _recover(published)
    redo(_entries(published), {0}, _targets(after_second_crash))
    assert after_second_crash[RISK] == {"c1": {"n": 3}, "c2": {"n": 7}}


def test_a_log_entry_of_the_previous_release_is_still_redone() -> None:
    """Entries were JSON objects with the records inline; an upgrade redoes them."""
    legacy = orjson.dumps({"e": 5, "n": 1, "r": [[RISK, "c1", {"n": 9}], [ALERTS, "r|c1", None]]})
    stores: dict[str, dict[object, object]] = {RISK: {}, ALERTS: {"r|c1": {"n": 1}}}
    assert redo({b"0:0": legacy}, {0}, _targets(stores)) == 2
    assert stores == {RISK: {"c1": {"n": 9}}, ALERTS: {}}


def test_an_unreadable_log_entry_is_logged_and_not_redone() -> None:
    stores: dict[str, dict[object, object]] = {RISK: {"c1": {"n": 1}}}
    assert redo({b"0:0": b"\xc1"}, {0}, _targets(stores)) == 0
    assert stores == {RISK: {"c1": {"n": 1}}}
