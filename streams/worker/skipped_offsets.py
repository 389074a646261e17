"""Offsets the worker consumer's own fetches passed over: the broker gave no record there.

aiokafka reads each partition as a chain: a fetch starts at the partition's position, and
the position moves past every record returned and every offset the broker gave none for
(transaction markers, aborted records under ``read_committed``, records removed by
retention). So between two records that follow each other in the fetches of a partition,
with no seek and no new assignment between them, the offsets hold no record a consumer is
given. Records Faust drops afterwards (:mod:`finpulse.streams.worker.contiguity`) are
still in the chain: the gap they leave in a batch is not one of these.

Every fetch's records are noted here as aiokafka returns them, before Faust sees them; a
seek or a new consumer generation (``moved``) ends every chain, and a fetch during which
one happened only counts the gaps between its own records.

>>> from faust.types import TP
>>> class R:
...     def __init__(self, offset): self.offset = offset
>>> tp = TP("t", 0)
>>> skipped = SkippedOffsets()
>>> skipped.note({tp: [R(0), R(1), R(3)]}, skipped.epoch)  # 2: a transaction marker
>>> skipped.note({tp: [R(5), R(6)]}, skipped.epoch)  # 4: another one, between fetches
>>> skipped.gap_start(tp, 3), skipped.gap_start(tp, 5), skipped.gap_start(tp, 6)
(2, 4, None)
>>> skipped.moved()  # a seek: where the next fetch starts is not known here
>>> skipped.note({tp: [R(9)]}, skipped.epoch)
>>> skipped.gap_start(tp, 9) is None, skipped.restart(tp)
(True, 9)
"""

from __future__ import annotations

from collections.abc import Container, Hashable, Mapping, Sequence
from typing import Any

from faust.types import TP

GAPS_KEPT = 10_000  # per partition, the newest


class SkippedOffsets:
    """Per partition, the gaps of the worker consumer's fetch chain (see the module text)."""

    def __init__(self, kept: int = GAPS_KEPT) -> None:
        self.kept = kept
        self._moves = 0
        # per partition: the offset after its last record fetched since the latest move
        self._next: dict[TP, int] = {}
        # per partition: the first record after a gap -> the gap's first offset
        self._gaps: dict[TP, dict[int, int]] = {}
        # per partition: the first record of its first fetch after the latest move
        self._restarts: dict[TP, int] = {}

    @property
    def epoch(self) -> Hashable:
        """Changes with every :meth:`moved`: capture it before a fetch, pass it to
        :meth:`note` after."""
        return self._moves

    def moved(self) -> None:
        """A seek or a new assignment: no partition's next fetch follows its last one."""
        self._moves += 1
        self._next.clear()

    def note(
        self,
        records: Mapping[TP, Sequence[Any]],
        epoch: Hashable,
        topics: Container[str] | None = None,
    ) -> None:
        """The records one fetch returned per partition (each in offset order), fetched
        from ``epoch`` on (the :attr:`epoch` before the fetch); only ``topics``' if given."""
        current = self.epoch
        chained = epoch == current
        for tp, recs in records.items():
            if not recs or (topics is not None and tp.topic not in topics):
                continue
            first, last = recs[0].offset, recs[-1].offset
            before = self._next.get(tp)
            if chained and before is None:
                self._restarts[tp] = first  # fetched after the move, not before
            elif chained and before is not None and before < first:
                self._add(tp, before, first)
            if last - first + 1 != len(recs):  # gaps between its own records
                previous = first
                for r in recs:
                    if r.offset > previous + 1:
                        self._add(tp, previous + 1, r.offset)
                    previous = r.offset
            if chained:
                self._next[tp] = last + 1

    def gap_start(self, tp: TP, present: int) -> int | None:
        """The first offset of the gap the chain passed over right before ``present``
        (``None``: no gap known there)."""
        gaps = self._gaps.get(tp)
        return None if gaps is None else gaps.get(present)

    def restart(self, tp: TP) -> int | None:
        """The first record fetched of ``tp`` after the latest seek or new assignment (in
        a fetch begun after it: not one fetched before)."""
        return self._restarts.get(tp)

    def _add(self, tp: TP, start: int, stop: int) -> None:
        gaps = self._gaps.setdefault(tp, {})
        gaps[stop] = start
        if len(gaps) > self.kept:
            del gaps[next(iter(gaps))]
