"""Keyed state for pipeline stages: a Faust table live, a dict offline, one interface.

Live, a write must go to the changelog partition of the event that caused it,
even inside a batch that spans partitions; :class:`FaustTableState` sets Faust's
current-event context for each write so the changelog (and thus recovery after
a restart or rebalance) stays partition-correct.

>>> s = MemoryState("customers")
>>> s.put("c-1", {"n": 1}, record=None)
>>> s.get("c-1"), s.get("c-2", {})
({'n': 1}, {})
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any, Protocol

from streams.decode import RawRecord


class KeyedState(Protocol):
    """What a stage may do with its state."""

    name: str

    def get(self, key: str, default: Any = None) -> Any: ...

    def put(self, key: str, value: Any, record: RawRecord | None) -> None: ...

    def delete(self, key: str, record: RawRecord | None) -> None: ...

    def items(self) -> Iterator[tuple[str, Any]]: ...


class MemoryState:
    """Plain dict state for offline replay and unit tests."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def put(self, key: str, value: Any, record: RawRecord | None) -> None:
        self.data[key] = value

    def delete(self, key: str, record: RawRecord | None) -> None:
        self.data.pop(key, None)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self.data.items()))


class FaustTableState:
    """A Faust table (changelog-backed, restored on restart) behind :class:`KeyedState`."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.name = table.name

    def get(self, key: str, default: Any = None) -> Any:
        return self.table.get(key, default)

    def put(self, key: str, value: Any, record: RawRecord | None) -> None:
        with _event_context(record):
            self.table[key] = value

    def delete(self, key: str, record: RawRecord | None) -> None:
        with _event_context(record):
            self.table.pop(key, None)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self.table.items()))


class _event_context:
    """Make ``record.event`` Faust's current event for the duration of a table write."""

    def __init__(self, record: RawRecord | None) -> None:
        self.event = record.event if record is not None else None
        self.token: Any = None

    def __enter__(self) -> None:
        if self.event is not None:
            from faust.streams import _current_event

            self.token = _current_event.set(weakref.ref(self.event))

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            from faust.streams import _current_event

            _current_event.reset(self.token)
