"""Keyed state offline: a dict behind the :class:`~finpulse.streams.core.batch.KeyedState` interface
(the live worker's is :mod:`finpulse.streams.worker.table_state`).

>>> s = MemoryState("customers")
>>> s.put("c-1", {"n": 1}, record=None)
>>> s.get("c-1"), s.get("c-2", {}), s.changelog()
({'n': 1}, {}, [])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from finpulse.streams.core.batch import Outgoing
from finpulse.streams.core.decode import RawRecord

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z  # as faust.utils.json.dumps


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

    def changelog(self) -> list[Outgoing]:
        return []
