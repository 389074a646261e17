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

So before a batch is processed, each partition's records are checked, in one pass, for a
hole from the offset after the last applied one (or from where the group placed it) on. A
hole the worker consumer's own fetches passed over
(:mod:`~finpulse.streams.worker.skipped_offsets`: the broker gave no record there, e.g. a
transactional producer's markers) is passed over. Any other hole is
checked against what the broker holds
(:func:`~finpulse.streams.worker.faust_adapter.held_offsets`): when it holds no record
there (markers, retention) the hole is passed over; otherwise the partition's records
from the hole on are left out of the batch, unacknowledged, and the partition is read
again from the hole.

One question to the broker answers many holes: it returns the offsets of every record of
one fetch (up to ``KNOWN_OFFSETS_MAX``), and each partition keeps the latest answer.
While a partition is read again, the records fetched before the seek (they continue what
was left out) are left out too, without asking; a record that is neither the one awaited
nor such a continuation, or that the first fetch after the seek brought, means the answer
is stale (the awaited record is gone: retention removed it meanwhile, say): the broker is
asked again. A rebalance ends every such wait (Faust
seeks every partition to its committed offset then) and drops the answers kept.

The intake hands each partition's records in offset order; a record out of that order
reads as a hole before it and is read again from there (nothing is lost).

>>> import asyncio
>>> async def broker(starts):  # holds every offset but 8 (a transaction marker, say)
...     return {tp: [o for o in range(start, 20) if o != 8] for tp, start in starts.items()}
>>> async def seek(tp, offset): print("read again from", offset)
>>> check = Contiguity("t", {0: 5, 1: 8}.get, lambda p: 0, broker, seek, print, lambda: 1)
>>> batch = [Msg(0, 5), Msg(1, 9), Msg(0, 6)]  # 8 holds no record: passed over
>>> asyncio.run(check.admit(batch)) == batch, dict(check.counts)
(True, {'probes': 1, 'passed': 1})
>>> asyncio.run(check.admit([Msg(1, 9), Msg(0, 7)]))  # 5 and 6 hold records: left out
read again from 5
[Msg(partition=0, offset=7)]
[Msg(partition=1, offset=9)]
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from finpulse.streams.worker.skipped_offsets import SkippedOffsets

log = logging.getLogger(__name__)

KNOWN_OFFSETS_MAX = 20_000  # record offsets of the broker's latest answer kept per partition

# The offset after the last one applied of this agent's kind, per partition (None: none yet).
AppliedNext = Callable[[int], int | None]
# Where the group placed a partition nothing is applied of: its committed offset, else 0.
Placed = Callable[[int], int]
HeldOffsets = Callable[[Mapping[TP, int]], Awaitable[Mapping[TP, Sequence[int]]]]
Seek = Callable[[TP, int], Awaitable[None]]
Release = Callable[[Sequence[Any]], None]


@dataclass
class Msg:
    """A message as the check sees it (doctests and tests)."""

    partition: int
    offset: int


@dataclass
class _Known:
    """The broker held exactly the records ``offsets`` from ``start`` to ``offsets[-1]``."""

    start: int
    offsets: Sequence[int]

    def first_from(self, offset: int) -> int | None:
        """The first record at or after ``offset``, if this answer covers it."""
        if not self.start <= offset <= self.offsets[-1]:
            return None
        return self.offsets[bisect_left(self.offsets, offset)]


@dataclass
class _Awaited:
    """A partition read again from ``missing``: the broker's first record there, and the
    offset after the last record left out (what a fetch from before the seek brings next)."""

    missing: int
    held: int
    next_left: int


class Contiguity:
    """The check of one ingest agent's batches (one input topic).

    ``counts`` (shared by the agents of a worker, for its stats): ``probes`` (questions to
    the broker), ``passed`` (holes that hold no record), ``read_again`` (seeks back to a
    hole), ``asked_again`` (stale answers dropped).
    """

    def __init__(
        self,
        topic: str,
        applied_next: AppliedNext,
        placed: Placed,
        held_offsets: HeldOffsets,
        seek: Seek,
        release: Release,
        generation: Callable[[], int],
        counts: Counter[str] | None = None,
        skipped: SkippedOffsets | None = None,
    ) -> None:
        self.topic = topic
        self.applied_next = applied_next
        self.placed = placed
        self.held_offsets = held_offsets
        self.seek = seek
        self.release = release
        self.generation = generation
        self.counts: Counter[str] = Counter() if counts is None else counts
        self.skipped = SkippedOffsets() if skipped is None else skipped  # the worker's fetches
        self._generation: int | None = None
        self._awaited: dict[int, _Awaited] = {}  # per partition read again
        self._known: dict[int, _Known] = {}  # per partition, the broker's latest answer

    async def admit(self, messages: Sequence[Any]) -> Sequence[Any]:
        """``messages`` without those of a partition from its first hole on (released, and
        read again from the hole); a hole the broker holds no record in is passed over.
        Without a hole, ``messages`` itself."""
        if self.generation() != self._generation:
            self._generation, self._awaited, self._known = self.generation(), {}, {}
        expected: dict[int, int] = {}  # per partition, its next offset
        cut: dict[int, int] = {}  # partition -> its records from this offset on are left out
        kept: list[Any] | None = None  # built once a record is left out
        left: list[Any] = []
        for i, m in enumerate(messages):
            p, offset = m.partition, m.offset
            if p in expected:
                n = expected[p]
            else:
                n = expected[p] = self._next(p)
            if offset >= n:  # not a re-delivery: must follow the state
                if p in cut or (offset > n and not await self._passable(p, n, offset)):
                    cut.setdefault(p, n)
                    if kept is None:
                        kept = list(messages[:i])
                    left.append(m)
                    if (awaited := self._awaited.get(p)) is not None:
                        awaited.next_left = offset + 1
                    continue
                expected[p] = offset + 1
            if kept is not None:
                kept.append(m)
        if self._awaited:
            for p, awaited in list(self._awaited.items()):
                if p not in cut and expected.get(p, awaited.missing) > awaited.missing:
                    del self._awaited[p]  # the awaited record came: nothing awaited any longer
        if kept is None:
            return messages
        self.release(left)
        return kept

    def _next(self, partition: int) -> int:
        """The offset the partition's next record taken must have: the one after the last
        applied, or where the group placed the partition when nothing is applied yet."""
        applied = self.applied_next(partition)
        return self.placed(partition) if applied is None else applied

    async def _passable(self, partition: int, missing: int, present: int) -> bool:
        """Whether offsets ``missing`` to ``present - 1`` hold no record at the broker; if
        they hold one, the partition is read again from ``missing`` (sought once)."""
        awaited = self._awaited.get(partition)
        if awaited is not None and awaited.missing == missing:
            if present == awaited.held:
                self.counts["passed"] += 1
                return True  # the awaited record, after offsets that hold none
            tp = TP(self.topic, partition)
            if present == awaited.next_left and self.skipped.restart(tp) != present:
                return False  # fetched before the seek: left out, as the records before it
            # neither: the re-read did not bring the awaited record; that answer is stale
            self.counts["asked_again"] += 1
            log.info(
                "%s/%d: %d came while %d was awaited: asking the broker again",
                self.topic,
                partition,
                present,
                awaited.held,
            )
            del self._awaited[partition]
            self._known.pop(partition, None)
        start = self.skipped.gap_start(TP(self.topic, partition), present)
        if start is not None and start <= missing:
            held = present  # the worker's own fetches passed over the hole
        else:
            held = await self._first_held(partition, missing, present)
        if held >= present:
            self.counts["passed"] += 1
            log.debug(
                "%s/%d: offsets %d-%d hold no record (broker); taken from %d",
                self.topic,
                partition,
                missing,
                present - 1,
                present,
            )
            return True
        log.warning(
            "%s/%d: records from %d taken while %d comes next, and the broker "
            "holds %d: reading again from %d",
            self.topic,
            partition,
            present,
            missing,
            held,
            missing,
        )
        self.counts["read_again"] += 1
        self._awaited[partition] = _Awaited(missing, held, present)
        tp = TP(self.topic, partition)
        try:
            await self.seek(tp, missing)
        except Exception as exc:  # revoked meanwhile: the new owner seeks it
            log.warning("%s/%d: not read again (%s)", *tp, exc)
        return False

    async def _first_held(self, partition: int, missing: int, present: int) -> int:
        """The broker's first record at or after ``missing`` (``present`` when it holds
        none up to its end): from its latest answer when that covers ``missing``, else
        asked; ``missing`` itself when the broker does not answer (reading again is safe,
        passing over is not)."""
        known = self._known.get(partition)
        if known is not None and (first := known.first_from(missing)) is not None:
            return first
        tp = TP(self.topic, partition)
        self.counts["probes"] += 1
        try:
            offsets = (await self.held_offsets({tp: missing})).get(tp)
        except Exception as exc:
            log.warning("%s/%d: the broker did not say what %d holds (%s)", *tp, missing, exc)
            return missing
        if not offsets:
            return present
        self._known[partition] = _Known(missing, offsets[:KNOWN_OFFSETS_MAX])
        return offsets[0]
