"""Keyed state in a Faust table: the live worker's :class:`~finpulse.streams.core.batch.KeyedState`.

Every write must reach the changelog partition of the event that caused it (that is what
recovery after a restart or rebalance reads back). :class:`FaustTableState` collects the
changes, one record per key (the last value wins); :meth:`FaustTableState.changelog` hands
them to the committer, which publishes them after the rows and messages they account for
and before the input is acknowledged; once the broker has acknowledged them,
:meth:`FaustTableState.stored` writes them to the table's local store
(:mod:`finpulse.streams.worker.table_store`: ``memory://`` or RocksDB) with the changelog
offset they reach. Until then reads see them from the pending changes. The local store
thus never holds a value the changelog lacks, and a restarted worker resumes from its
store plus the changelog after that offset.

A read names the input partition of the event it is for, as a write does: a key lives on
one partition (:mod:`finpulse.streams.worker.table_store`), and a read sees only what was
written on its own partition, pending, handed out or stored.

That skips Faust's per-write path (``on_key_set`` → ``send_soon`` → its producer buffer),
which was costly at saturation (docs/benchmarks.md). Records on ``<app>-<table>-changelog``:
the key as JSON (Faust's key codec), the value in the state codec
(:mod:`finpulse.streams.core.state_codec`, MessagePack), ``None`` to delete. Faust restores
the values as bytes; each is decoded into its record on first read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from finpulse.streams.core.batch import Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state_codec import StateCodec
from finpulse.streams.worker.table_store import Record, TableStore, table_store

# the decoded-record cache of a RocksDB table built without a size (tests, tools)
DEFAULT_CACHE_KEYS = 100_000
_ABSENT = object()


class FaustTableState:
    """A Faust table (changelog-backed, restored on restart) whose values are decoded and
    encoded by ``codec`` and kept in ``store`` (by default the table's own store)."""

    def __init__(
        self, table: Any, codec: StateCodec | None = None, store: TableStore | None = None
    ) -> None:
        self.table = table
        self.name = table.name
        self.codec = codec or StateCodec(table.name)
        self._store = store
        # changes since the last changelog by (partition, key), as written and as read
        # (a value redone from the commit log decoded on its first read)
        self._changes: dict[tuple[int, str], Any] = {}
        self._pending: dict[tuple[int, str], Any] = {}
        # handed to the committer, not yet acknowledged (thus not yet in the store)
        self._unstored: dict[tuple[int, str], Any] = {}
        self._unstored_records: dict[int, list[Record]] = {}

    @property
    def store(self) -> TableStore:
        # Made with the table's store on first use (recovery fills this same store).
        if self._store is None:
            self._store = table_store(self.table, DEFAULT_CACHE_KEYS)
        return self._store

    @property
    def moved_keys(self) -> int:
        """Writes of a key on another partition than the one it was on (a stage's bug,
        see :class:`~finpulse.streams.worker.table_store.MovedKeys`)."""
        return self.store.moved_keys.count

    def get(self, key: str, default: Any = None, *, partition: int) -> Any:
        at = (partition, key)
        value = self._pending.get(at, _ABSENT)
        if value is _ABSENT:
            value = self._unstored.get(at, _ABSENT)
            if value is _ABSENT:
                return self._stored_value(key, partition, default)
            if type(value) is bytes:  # redone from the commit log
                value = self._unstored[at] = self.codec.decode(value)
        elif type(value) is bytes:  # redone from the commit log
            value = self._pending[at] = self.codec.decode(value)
        return default if value is None else value

    def _stored_value(self, key: str, partition: int, default: Any) -> Any:
        value = self.store.get(key, partition)
        if type(value) is bytes:  # as restored from the changelog: decoded once
            value = self.codec.decode(value)
            if value is not None:
                self.store.remember(key, partition, value)
        return default if value is None else value

    def put(self, key: str, value: Any, record: RawRecord | None) -> None:
        at = (_partition(record), key)
        self._pending[at] = self._changes[at] = value

    def delete(self, key: str, record: RawRecord | None) -> None:
        at = (_partition(record), key)
        self._pending[at] = self._changes[at] = None

    def redo(self, key: str, value: bytes | None, partition: int) -> None:
        """Set ``key`` to the encoded ``value`` the commit log has, and publish it with the next
        commit (see :class:`finpulse.streams.worker.commit_log.RedoTarget`)."""
        at = (partition, key)
        self._pending[at] = self._changes[at] = value

    def items(self) -> Iterator[tuple[str, Any]]:
        keys = dict.fromkeys([*self.store.partition_keys(), *self._unstored, *self._pending])
        return ((k, v) for p, k in keys if (v := self.get(k, partition=p)) is not None)

    def changelog(self) -> list[Outgoing]:
        if not self._changes:
            return []
        topic = self.table.changelog_topic.get_topic_name()
        dumps, encode = orjson.dumps, self.codec.encode
        messages = []
        for (partition, key), value in self._changes.items():
            encoded = value if value is None or type(value) is bytes else encode(value)
            decoded = None if type(value) is bytes else value
            messages.append(Outgoing(topic, dumps(key), encoded, partition))
            self._unstored_records.setdefault(partition, []).append((key, encoded, decoded))
        self._unstored.update(self._pending)
        self._changes, self._pending = {}, {}
        return messages

    def stored(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """The changelog records handed out are acknowledged up to ``offsets`` ((topic,
        partition) -> offset of the last one): write them to the local store."""
        if not self._unstored_records:
            return
        topic = self.table.changelog_topic.get_topic_name()
        for partition, records in self._unstored_records.items():
            self.store.write(partition, records, offsets.get((topic, partition)))
        self._unstored_records, self._unstored = {}, {}

    def forget(self) -> None:
        """Drop cached records (after a rebalance's recovery: partitions may have moved).

        Records handed out before it and not yet acknowledged are not written to the local
        store afterwards: the recovery may have read newer ones (another worker's) that they
        would overwrite. They are on the changelog, read by the partition's next recovery."""
        self.store.forget()
        self._unstored_records, self._unstored = {}, {}


def _partition(record: RawRecord | None) -> int:
    if record is None:
        raise ValueError("a live state write needs the record that caused it (its partition)")
    return record.partition
