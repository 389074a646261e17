"""No hole after the applied offset: each input partition is taken where its state stopped.

The re-delivery guard (:mod:`finpulse.streams.worker.pipeline`) is a high-water mark: an
event at or below the last offset applied in its partition is skipped, and nothing checks
that the next event taken follows that offset. A batch whose records of a partition start
past it would be applied, the guard would move past the hole, and the events in the hole
would be skipped as re-deliveries when they came: lost for good. That happened after
rebalances (traced on Tansu, where they take longer): Faust's ``getmany`` drops the records of
a partition that is not active when it iterates them (a fetch that completes while a new
assignment's input partitions are paused for recovery), although aiokafka's position has
moved past them, and counts on its seek to the committed offsets after recovery to fetch
them again; but it resumes the input partitions before that seek, so a fetch in between
comes from past the dropped records, and the worker took it.

A partition nothing has been applied of yet is checked the same way, from where the group
placed it: its committed offset, else its start (offset 0; ``auto_offset_reset`` is
earliest). Without a committed offset Faust's seek fetches nothing again, so the records
dropped before it were lost however the later fetches came: a worker killed before its
first commit of a partition (the group then has no committed offset, the state no applied
one) left the records its successor's first fetch dropped unread for good (a channel owner
judged nothing: its sources' first minute counts never came).

So before a batch is processed, each partition's records are checked for a hole from the
offset after the last applied one (or from where the group placed it) on, and a hole is
checked with the broker
(:func:`~finpulse.streams.worker.faust_adapter.first_offsets`): if the broker's first record
at or after the hole's first offset is the record after the hole, the hole holds no record
(transaction markers, retention) and is passed over; otherwise the partition's records from
the hole on are left out of the batch, unacknowledged, and the partition is read again from
the hole. Until the record the broker named comes, later records of the partition past the
hole are left out too, without asking the broker again. A rebalance ends every such wait:
Faust seeks every partition to its committed offset then.

>>> messages = [Msg(0, 5), Msg(0, 6), Msg(1, 9)]
>>> holes({0: 5, 1: 7}, messages)
{1: (7, 9)}
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faust.types import TP

log = logging.getLogger(__name__)

# The offset after the last one applied of this agent's kind, per partition (None: none yet).
AppliedNext = Callable[[int], int | None]
# Where the group placed a partition nothing is applied of: its committed offset, else 0.
Placed = Callable[[int], int]
FirstOffsets = Callable[[Mapping[TP, int]], Awaitable[Mapping[TP, int | None]]]
Seek = Callable[[TP, int], Awaitable[None]]
Release = Callable[[Sequence[Any]], None]


@dataclass
class Msg:
    """A message as the check sees it (doctests and tests)."""

    partition: int
    offset: int


def holes(applied_next: Mapping[int, int], messages: Sequence[Any]) -> dict[int, tuple[int, int]]:
    """Per partition, the first hole in its records from ``applied_next`` on: the first
    missing offset and the next offset the batch holds (records below ``applied_next`` are
    re-deliveries; partitions not in ``applied_next`` are not checked).

    >>> holes({0: 10}, [Msg(0, 8), Msg(0, 10), Msg(0, 11)])
    {}
    >>> holes({0: 10, 1: 3}, [Msg(0, 8), Msg(0, 12), Msg(1, 3), Msg(1, 4), Msg(1, 9)])
    {0: (10, 12), 1: (5, 9)}
    """
    offsets: dict[int, list[int]] = {}
    for m in messages:
        target = applied_next.get(m.partition)
        if target is not None and m.offset >= target:
            offsets.setdefault(m.partition, []).append(m.offset)
    found = {}
    for p, seen in offsets.items():
        expected = applied_next[p]
        for o in sorted(seen):
            if o > expected:
                found[p] = (expected, o)
                break
            expected = max(expected, o + 1)
    return found


class Contiguity:
    """The check of one ingest agent's batches (one input topic)."""

    def __init__(
        self,
        topic: str,
        applied_next: AppliedNext,
        placed: Placed,
        first_offsets: FirstOffsets,
        seek: Seek,
        release: Release,
        generation: Callable[[], int],
    ) -> None:
        self.topic = topic
        self.applied_next = applied_next
        self.placed = placed
        self.first_offsets = first_offsets
        self.seek = seek
        self.release = release
        self.generation = generation
        self._generation: int | None = None
        # per partition read again: (from where, the first record the broker holds there)
        self._awaited: dict[int, tuple[int, int]] = {}

    async def admit(self, messages: Sequence[Any]) -> list[Any]:
        """``messages`` without those of a partition from its first hole on (released, and
        read again from the hole); a hole the broker holds no record in is passed over."""
        if self.generation() != self._generation:
            self._generation, self._awaited = self.generation(), {}
        applied = {p: self._next(p) for p in {m.partition for m in messages}}
        cut: dict[int, int] = {}  # partition -> records from this offset on are left out
        while found := holes(applied, [m for m in messages if m.partition not in cut]):
            for p, (missing, present) in found.items():
                held = await self._held(p, missing, present)
                if held < present:
                    cut[p] = missing
                else:  # nothing to read in the hole: check on from the record after it
                    applied[p] = present
        for p in set(applied) - set(cut):
            self._awaited.pop(p, None)  # nothing awaited any longer
        if not cut:
            return list(messages)
        out = [m for m in messages if m.partition in cut and m.offset >= cut[m.partition]]
        self.release(out)
        return [m for m in messages if not (m.partition in cut and m.offset >= cut[m.partition])]

    def _next(self, partition: int) -> int:
        """The offset the partition's next record taken must have: the one after the last
        applied, or where the group placed the partition when nothing is applied yet."""
        applied = self.applied_next(partition)
        return self.placed(partition) if applied is None else applied

    async def _held(self, partition: int, missing: int, present: int) -> int:
        """The broker's first record at or after ``missing`` (asked once per read again)."""
        awaited = self._awaited.get(partition)
        if awaited is not None and awaited[0] == missing:
            return awaited[1]
        tp = TP(self.topic, partition)
        try:
            answer = (await self.first_offsets({tp: missing})).get(tp)
        except Exception as exc:  # no answer: reading again is safe, passing over is not
            log.warning("%s/%d: the broker did not say what %d holds (%s)", *tp, missing, exc)
            answer = missing
        held = present if answer is None else answer
        if held < present:
            log.warning(
                "%s/%d: records from %d taken while %d comes next, and the broker holds %d: "
                "reading again from %d",
                self.topic,
                partition,
                present,
                missing,
                held,
                missing,
            )
            self._awaited[partition] = (missing, held)
            try:
                await self.seek(tp, missing)
            except Exception as exc:  # revoked meanwhile: the new owner seeks it
                log.warning("%s/%d: not read again (%s)", *tp, exc)
        else:
            log.info(
                "%s/%d: offsets %d-%d hold no record (broker); taken from %d",
                self.topic,
                partition,
                missing,
                present - 1,
                present,
            )
        return held
