"""Where a Faust table's values live: one interface over the ``memory://`` and ``rocksdb://``
stores.

:class:`~finpulse.streams.worker.table_state.FaustTableState` reads a key with
:meth:`TableStore.get` (encoded bytes as Faust's recovery restored them, or a record decoded
before), keeps a decoded record with :meth:`TableStore.remember`, and writes a commit's
records with :meth:`TableStore.write` once the broker has acknowledged them on the
changelog, together with the changelog offset they reach.

- :class:`MemoryTableStore`: the memory store's dict; a decoded record replaces its bytes,
  so memory grows with the keys.
- :class:`RocksTableStore`: RocksDB, one database per changelog partition (Faust's
  ``rocksdb://`` store, ``rocksdict``); decoded records, and keys found in no partition's
  database, are kept in a bounded LRU cache: a key is looked up in every partition's
  database only on its first read (a new customer's key is read several times, by
  several stages, before its first commit).
  A commit's records and its changelog offset are written in one RocksDB write batch, so a
  restarted worker on the same host finds its state at a known changelog offset and Faust's
  recovery reads only the changelog after it.

>>> data = {"c1": b"\\x91\\x01"}
>>> store = MemoryTableStore(data)
>>> store.get("c1"), store.get("c2")
(b'\\x91\\x01', None)
>>> store.write(0, [("c1", b"\\x91\\x02", [2]), ("c0", None, None)], offset=7)
>>> store.get("c1"), sorted(store.keys())
([2], ['c1'])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import orjson

from finpulse.config.settings import Settings
from finpulse.streams.core.batch import Outgoing
from finpulse.streams.worker.faust_adapter import (
    is_rocksdb,
    memory_store,
    rocksdb_databases,
    rocksdb_keys,
    rocksdb_offset_key,
    rocksdb_partition,
)

# One record of a commit: (key, encoded value or None to delete, decoded value or None).
Record = tuple[str, bytes | None, Any]

_UNCACHED = object()


class TableStore(Protocol):
    """A table's local store (see the module text)."""

    def get(self, key: str) -> Any:
        """The stored value of ``key``: bytes, a decoded record, or ``None``."""
        ...

    def remember(self, key: str, decoded: Any) -> None:
        """Keep ``decoded``, the record of ``key``'s stored bytes, for the next read."""
        ...

    def write(self, partition: int, records: Iterable[Record], offset: int | None) -> None:
        """Store a commit's ``records`` of one changelog partition, acknowledged by the
        broker up to ``offset`` (``None``: unknown)."""
        ...

    def keys(self) -> list[str]: ...

    def forget(self) -> None:
        """Drop decoded records kept for reads (partitions may have moved)."""
        ...


def rocksdb_options(settings: Settings) -> dict[str, Any]:
    """Options of a table's ``rocksdb://`` store (Faust's ``RocksDBOptions``): a bounded block
    cache and at most two memtables per table and partition (Faust's defaults are 2 GiB and
    three of 64 MiB).

    >>> rocksdb_options(Settings())["block_cache_size"]
    8388608
    """
    return {
        "block_cache_size": settings.state_rocksdb_block_cache_bytes,
        "write_buffer_size": settings.state_rocksdb_write_buffer_bytes,
        "max_write_buffer_number": 2,
    }


def table_entries(table: Any) -> Mapping[bytes, bytes]:
    """A table with raw byte keys and values as a read-only mapping (the commit log)."""
    if is_rocksdb(table):
        return _RocksEntries(table)
    return memory_store(table)


