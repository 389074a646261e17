"""Read-through, write-once-per-batch access to a :class:`~finpulse.streams.core.state.KeyedState`.

Every table write is a changelog message, so a stage should update each key once per
batch: read values through the cache, mutate them, :meth:`BatchCache.touch` them with the
record that caused the change (its partition routes the changelog write), and
:meth:`BatchCache.flush` once at the end of the batch. A read names that partition too
(a key lives on one partition).

>>> from finpulse.streams.core.state import MemoryState
>>> c = BatchCache(MemoryState("s"))
>>> c.get("k", dict, partition=0)["n"] = 1
>>> c.touch("k", None)
>>> c.flush()
1
>>> c.state.get("k")
{'n': 1}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from finpulse.streams.core.batch import KeyedState
from finpulse.streams.core.decode import RawRecord


class BatchCache:
    """Values of one state read once and written back once per batch."""

    def __init__(self, state: KeyedState) -> None:
        self.state = state
        self.values: dict[str, Any] = {}
        self.dirty: dict[str, RawRecord | None] = {}
        self.deleted: dict[str, RawRecord | None] = {}

    def get(self, key: str, default: Callable[[], Any], *, partition: int) -> Any:
        """The value of ``key`` (stored on ``partition``, or a fresh ``default()`` if absent)."""
        if key not in self.values:
            value = self.state.get(key, partition=partition)
            self.values[key] = default() if value is None else value
        return self.values[key]

    def peek(self, key: str, *, partition: int) -> Any:
        """The value of ``key`` (on ``partition``) or None, without creating it."""
        if key in self.values:
            return self.values[key]
        return self.state.get(key, partition=partition)

    def touch(self, key: str, record: RawRecord | None) -> None:
        """Mark ``key`` changed by ``record`` (written at :meth:`flush`)."""
        self.dirty[key] = record
        self.deleted.pop(key, None)

    def delete(self, key: str, record: RawRecord | None) -> None:
        """Delete ``key`` at :meth:`flush`."""
        self.values.pop(key, None)
        self.dirty.pop(key, None)
        self.deleted[key] = record

    def flush(self) -> int:
        """Write every changed key once; returns how many writes and deletes were made."""
        for key, record in self.deleted.items():
            self.state.delete(key, record)
        for key, record in self.dirty.items():
            self.state.put(key, self.values[key], record)
        n = len(self.dirty) + len(self.deleted)
        self.values.clear()
        self.dirty.clear()
        self.deleted.clear()
        return n
