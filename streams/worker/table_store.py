"""Where a Faust table's values live: one interface over the ``memory://`` and ``rocksdb://``
stores.

:class:`~finpulse.streams.worker.table_state.FaustTableState` reads a key with
:meth:`TableStore.get` for the input partition of the event the read is for (encoded bytes
as Faust's recovery restored them, or a record decoded before), keeps a decoded record
with :meth:`TableStore.remember`, and writes a commit's records with :meth:`TableStore.write`
once the broker has acknowledged them on the changelog, together with the changelog offset
they reach.

**A key lives on one partition**: the changelog partition of the events that write it (a
customer's key on its customer's partition). A read names the partition of its event and
sees what was written on, or restored from, that partition: RocksDB looks in that
partition's database alone, as Faust's RocksDB store does for a read within an event; the
memory store holds one copy of each key, its partition's. A write of a key on another
partition than the one it was on is counted (``moved_keys``) and logged as a warning for
the first keys: it is a stage's bug, and the stores then disagree (RocksDB keeps and reads
one copy per partition, the memory store the last one written).

- :class:`MemoryTableStore`: the memory store's dict, with the partition of each key; a
  decoded record replaces its bytes, so memory grows with the keys.
- :class:`RocksTableStore`: RocksDB, one database per changelog partition (Faust's
  ``rocksdb://`` store, ``rocksdict``); decoded records, and keys known absent from their
  partition's database, are kept in a bounded LRU cache per partition.
  A commit's records and its changelog offset are written in one RocksDB write batch, so a
  restarted worker on the same host finds its state at a known changelog offset and Faust's
  recovery reads only the changelog after it. Only the databases Faust holds open for the
  partitions assigned to this worker (not standby replicas) are written: a commit that
  finishes after its partition was revoked leaves the database alone (its records are on
  the changelog, which the partition's next recovery reads).

>>> data = {"c1": b"\\x91\\x01"}
>>> store = MemoryTableStore(data, {"c1": 0})
>>> store.get("c1", 0), store.get("c2", 0)
(b'\\x91\\x01', None)
>>> store.write(0, [("c1", b"\\x91\\x02", [2]), ("c0", None, None)], offset=7)
>>> store.get("c1", 0), store.partition_keys()
([2], [(0, 'c1')])
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import orjson

from finpulse.config.settings import Settings
from finpulse.streams.core.batch import Outgoing
from finpulse.streams.worker.faust_adapter import (
    is_rocksdb,
    memory_key_partitions,
    memory_store,
    rocksdb_databases,
    rocksdb_keys,
    rocksdb_offset_key,
    standby_partitions,
)

log = logging.getLogger(__name__)

# One record of a commit: (key, encoded value or None to delete, decoded value or None).
Record = tuple[str, bytes | None, Any]

_UNCACHED = object()

# keys named in a warning when written on a second partition (the rest are only counted)
MOVED_KEYS_LOGGED = 20


class TableStore(Protocol):
    """A table's local store (see the module text)."""

    moved_keys: MovedKeys

    def get(self, key: str, partition: int) -> Any:
        """The stored value of ``key`` on ``partition``: bytes, a decoded record, or ``None``."""
        ...

    def remember(self, key: str, partition: int, decoded: Any) -> None:
        """Keep ``decoded``, the record of ``key``'s stored bytes on ``partition``, for the
        next read."""
        ...

    def write(self, partition: int, records: Iterable[Record], offset: int | None) -> None:
        """Store a commit's ``records`` of one changelog partition, acknowledged by the
        broker up to ``offset`` (``None``: unknown)."""
        ...

    def partition_keys(self) -> list[tuple[int, str]]:
        """(partition, key) of every stored key."""
        ...

    def forget(self) -> None:
        """Drop decoded records kept for reads (partitions may have moved)."""
        ...


