"""A table's local store, on a real RocksDB (rocksdict) and on Faust's memory store: records
reach the store only once the changelog has them, with the offset they reach; a read sees
only its own partition's value; the decoded cache is bounded; only the partitions this
worker holds are written; a worker restarted on the same directory finds them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.assignor.client_assignment import ClientAssignment
from faust.types import TP

from finpulse.config.settings import Settings
from finpulse.streams.core.batch import Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.worker.app import build_app
from finpulse.streams.worker.faust_adapter import rocksdb_databases
from finpulse.streams.worker.table_state import FaustTableState
from finpulse.streams.worker.table_store import store_entries, table_entries, table_store

STORES = ["rocksdb", "memory"]


def _state(data_dir: Path, store: str, cache_keys: int = 2) -> FaustTableState:
    app = build_app(Settings(data_dir=data_dir, state_store=store))  # type: ignore[arg-type]
    table = app.Table("t", default=None, partitions=2, value_type=bytes)
    _assign(table, 0, 1)
    return FaustTableState(table, store=table_store(table, cache_keys))


def _assign(table: Any, *partitions: int) -> None:
    """What Faust does when the worker is assigned ``partitions``: it opens their RocksDB
    databases (a memory store has nothing to open)."""
    topic = table.changelog_topic.get_topic_name()
    tps = {TP(topic, p) for p in partitions}
    asyncio.run(table.data.on_rebalance(tps, set(), tps))


def _revoke(table: Any, *partitions: int) -> None:
    topic = table.changelog_topic.get_topic_name()
    asyncio.run(table.data.on_rebalance(set(), {TP(topic, p) for p in partitions}, set()))


def _recover(table: Any, partition: int, offset: int, key: str, value: bytes) -> None:
    """What Faust's recovery does with one changelog record of ``partition``."""
    topic = table.changelog_topic.get_topic_name()
    raw = orjson.dumps(key)
    message = SimpleNamespace(
        tp=TP(topic, partition), partition=partition, offset=offset, key=raw, value=value
    )
    table.apply_changelog_batch([SimpleNamespace(key=key, value=value, message=message)])


def _record(partition: int) -> RawRecord:
    return RawRecord("finpulse.transactions", partition, 0, b"{}", b"k")


def _commit(state: FaustTableState, offsets: dict[int, int]) -> None:
    """The committer's part: the changelog is taken, acknowledged up to ``offsets``."""
    state.changelog()
    topic = state.table.changelog_topic.get_topic_name()
    state.stored({(topic, p): o for p, o in offsets.items()})


@pytest.mark.parametrize("store", STORES)
def test_a_record_reaches_the_store_once_the_changelog_has_it(tmp_path: Path, store: str) -> None:
    state = _state(tmp_path, store)
    state.put("c1", {"n": 1}, _record(1))
    state.delete("c2", _record(0))
    assert state.get("c1", partition=1) == {"n": 1} and state.store.partition_keys() == []
    messages = state.changelog()
    assert [(m.key, m.partition) for m in messages] == [(b'"c1"', 1), (b'"c2"', 0)]
    state.put("c1", {"n": 2}, _record(1))  # the next batch, while the commit runs
    assert state.get("c1", partition=1) == {"n": 2} and state.store.partition_keys() == []
    state.stored({(state.table.changelog_topic.get_topic_name(), 1): 41})
    assert state.store.partition_keys() == [(1, "c1")] and state.get("c1", partition=1) == {"n": 2}
    assert state.codec.decode(_raw(state, "c1", 1)) == {"n": 1}  # the stored commit's value


def _raw(state: FaustTableState, key: str, partition: int) -> Any:
    value = state.store.get(key, partition)
    return value if isinstance(value, bytes) else state.codec.encode(value)


@pytest.mark.parametrize("store", STORES)
def test_a_read_sees_its_own_partitions_value_after_a_recovery_never_another_copy(
    tmp_path: Path, store: str
) -> None:
    """A key written from two partitions (a stage's bug, counted): recovery restores a copy
    on each partition's database; a read for partition 1's events must see partition 1's
    newest value, not the older copy partition 0 holds."""
    state = _state(tmp_path, store, cache_keys=10)
    state.put("r|model|risk", {"n": 1}, _record(0))
    _commit(state, {0: 5})
    state.put("r|model|risk", {"n": 2}, _record(1))
    _commit(state, {1: 8})
    assert state.store.moved_keys.count == 1
    state.forget()  # what every recovery is followed by
    assert state.get("r|model|risk", partition=1) == {"n": 2}