class _RocksEntries(Mapping[bytes, bytes]):
    def __init__(self, table: Any) -> None:
        self.table = table

    def __getitem__(self, key: bytes) -> bytes:
        for db in list(rocksdb_databases(self.table).values()):
            found = db.get(key)
            if found is not None:
                return found  # type: ignore[no-any-return]
        raise KeyError(key)

    def __iter__(self) -> Iterator[bytes]:
        return rocksdb_keys(self.table)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def store_entries(
    table: Any, messages: Sequence[Outgoing], offsets: Mapping[tuple[str, int], int]
) -> None:
    """Write ``messages``, acknowledged on the changelog of ``table`` (raw byte keys and
    values: the commit log) up to ``offsets``, to its RocksDB store with those offsets, one
    write batch per partition: a restart then reads only the entries after them. Nothing
    to do for a ``memory://`` store (every start replays its whole changelog)."""
    if not is_rocksdb(table):
        return
    from rocksdict import WriteBatch

    topic = table.changelog_topic.get_topic_name()
    batches: dict[int, Any] = {}
    for m in messages:
        assert m.partition is not None and m.key is not None  # log entries have both
        batch = batches.get(m.partition)
        if batch is None:
            batch = batches[m.partition] = WriteBatch(raw_mode=True)
        if m.value is None:
            batch.delete(m.key)
        else:
            batch.put(m.key, m.value)
    for partition, batch in batches.items():
        offset = offsets.get((topic, partition))
        if offset is not None:
            batch.put(rocksdb_offset_key(table), str(offset).encode())
        rocksdb_partition(table, partition).write(batch)


def table_store(table: Any, cache_keys: int) -> TableStore:
    """The store of a Faust ``table``; ``cache_keys`` bounds RocksDB's decoded-record cache."""
    if is_rocksdb(table):
        return RocksTableStore(table, cache_keys)
    return MemoryTableStore(memory_store(table))


class MemoryTableStore:
    """The ``memory://`` store's dict (recovery fills and prunes this same dict)."""

    def __init__(self, data: dict[Any, Any]) -> None:
        self.data = data

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def remember(self, key: str, decoded: Any) -> None:
        self.data[key] = decoded

    def write(self, partition: int, records: Iterable[Record], offset: int | None) -> None:
        data = self.data
        for key, encoded, decoded in records:
            if encoded is None:
                data.pop(key, None)
            else:
                data[key] = encoded if decoded is None else decoded

    def keys(self) -> list[str]:
        return list(self.data)

    def forget(self) -> None:
        pass  # the dict is the store


class RocksTableStore:
    """A ``rocksdb://`` store's partition databases with an LRU cache of ``cache_keys``
    decoded records or known absences. Keys are JSON, as on the changelog (Faust's key
    codec).

    The cache follows every change of the databases while the worker processes: they
    change only by :meth:`write`, which updates it, and by Faust's recovery after a
    rebalance, after which the worker calls :meth:`forget`.
    """

    def __init__(self, table: Any, cache_keys: int) -> None:
        self.table = table
        self.cache_keys = cache_keys
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._databases: Mapping[int, Any] | None = None

    def get(self, key: str) -> Any:
        cache = self._cache
        value = cache.get(key, _UNCACHED)
        if value is not _UNCACHED:
            cache.move_to_end(key)
            return value  # None: known absent
        if self._databases is None:  # the store's dict, made by Faust on first use
            self._databases = rocksdb_databases(self.table)
        raw = orjson.dumps(key)
        for db in self._databases.values():
            found = db.get(raw)
            if found is not None:
                return found
        self.remember(key, None)
        return None

    def remember(self, key: str, decoded: Any) -> None:
        """Keep ``decoded`` (``None``: ``key`` is in no database) for the next read."""
        cache = self._cache
        cache[key] = decoded
        cache.move_to_end(key)
        while len(cache) > self.cache_keys:
            cache.popitem(last=False)

    def write(self, partition: int, records: Iterable[Record], offset: int | None) -> None:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        cache = self._cache
        for key, encoded, decoded in records:
            raw = orjson.dumps(key)
            if encoded is None:
                batch.delete(raw)
                self.remember(key, None)
            else:
                batch.put(raw, encoded)
                if decoded is None:
                    cache.pop(key, None)  # read back (and decoded) from the database
                else:
                    self.remember(key, decoded)
        if offset is not None:
            batch.put(rocksdb_offset_key(self.table), str(offset).encode())
        rocksdb_partition(self.table, partition).write(batch)

    def keys(self) -> list[str]:
        return [orjson.loads(k) for k in rocksdb_keys(self.table)]

    def forget(self) -> None:
        self._cache.clear()