class MovedKeys:
    """Counts writes of a key on another partition than the one it was on (see the module
    text); the first :data:`MOVED_KEYS_LOGGED` keys are named in a warning.

    >>> moved = MovedKeys("alert_state")
    >>> moved.check("r|model|risk", was=0, now=1), moved.check("c-1", was=2, now=2)
    (True, False)
    >>> moved.count
    1
    """

    def __init__(self, table: str) -> None:
        self.table = table
        self.count = 0
        self._logged: set[str] = set()

    def check(self, key: str, was: int | None, now: int) -> bool:
        """Whether ``key``, last on partition ``was`` (``None``: unknown), moved to ``now``."""
        if was is None or was == now:
            return False
        self.count += 1
        if key not in self._logged and len(self._logged) < MOVED_KEYS_LOGGED:
            self._logged.add(key)
            log.warning(
                "table %s: key %r written on partition %d, before on %d: a key must stay on "
                "one partition (reads see only their own partition's value)",
                self.table,
                key,
                now,
                was,
            )
        return True


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
        return (key for _, key in rocksdb_keys(self.table))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def store_entries(
    table: Any, messages: Sequence[Outgoing], offsets: Mapping[tuple[str, int], int]
) -> None:
    """Write ``messages``, acknowledged on the changelog of ``table`` (raw byte keys and
    values: the commit log) up to ``offsets``, to its RocksDB store with those offsets, one
    write batch per partition held (:func:`writable_databases`): a restart then reads only
    the entries after them. Nothing to do for a ``memory://`` store (every start replays
    its whole changelog)."""
    if not is_rocksdb(table):
        return
    from rocksdict import WriteBatch

    topic = table.changelog_topic.get_topic_name()
    databases = writable_databases(table)
    batches: dict[int, Any] = {}
    for m in messages:
        assert m.partition is not None and m.key is not None  # log entries have both
        if m.partition not in databases:
            continue
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
        databases[partition].write(batch)


def writable_databases(table: Any) -> dict[int, Any]:
    """The RocksDB databases a commit may write, by partition: those Faust holds open for
    the partitions assigned to this worker, standby replicas left out (recovery writes
    them). Never opens one: Faust opens a database when its partition is assigned and
    closes it on revocation, so a commit finishing after that leaves it alone (the
    partition's next recovery reads the changelog from the offset stored before)."""
    standby = standby_partitions(table)
    return {p: db for p, db in rocksdb_databases(table).items() if p not in standby}


def table_store(table: Any, cache_keys: int) -> TableStore:
    """The store of a Faust ``table``; ``cache_keys`` bounds RocksDB's decoded-record cache."""
    if is_rocksdb(table):
        return RocksTableStore(table, cache_keys)
    return MemoryTableStore(memory_store(table), memory_key_partitions(table), table.name)


class MemoryTableStore:
    """The ``memory://`` store's dict and the partition of each key (recovery fills and
    prunes these same dicts: at its end it drops the keys of partitions no longer
    assigned, written ones included since their partition is recorded here)."""

    def __init__(
        self, data: dict[Any, Any], partitions: dict[Any, int], name: str = "table"
    ) -> None:
        self.data = data
        self.partitions = partitions
        self.moved_keys = MovedKeys(name)

    def get(self, key: str, partition: int) -> Any:
        return self.data.get(key)  # one copy of each key: its partition's (module text)

    def remember(self, key: str, partition: int, decoded: Any) -> None:
        self.data[key] = decoded
        self.partitions[key] = partition

    def write(self, partition: int, records: Iterable[Record], offset: int | None) -> None:
        data, partitions, moved = self.data, self.partitions, self.moved_keys
        for key, encoded, decoded in records:
            moved.check(key, partitions.get(key), partition)
            if encoded is None:
                data.pop(key, None)
                partitions.pop(key, None)
            else:
                data[key] = encoded if decoded is None else decoded
                partitions[key] = partition

    def partition_keys(self) -> list[tuple[int, str]]:
        partitions = self.partitions
        return [(partitions[k], k) for k in self.data if k in partitions]

    def forget(self) -> None:
        pass  # the dict is the store


