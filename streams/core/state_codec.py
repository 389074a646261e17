"""The one codec of keyed state: MessagePack through msgspec, typed per table.

Every table's values on its changelog (and inside the commit log) are MessagePack written
by msgspec: a typed record (a ``msgspec.Struct``, usually ``array_like``: its fields in
order, no names) or plain containers where a table has no record type yet. A table's
:class:`StateCodec` decodes into its record type, so a value restored from the changelog
is the same typed record a stage wrote.

Records of earlier releases were JSON objects or arrays (their first byte ``{`` or ``[``,
which no MessagePack value of a table starts with: those bytes are small integers there),
or, in a table whose records are now arrays, MessagePack maps (plain containers written
before the table had a record type). They are migrated on read by the record type's
``from_legacy`` classmethod (for a table of several tagged record types, a union, by its
first member's; kept as they are by a table without a record type). A value that cannot
be read is logged and its key starts fresh; it never stops the worker.

>>> import msgspec
>>> class Counter(msgspec.Struct, array_like=True):
...     seen: int
...     @classmethod
...     def from_legacy(cls, old):
...         return cls(seen=old["n"])
>>> codec = StateCodec("counters", Counter)
>>> codec.encode(Counter(seen=3)), codec.decode(b"\\x91\\x03")
(b'\\x91\\x03', Counter(seen=3))
>>> codec.decode(b'{"n": 7}'), codec.decode(encode({"n": 8})), codec.decode(b"\\xc1")
(Counter(seen=7), Counter(seen=8), None)
"""

from __future__ import annotations

import logging
import types
from typing import Any, Union, get_args, get_origin

import msgspec
import orjson

log = logging.getLogger(__name__)

_ENCODER = msgspec.msgpack.Encoder()
_ANY_DECODER: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder()
_LEGACY_FIRST_BYTES = frozenset(b"{[")
_MAP_FIRST_BYTES = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])  # fixmap, map 16, map 32


def encode(value: Any) -> bytes:
    """MessagePack bytes of a record or of plain containers.

    >>> encode({"k": [1, 2]})
    b'\\x81\\xa1k\\x92\\x01\\x02'
    """
    return _ENCODER.encode(value)


def is_legacy(data: bytes) -> bool:
    """Whether ``data`` is a JSON record of an earlier release.

    >>> is_legacy(b'{"n": 1}'), is_legacy(encode({"n": 1}))
    (True, False)
    """
    return bool(data) and data[0] in _LEGACY_FIRST_BYTES


class StateCodec:
    """Encoder and decoder of one table's values (``value_type``: a record type, or
    ``Any`` for plain containers)."""

    def __init__(self, table: str, value_type: Any = Any) -> None:
        self.table = table
        self.value_type = value_type
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(value_type)
        self._maps_are_legacy = all(_is_array_record(t) for t in _record_types(value_type))

    def encode(self, value: Any) -> bytes:
        return _ENCODER.encode(value)

    def decode(self, data: bytes) -> Any:
        """The record in ``data``; ``None`` (logged) if it cannot be read."""
        try:
            if is_legacy(data):
                return self._migrate(orjson.loads(data))
            if self._maps_are_legacy and data[0] in _MAP_FIRST_BYTES:
                return self._migrate(_ANY_DECODER.decode(data))
            return self._decoder.decode(data)
        except (msgspec.DecodeError, orjson.JSONDecodeError, ValueError, KeyError, TypeError):
            log.warning("table %s: unreadable state record; the key starts fresh", self.table)
            return None

    def _migrate(self, old: Any) -> Any:
        from_legacy = getattr(_record_types(self.value_type)[0], "from_legacy", None)
        return old if from_legacy is None else from_legacy(old)


def _record_types(value_type: Any) -> tuple[Any, ...]:
    """The member types of a union, else ``(value_type,)``."""
    if get_origin(value_type) in (Union, types.UnionType):
        return get_args(value_type)
    return (value_type,)


def _is_array_record(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, msgspec.Struct) and t.__struct_config__.array_like
