"""The commit log: every stage's state changes of one commit become durable all together.

A commit changes keys in several tables (risk, service, alerting, the re-delivery guard),
each with its own changelog topic, and a broker makes one record batch atomic, not a set of
topics. A worker killed while it publishes those changelogs would leave some stages with
the commit and others without it, and the stages would then disagree about which events
they have seen (an alert forgotten while the event that raised it is skipped as a
re-delivery). The commit log closes that window, as a database's redo log does:

1. before any changelog record of a commit is published, the commit's records are
   written, per partition, as **log entries** to the ``finpulse_commits`` table's changelog
   (key ``<partition>:<chunk>``, each chunk carrying the commit's epoch and chunk count);
2. only once every entry is acknowledged are the tables' own changelog records published.

After a restart Faust restores every table from its changelog; then :func:`redo` applies,
for each assigned partition, the latest log entry set if it is complete, and queues what it
applied for the next commit, which publishes it to the tables' changelogs. A crash in step 2
thus leaves nothing half-done: redo completes the commit. A crash in step 1 leaves an
incomplete set (ignored) and no table record of that commit: the state is the previous
commit's, whole. Either way every stage resumes from the same point, and the re-delivered
events are decided again, or skipped, by one guard.

Log entries are :class:`LogEntry` records in the state codec
(:mod:`finpulse.streams.core.state_codec`); the records they carry keep their encoded bytes.

>>> from finpulse.streams.core.state_codec import encode
>>> records = [Outgoing("app-risk-changelog", b'"c1"', encode({"n": 2}), 0),
...            Outgoing("app-alert-changelog", b'"r|c1"', None, 0)]
>>> [e.key for e in log_entries(records, "app-finpulse_commits-changelog", epoch=7)]
[b'0:0']
>>> entries = {e.key: e.value for e in log_entries(records, "t", epoch=7)}
>>> risk, alert = {}, {"r|c1": {"n": 1}}
>>> targets = {"app-risk-changelog": DictTarget(risk), "app-alert-changelog": DictTarget(alert)}
>>> redo(entries, {0}, targets), risk, alert
(2, {'c1': {'n': 2}}, {})
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any, Protocol

import msgspec
import orjson

from finpulse.streams.core.batch import Outgoing
from finpulse.streams.core.state_codec import StateCodec, encode

log = logging.getLogger(__name__)

TABLE_NAME = "finpulse_commits"
# A log entry holds at most this many bytes of records (a broker's default message limit
# is 1 MiB); a partition's changes of one commit take as many entries as they need.
CHUNK_BYTES = 512 * 1024


class LogEntry(msgspec.Struct, array_like=True):
    """One chunk of a partition's records of one commit: ``(changelog topic, key, value)``,
    key and value as the table's changelog has them (``None`` value: a delete)."""

    epoch: int
    chunks: int
    records: list[tuple[str, bytes, bytes | None]]

    @classmethod
    def from_legacy(cls, old: dict[str, Any]) -> LogEntry:
        """An entry of an earlier release (a JSON object with the records inline as JSON)."""
        records = [
            (topic, orjson.dumps(key), None if value is None else orjson.dumps(value))
            for topic, key, value in old["r"]
        ]
        return cls(epoch=old["e"], chunks=old["n"], records=records)


_ENTRIES = StateCodec(TABLE_NAME, LogEntry)


def log_entries(records: Sequence[Outgoing], topic: str, epoch: int) -> list[Outgoing]:
    """The log entries of one commit's changelog ``records``, on ``topic``, one set per
    partition (the partition of the records it holds)."""
    by_partition: dict[int, list[Outgoing]] = {}
    for r in records:
        if r.partition is None:
            raise ValueError(f"a changelog record needs its partition: {r.topic} {r.key!r}")
        by_partition.setdefault(r.partition, []).append(r)
    entries = []
    for partition, recs in by_partition.items():
        chunks = _chunks(recs)
        for i, chunk in enumerate(chunks):
            carried = [(r.topic, r.key or b"null", r.value) for r in chunk]
            body = LogEntry(epoch, len(chunks), carried)
            key = f"{partition}:{i}".encode()
            entries.append(Outgoing(topic, key, encode(body), partition))
    return entries


def _chunks(records: list[Outgoing]) -> list[list[Outgoing]]:
    chunks: list[list[Outgoing]] = [[]]
    size = 0
    for r in records:
        n = len(r.topic) + len(r.key or b"") + len(r.value or b"") + 16
        if chunks[-1] and size + n > CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(r)
        size += n
    return chunks


class RedoTarget(Protocol):
    """A table redo writes to: it sets the value *and* queues it for the next commit, so the
    table's own changelog gets the records a crash kept from it (else a second crash, once
    later commits have replaced the log entries, would lose them)."""

    def redo(self, key: Any, value: bytes | None, partition: int) -> None: ...


class DictTarget:
    """A plain dict as a redo target (offline and in tests): values decoded by ``codec``,
    nothing to republish."""

    def __init__(self, data: MutableMapping[Any, Any], codec: StateCodec | None = None) -> None:
        self.data = data
        self.codec = codec or StateCodec("dict")

    def redo(self, key: Any, value: bytes | None, partition: int) -> None:
        decoded = None if value is None else self.codec.decode(value)
        if decoded is None:
            self.data.pop(key, None)
        else:
            self.data[key] = decoded


def redo(
    entries: Mapping[bytes, bytes],
    partitions: Iterable[int],
    targets: Mapping[str, RedoTarget],
) -> int:
    """Apply the latest complete log entry set of each of ``partitions`` to ``targets``
    (changelog topic -> the table); returns the records applied.

    A set is complete when chunk 0 and every chunk it counts carry the same epoch. Applying
    records that are already in place changes nothing, so redo is safe after any restart.
    """
    applied = 0
    for partition in partitions:
        first = _entry(entries.get(f"{partition}:0".encode()))
        if first is None:
            continue
        chunks = [first] + [
            _entry(entries.get(f"{partition}:{i}".encode())) for i in range(1, first.chunks)
        ]
        if any(c is None or c.epoch != first.epoch for c in chunks):
            log.info("partition %d: the last commit's log is incomplete; not redone", partition)
            continue
        for chunk in chunks:
            assert chunk is not None
            for topic, key, value in chunk.records:
                target = targets.get(topic)
                if target is None:
                    continue  # a table this worker no longer has
                target.redo(orjson.loads(key), value, partition)
                applied += 1
    return applied


def _entry(raw: bytes | None) -> LogEntry | None:
    entry: LogEntry | None = None if raw is None else _ENTRIES.decode(raw)
    return entry