class RocksTableStore:
    """A ``rocksdb://`` store's partition databases, each with an LRU cache of decoded
    records or known absences (``cache_keys`` in all, shared evenly by the partitions
    held). Keys are JSON, as on the changelog (Faust's key codec).

    The caches follow every change of the databases while the worker processes: they
    change only by :meth:`write`, which updates them, and by Faust's recovery after a
    rebalance, after which the worker calls :meth:`forget`.
    """

    def __init__(self, table: Any, cache_keys: int) -> None:
        self.table = table
        self.cache_keys = cache_keys
        self.moved_keys = MovedKeys(table.name)
        self._caches: dict[int, OrderedDict[str, Any]] = {}
        self._databases: Mapping[int, Any] = rocksdb_databases(table)

    def get(self, key: str, partition: int) -> Any:
        cache = self._caches.get(partition)
        if cache is not None:
            value = cache.get(key, _UNCACHED)
            if value is not _UNCACHED:
                cache.move_to_end(key)
                return value  # None: known absent
        db = self._databases.get(partition)
        found = None if db is None else db.get(orjson.dumps(key))
        if found is None:
            self.remember(key, partition, None)
        return found

    def remember(self, key: str, partition: int, decoded: Any) -> None:
        """Keep ``decoded`` (``None``: ``key`` is not in ``partition``'s database) for the
        next read."""
        cache = self._caches.get(partition)
        if cache is None:
            cache = self._caches[partition] = OrderedDict()
        cache[key] = decoded
        cache.move_to_end(key)
        limit = max(1, self.cache_keys // max(1, len(self._databases)))
        while len(cache) > limit:
            cache.popitem(last=False)

    def write(self, partition: int, records: Iterable[Record], offset: int | None) -> None:
        from rocksdict import WriteBatch

        db = writable_databases(self.table).get(partition)
        cache = self._caches.get(partition)
        if db is None:  # revoked (or a standby): the changelog has the records
            if cache is not None:
                for key, _, _ in records:
                    cache.pop(key, None)
            log.info(
                "table %s: partition %d not held, commit left to recovery",
                self.table.name,
                partition,
            )
            return
        others = [(p, c) for p, c in self._caches.items() if p != partition]
        every_key = log.isEnabledFor(logging.DEBUG)  # uncached keys too (a lookup each)
        batch = WriteBatch(raw_mode=True)
        for key, encoded, decoded in records:
            raw = orjson.dumps(key)
            self._check_moved(key, raw, partition, others, every_key)
            if encoded is None:
                batch.delete(raw)
                self.remember(key, partition, None)
            else:
                batch.put(raw, encoded)
                if decoded is not None:
                    self.remember(key, partition, decoded)
                elif cache is not None:
                    cache.pop(key, None)  # read back (and decoded) from the database
        if offset is not None:
            batch.put(rocksdb_offset_key(self.table), str(offset).encode())
        db.write(batch)

    def _check_moved(
        self,
        key: str,
        raw: bytes,
        partition: int,
        others: list[tuple[int, OrderedDict[str, Any]]],
        every_key: bool,
    ) -> None:
        """Count ``key`` as moved if another partition holds it: as its caches know, or, at
        debug level, as their databases answer."""
        for p, cache in others:
            if cache.get(key) is not None:
                self.moved_keys.check(key, p, partition)
                return
        if every_key:
            for p, db in list(self._databases.items()):
                if p != partition and db.get(raw) is not None:
                    self.moved_keys.check(key, p, partition)
                    return

    def partition_keys(self) -> list[tuple[int, str]]:
        return [(p, orjson.loads(k)) for p, k in rocksdb_keys(self.table)]

    def forget(self) -> None:
        self._caches.clear()