def test_a_recovered_key_is_read_from_its_partitions_database_alone(tmp_path: Path) -> None:
    state = _state(tmp_path, "rocksdb", cache_keys=10)
    _recover(state.table, 0, 3, "c1", state.codec.encode({"n": 0}))
    _recover(state.table, 1, 9, "c1", state.codec.encode({"n": 1}))
    assert state.get("c1", partition=1) == {"n": 1}
    assert state.get("c1", partition=0) == {"n": 0}
    assert state.get("c2", partition=0) is None


def test_the_memory_store_keeps_each_keys_partition_for_recovery_to_prune(tmp_path: Path) -> None:
    """Faust's memory store drops the keys of partitions no longer assigned at the end of a
    recovery, by the partition it recorded: written keys are recorded too."""
    state = _state(tmp_path, "memory")
    _recover(state.table, 0, 3, "c0", state.codec.encode({"n": 0}))
    state.put("c1", {"n": 1}, _record(1))
    _commit(state, {1: 4})
    assert sorted(state.store.partition_keys()) == [(0, "c0"), (1, "c1")]
    topic = state.table.changelog_topic.get_topic_name()
    asyncio.run(state.table.data.on_recovery_completed({TP(topic, 0)}, set()))
    assert state.store.partition_keys() == [(0, "c0")]  # partition 1 left: its keys went with it


