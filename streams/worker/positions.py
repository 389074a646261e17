"""Where each input partition resumes after an assignment: the state is the position of record.

The re-delivery guard (the last offset applied per input partition, committed with every
stage's state) says exactly where processing stopped. The consumer group's committed
offset only trails it: offsets are committed after the state, and Faust commits them
every few seconds, so a worker killed early leaves none at all. Kafka then places the
partition by ``auto_offset_reset``, and a committed offset can also sit past the state
(an operator's reset, or any bug): events between the two would be skipped for good.

So, after Faust's seek to the committed offsets, each input partition whose applied
offset is known is moved to the offset after it when the group has no committed offset
or one beyond it. A committed offset behind it stays: the events in between are read
again and skipped by the guard (Faust's commit bookkeeping expects that contiguous
read). Like a Flink Kafka source, the committed offsets serve monitoring (lag), and the
state decides: to skip events on purpose, reset the state, not only the group's offsets.

>>> resume_positions({"a": None, "b": 40, "c": 90, "d": 7}, {"a": 51, "b": 51, "c": 51})
{'a': 51, 'c': 51}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

P = TypeVar("P")


def resume_positions(
    committed: Mapping[P, int | None], applied_next: Mapping[P, int]
) -> dict[P, int]:
    """The partitions to move, and where: those with an applied position (``applied_next``:
    the offset after the last applied) and no committed offset or one past it."""
    moves = {}
    for tp, target in applied_next.items():
        offset = committed.get(tp)
        if offset is None or offset > target:
            moves[tp] = target
    return moves
