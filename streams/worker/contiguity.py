"""No hole after the applied offset: each input partition is taken where its state stopped.

The re-delivery guard (:mod:`finpulse.streams.worker.pipeline`) is a high-water mark: an
event at or below the last offset applied in its partition is skipped, and nothing checks
that the next event taken follows that offset. A batch whose records of a partition start
past it would be applied, the guard would move past the hole, and the events in the hole
would be skipped as re-deliveries when they came: lost for good. Such batches happened
after a rebalance on Tansu: the worker taking a partition over read its first records from
past the group's committed offset, which was also where its restored state stopped (found
by tracing every batch against the guard).

So before a batch is processed, each partition whose records start past the offset after
the last applied one is checked with the broker (:func:`~finpulse.streams.worker.
faust_adapter.first_offsets`): if the broker's first record at or after that offset is the
batch's first, the offsets between hold no record (transaction markers, retention) and the
batch is taken; otherwise the partition's records are left out of the batch, unacknowledged,
and the partition is read again from that offset. Until the record the broker named comes,
later records of the partition are left out too, without asking the broker again. A
rebalance ends every such wait: Faust seeks every partition to its committed offset then.

>>> messages = [Msg(0, 5), Msg(0, 6), Msg(1, 9)]
>>> starts_past({0: 5, 1: 7}, messages)
{1: 9}
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
FirstOffsets = Callable[[Mapping[TP, int]], Awaitable[Mapping[TP, int | None]]]
Seek = Callable[[TP, int], Awaitable[None]]
Release = Callable[[Sequence[Any]], None]


@dataclass
class Msg:
    """A message as the check sees it (doctests and tests)."""

    partition: int
    offset: int


def starts_past(applied_next: Mapping[int, int], messages: Sequence[Any]) -> dict[int, int]:
    """The partitions whose first record at or after ``applied_next`` is past it, with that
    record's offset (records below it are re-deliveries; partitions without an applied
    offset are not checked).

    >>> starts_past({0: 10}, [Msg(0, 8), Msg(0, 10), Msg(0, 11)])
    {}
    >>> starts_past({0: 10}, [Msg(0, 8), Msg(0, 12)])
    {0: 12}
    """
    first: dict[int, int] = {}
    for m in messages:
        target = applied_next.get(m.partition)
        if target is not None and m.offset >= target:
            first[m.partition] = min(first.get(m.partition, m.offset), m.offset)
    return {p: o for p, o in first.items() if o > applied_next[p]}


class Contiguity:
    """The check of one ingest agent's batches (one input topic)."""

    def __init__(
        self,
        topic: str,
        applied_next: AppliedNext,
        first_offsets: FirstOffsets,
        seek: Seek,
        release: Release,
        generation: Callable[[], int],
    ) -> None:
        self.topic = topic
        self.applied_next = applied_next
        self.first_offsets = first_offsets
        self.seek = seek
        self.release = release
        self.generation = generation
        self._generation: int | None = None
        # per partition being read again: the first record the broker holds from there
        self._awaited: dict[int, int] = {}

    async def admit(self, messages: Sequence[Any]) -> list[Any]:
        """``messages`` without those of partitions that start past their applied offset
        (released, and read again); logs what it leaves out."""
        if self.generation() != self._generation:
            self._generation, self._awaited = self.generation(), {}
        targets = {
            p: n for p in {m.partition for m in messages} if (n := self.applied_next(p)) is not None
        }
        past = starts_past(targets, messages)
        if not past:
            return list(messages)
        left_out: set[int] = set()
        for p, first in past.items():
            awaited = self._awaited.get(p)
            if awaited is None:
                awaited = await self._ask(p, targets[p], first)
            if awaited < first:
                left_out.add(p)
            else:
                self._awaited.pop(p, None)
        for p in set(targets) - set(past):
            self._awaited.pop(p, None)  # the awaited record came
        if not left_out:
            return list(messages)
        self.release([m for m in messages if m.partition in left_out])
        return [m for m in messages if m.partition not in left_out]

    async def _ask(self, partition: int, target: int, first: int) -> int:
        tp = TP(self.topic, partition)
        answer = (await self.first_offsets({tp: target})).get(tp)
        held = first if answer is None else answer
        if held < first:
            log.warning(
                "%s/%d: records from %d taken while the state stopped at %d, and the broker "
                "holds %d: reading again from %d",
                self.topic,
                partition,
                first,
                target - 1,
                held,
                target,
            )
            self._awaited[partition] = held
            await self.seek(tp, target)
        else:
            log.info(
                "%s/%d: offsets %d-%d hold no record (broker); taken from %d",
                self.topic,
                partition,
                target,
                first - 1,
                first,
            )
        return held
