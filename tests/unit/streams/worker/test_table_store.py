"""A table's local store, on a real RocksDB (rocksdict) and on Faust's memory store: records
reach the store only once the changelog has them, with the offset they reach; the decoded
cache is bounded; a worker restarted on the same directory finds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from finpulse.config.settings import Settings
from finpulse.streams.core.batch import Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.worker.app import build_app
from finpulse.streams.worker.table_state import FaustTableState
from finpulse.streams.worker.table_store import store_entries, table_entries, table_store

TOPIC = "finpulse-t-changelog"


def _state(data_dir: Path, store: str, cache_keys: int = 2) -> FaustTableState:
    app = build_app(Settings(data_dir=data_dir, state_store=store))  # type: ignore[arg-type]
    table = app.Table("t", default=None, partitions=2, value_type=bytes)
    return FaustTableState(table, store=table_store(table, cache_keys))


def _record(partition: int) -> RawRecord:
    return RawRecord("finpulse.transactions", partition, 0, b"{}", b"k")


@pytest.mark.parametrize("store", ["rocksdb", "memory"])
def test_a_record_reaches_the_store_once_the_changelog_has_it(tmp_path: Path, store: str) -> None:
    state = _state(tmp_path, store)
    state.put("c1", {"n": 1}, _record(1))
    state.delete("c2", _record(0))
    assert state.get("c1") == {"n": 1} and state.store.keys() == []  # pending only
    messages = state.changelog()
    assert [(m.key, m.partition) for m in messages] == [(b'"c1"', 1), (b'"c2"', 0)]
    state.put("c1", {"n": 2}, _record(1))  # the next batch, while the commit runs
    assert state.get("c1") == {"n": 2} and state.store.keys() == []
    state.stored({(state.table.changelog_topic.get_topic_name(), 1): 41})
    assert state.store.keys() == ["c1"] and state.get("c1") == {"n": 2}
    assert state.codec.decode(_raw(state, "c1")) == {"n": 1}  # the stored commit's value


def _raw(state: FaustTableState, key: str) -> Any:
    value = state.store.get(key)
    return value if isinstance(value, bytes) else state.codec.encode(value)


def test_rocksdb_keeps_the_offset_and_the_values_for_a_restart_on_the_same_host(
    tmp_path: Path,
) -> None:
    state = _state(tmp_path, "rocksdb")
    topic = state.table.changelog_topic.get_topic_name()
    for i in range(5):
        state.put(f"c{i}", {"n": i}, _record(i % 2))
    state.changelog()
    state.stored({(topic, 0): 10, (topic, 1): 7})
    assert state.table.data.persisted_offset(TP(topic, 0)) == 10
    assert len(state.store._cache) == 2  # type: ignore[attr-defined]  # bounded
    assert state.get("c0") == {"n": 0}  # read back from disk
    state.table.data._dbs.clear()  # what Faust's stop does: the databases are closed
    again = _state(tmp_path, "rocksdb")
    assert again.table.data.persisted_offset(TP(topic, 1)) == 7
    again.table.data._db_for_partition(0), again.table.data._db_for_partition(1)
    assert sorted(again.store.keys()) == [f"c{i}" for i in range(5)]
    assert [again.get(f"c{i}") for i in range(5)] == [{"n": i} for i in range(5)]


def test_commit_log_entries_reach_rocksdb_with_their_offset_so_a_restart_reads_only_later_ones(
    tmp_path: Path,
) -> None:
    app = build_app(Settings(data_dir=tmp_path, state_store="rocksdb"))
    table = app.Table("log", default=None, partitions=2, key_type=bytes, value_type=bytes)
    topic = table.changelog_topic.get_topic_name()
    entries = [Outgoing(topic, b"0:0", b"e1", 0), Outgoing(topic, b"1:0", b"e2", 1)]
    store_entries(table, entries, {(topic, 0): 12, (topic, 1): 3})
    assert dict(table_entries(table)) == {b"0:0": b"e1", b"1:0": b"e2"}
    assert table.data.persisted_offset(TP(topic, 0)) == 12
    assert table.data.persisted_offset(TP(topic, 1)) == 3


def test_commit_log_entries_are_not_kept_by_a_memory_store(tmp_path: Path) -> None:
    app = build_app(Settings(data_dir=tmp_path, state_store="memory"))
    table = app.Table("log", default=None, partitions=2, key_type=bytes, value_type=bytes)
    topic = table.changelog_topic.get_topic_name()
    store_entries(table, [Outgoing(topic, b"0:0", b"e1", 0)], {(topic, 0): 12})
    assert dict(table_entries(table)) == {}  # a start replays the whole changelog


def test_rocksdb_remembers_a_key_found_in_no_partition_until_written_or_forgotten(
    tmp_path: Path,
) -> None:
    state = _state(tmp_path, "rocksdb", cache_keys=10)
    topic = state.table.changelog_topic.get_topic_name()
    assert state.get("c1") is None  # looked up in every partition's database
    state.table.data._db_for_partition(0).put(b'"c1"', state.codec.encode({"n": 0}))
    assert state.get("c1") is None  # behind the store's back: the known absence stands
    state.put("c1", {"n": 1}, _record(1))
    state.changelog()
    state.stored({(topic, 1): 3})
    assert state.get("c1") == {"n": 1}  # the write replaced the absence
    state.delete("c1", _record(1))
    state.changelog()
    state.stored({(topic, 1): 4})
    assert state.get("c1") is None
    state.forget()  # what a rebalance's recovery is followed by
    assert state.get("c1") == {"n": 0}  # looked up again: partition 0's database has it
