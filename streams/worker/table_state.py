"""Keyed state in a Faust table: the live worker's :class:`~finpulse.streams.core.batch.KeyedState`.

Every write must reach the changelog partition of the event that caused it (that is what
recovery after a restart or rebalance reads back). :class:`FaustTableState` keeps the
table's in-memory store up to date and collects the changes, one record per key (the last
value wins); :meth:`FaustTableState.changelog` hands them to the committer, which publishes
them after the rows and messages they account for and before the input is acknowledged.
That skips Faust's per-write path (``on_key_set`` → ``send_soon`` → its producer buffer),
which was costly at saturation (docs/benchmarks.md). Records on ``<app>-<table>-changelog``:
the key as JSON (Faust's key codec), the value in the state codec
(:mod:`finpulse.streams.core.state_codec`, MessagePack), ``None`` to delete. Faust restores
the values as bytes; each is decoded into its record on first read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from finpulse.streams.core.batch import Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state_codec import StateCodec
from finpulse.streams.worker.faust_adapter import memory_store


class FaustTableState:
    """A Faust table (memory store, changelog-backed, restored on restart) whose values are
    decoded and encoded by ``codec``."""

    def __init__(self, table: Any, codec: StateCodec | None = None) -> None:
        self.table = table
        self.name = table.name
        self.codec = codec or StateCodec(table.name)
        self._store: dict[Any, Any] | None = None
        self._changes: dict[tuple[int, str], Any] = {}

    @property
    def _data(self) -> dict[Any, Any]:
        # The memory store's dict: created with the table's store on first use, then
        # kept (recovery fills and prunes this same dict).
        if self._store is None:
            self._store = memory_store(self.table)
        return self._store

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key)
        if type(value) is bytes:  # as restored from the changelog: decoded once
            value = self.codec.decode(value)
            if value is None:
                del self._data[key]
            else:
                self._data[key] = value
        return default if value is None else value

    def put(self, key: str, value: Any, record: RawRecord | None) -> None:
        self._data[key] = value
        self._changes[(_partition(record), key)] = value

    def delete(self, key: str, record: RawRecord | None) -> None:
        self._data.pop(key, None)
        self._changes[(_partition(record), key)] = None

    def redo(self, key: str, value: bytes | None, partition: int) -> None:
        """Set ``key`` to the encoded ``value`` the commit log has, and publish it with the next
        commit (see :class:`finpulse.streams.worker.commit_log.RedoTarget`)."""
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value
        self._changes[(partition, key)] = value

    def items(self) -> Iterator[tuple[str, Any]]:
        keys = list(self._data)
        return ((k, v) for k in keys if (v := self.get(k)) is not None)

    def changelog(self) -> list[Outgoing]:
        if not self._changes:
            return []
        topic = self.table.changelog_topic.get_topic_name()
        dumps, encode = orjson.dumps, self.codec.encode
        messages = [
            Outgoing(
                topic,
                dumps(key),
                value if value is None or type(value) is bytes else encode(value),
                partition,
            )
            for (partition, key), value in self._changes.items()
        ]
        self._changes = {}
        return messages


def _partition(record: RawRecord | None) -> int:
    if record is None:
        raise ValueError("a live state write needs the record that caused it (its partition)")
    return record.partition