@pytest.mark.parametrize("store", STORES)
def test_a_key_written_on_a_second_partition_is_counted_and_named_once(
    tmp_path: Path, store: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = _state(tmp_path, store, cache_keys=10)
    for partition, offset in [(0, 1), (0, 2), (1, 3), (0, 4)]:
        state.put("k", {"n": offset}, _record(partition))
        _commit(state, {partition: offset})
    assert state.moved_keys == 2  # 0 -> 1 -> 0
    named = [r for r in caplog.records if "'k' written on partition" in r.getMessage()]
    assert len(named) == 1 and named[0].levelno == logging.WARNING


def test_rocksdb_checks_uncached_keys_against_the_other_databases_at_debug_level(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = _state(tmp_path, "rocksdb", cache_keys=10)
    state.put("k", {"n": 1}, _record(0))
    _commit(state, {0: 1})
    state.forget()  # the cache no longer knows where "k" is
    state.put("k", {"n": 2}, _record(1))
    _commit(state, {1: 2})
    assert state.store.moved_keys.count == 0  # not looked up at the default level
    state.forget()
    caplog.set_level(logging.DEBUG, logger="finpulse.streams.worker.table_store")
    state.put("k", {"n": 3}, _record(0))
    _commit(state, {0: 3})
    assert state.store.moved_keys.count == 1


def test_rocksdb_keeps_the_offset_and_the_values_for_a_restart_on_the_same_host(
    tmp_path: Path,
) -> None:
    state = _state(tmp_path, "rocksdb")
    topic = state.table.changelog_topic.get_topic_name()
    for i in range(5):
        state.put(f"c{i}", {"n": i}, _record(i % 2))
    _commit(state, {0: 10, 1: 7})
    assert state.table.data.persisted_offset(TP(topic, 0)) == 10
    caches = state.store._caches.values()  # type: ignore[attr-defined]
    assert [len(c) for c in caches] == [1, 1]  # bounded: 2 keys shared by 2 partitions
    assert state.get("c0", partition=0) == {"n": 0}  # read back from disk
    state.table.data._dbs.clear()  # what Faust's stop does: the databases are closed
    again = _state(tmp_path, "rocksdb")
    assert again.table.data.persisted_offset(TP(topic, 1)) == 7
    assert sorted(k for _, k in again.store.partition_keys()) == [f"c{i}" for i in range(5)]
    assert [again.get(f"c{i}", partition=i % 2) for i in range(5)] == [{"n": i} for i in range(5)]


def test_rocksdb_remembers_a_key_absent_from_its_partition_until_written_or_forgotten(
    tmp_path: Path,
) -> None:
    state = _state(tmp_path, "rocksdb", cache_keys=10)
    assert state.get("c1", partition=1) is None  # looked up in partition 1's database
    rocksdb_databases(state.table)[1].put(b'"c1"', state.codec.encode({"n": 0}))
    assert state.get("c1", partition=1) is None  # behind the store's back: absence stands
    state.put("c1", {"n": 1}, _record(1))
    _commit(state, {1: 3})
    assert state.get("c1", partition=1) == {"n": 1}  # the write replaced the absence
    state.delete("c1", _record(1))
    _commit(state, {1: 4})
    assert state.get("c1", partition=1) is None
    rocksdb_databases(state.table)[1].put(b'"c1"', state.codec.encode({"n": 5}))
    state.forget()  # what a rebalance's recovery is followed by
    assert state.get("c1", partition=1) == {"n": 5}  # looked up again


def test_a_commit_finishing_after_its_partition_was_revoked_leaves_the_database_alone(
    tmp_path: Path,
) -> None:
    """Faust closes a revoked partition's database; a commit acknowledged after that must
    not open it again (held for good) nor, once the partition is back and recovered, move
    its stored offset back over newer records."""
    state = _state(tmp_path, "rocksdb", cache_keys=10)
    table, topic = state.table, state.table.changelog_topic.get_topic_name()
    state.put("c1", {"n": 1}, _record(1))
    _commit(state, {1: 10})
    state.put("c1", {"n": 2}, _record(1))
    state.put("c0", {"n": 2}, _record(0))
    state.changelog()  # the commit runs ...
    _revoke(table, 1)  # ... while partition 1 is revoked
    state.stored({(topic, 0): 3, (topic, 1): 11})
    assert sorted(rocksdb_databases(table)) == [0]  # not opened again
    _assign(table, 1)
    assert table.data.persisted_offset(TP(topic, 1)) == 10  # recovery reads on from 10
    assert state.get("c1", partition=1) == {"n": 1} and state.get("c0", partition=0) == {"n": 2}


def test_records_handed_out_before_a_recovery_are_not_stored_after_it(tmp_path: Path) -> None:
    state = _state(tmp_path, "rocksdb", cache_keys=10)
    topic = state.table.changelog_topic.get_topic_name()
    state.put("c1", {"n": 1}, _record(1))
    state.changelog()  # the commit runs across a rebalance; its partition is back ...
    _recover(state.table, 1, 12, "c1", state.codec.encode({"n": 9}))  # ... newer records
    state.forget()
    state.stored({(topic, 1): 11})  # acknowledged after the recovery
    assert state.get("c1", partition=1) == {"n": 9}
    assert state.table.data.persisted_offset(TP(topic, 1)) == 12


def test_a_standby_partitions_database_is_left_to_recovery(tmp_path: Path) -> None:
    state = _state(tmp_path, "rocksdb")
    topic = state.table.changelog_topic.get_topic_name()
    state.table.app.assignor._assignment = ClientAssignment(actives={}, standbys={topic: [1]})
    state.put("c1", {"n": 1}, _record(1))
    _commit(state, {1: 4})
    assert state.table.data.persisted_offset(TP(topic, 1)) is None
    assert state.store.partition_keys() == []


def _log_table(tmp_path: Path, store: str) -> Any:
    app = build_app(Settings(data_dir=tmp_path, state_store=store))  # type: ignore[arg-type]
    table = app.Table("log", default=None, partitions=2, key_type=bytes, value_type=bytes)
    _assign(table, 0, 1)
    return table


def test_commit_log_entries_reach_rocksdb_with_their_offset_so_a_restart_reads_only_later_ones(
    tmp_path: Path,
) -> None:
    table = _log_table(tmp_path, "rocksdb")
    topic = table.changelog_topic.get_topic_name()
    entries = [Outgoing(topic, b"0:0", b"e1", 0), Outgoing(topic, b"1:0", b"e2", 1)]
    store_entries(table, entries, {(topic, 0): 12, (topic, 1): 3})
    assert dict(table_entries(table)) == {b"0:0": b"e1", b"1:0": b"e2"}
    assert table.data.persisted_offset(TP(topic, 0)) == 12
    assert table.data.persisted_offset(TP(topic, 1)) == 3


def test_commit_log_entries_of_a_revoked_partition_are_not_stored(tmp_path: Path) -> None:
    table = _log_table(tmp_path, "rocksdb")
    topic = table.changelog_topic.get_topic_name()
    _revoke(table, 1)
    entries = [Outgoing(topic, b"0:0", b"e1", 0), Outgoing(topic, b"1:0", b"e2", 1)]
    store_entries(table, entries, {(topic, 0): 12, (topic, 1): 3})
    assert dict(table_entries(table)) == {b"0:0": b"e1"}
    assert sorted(rocksdb_databases(table)) == [0]


def test_commit_log_entries_are_not_kept_by_a_memory_store(tmp_path: Path) -> None:
    table = _log_table(tmp_path, "memory")
    topic = table.changelog_topic.get_topic_name()
    store_entries(table, [Outgoing(topic, b"0:0", b"e1", 0)], {(topic, 0): 12})
    assert dict(table_entries(table)) == {}  # a start replays the whole changelog
