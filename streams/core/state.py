"""Keyed state offline: a dict behind the :class:`~finpulse.streams.core.batch.KeyedState` interface
(the live worker's is :mod:`finpulse.streams.worker.table_state`).

>>> s = MemoryState("customers")
>>> s.put("c-1", {"n": 1}, record=None)
>>> s.get("c-1"), s.get("c-2", {}), s.changelog(), s.codec.encode(s.get("c-1"))
({'n': 1}, {}, [], b'\\x81\\xa1n\\x01')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from finpulse.streams.core.batch import Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state_codec import StateCodec


class MemoryState:
    """Plain dict state for offline replay and unit tests; ``codec`` is the one its values
    would have on a changelog (sizes are measured with it)."""

    def __init__(self, name: str, value_type: Any = Any) -> None:
        self.name = name
        self.codec = StateCodec(name, value_type)
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None, *, partition: int = 0) -> Any:
        return self.data.get(key, default)  # one dict: the partition is not needed offline

    def put(self, key: str, value: Any, record: RawRecord | None) -> None:
        self.data[key] = value

    def delete(self, key: str, record: RawRecord | None) -> None:
        self.data.pop(key, None)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self.data.items()))

    def changelog(self) -> list[Outgoing]:
        return []

    def stored(self, offsets: Mapping[tuple[str, int], int]) -> None:
        pass  # nothing is durable
