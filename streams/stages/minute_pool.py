"""Pooling per-minute cells that several source partitions send to one owner.

A keyed input (customers) spreads what one owner judges (a channel, a model) over every
input partition. Each partition closes minutes on its own event time and sends the owner
the cells of the minutes it closed (a list of additive numbers per minute) and the newest
minute it has closed. The owner keeps them per (minute, source partition):

* **set, never added**: a re-delivered or re-sent message changes nothing;
* **complete when every source has closed it**: a minute can be judged once every source
  partition has closed it, or, so an idle partition cannot hold the owner back, once the
  leading source is ``wait_ms`` of event time past it (the bounded delay);
* the cells of a source summed per minute are what one partition holding every event
  would have counted.

Used by the channel owner (``service/pooling.py``: service level and CSAT) and the model
owner (``model_inputs.py``: input drift).

>>> cells, sources = {}, {}
>>> set_cells(cells, sources, source=0, closed=0, cells={0: [5, 0]}, judged=None, floor=None)
0
>>> judged_through(sources, partitions=2, wait_ms=60_000)  # source 1 unseen: none yet
-60000
>>> set_cells(cells, sources, source=1, closed=0, cells={0: [4, 1]}, judged=None, floor=None)
0
>>> set_cells(cells, sources, source=1, closed=0, cells={0: [4, 1]}, judged=None, floor=None)
0
>>> judged_through(sources, partitions=2, wait_ms=60_000), sum_sources(cells)
(0, {0: [9, 1]})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

MINUTE_MS = 60_000

N = TypeVar("N", int, float)


def minute_of(ms: int) -> int:
    """Start (epoch ms) of the minute containing ``ms``.

    >>> minute_of(59_999), minute_of(60_000)
    (0, 60000)
    """
    return ms - ms % MINUTE_MS


def set_cells(
    pooled: dict[int, dict[int, list[N]]],
    sources: dict[int, int],
    *,
    source: int,
    closed: int,
    cells: Mapping[int, list[N]],
    judged: int | None,
    floor: int | None,
) -> int:
    """Set the cells one source partition closed (minutes before ``floor`` are no longer
    kept) and note how far it has closed; returns how many came after their minute was
    judged (through ``judged``; a cell sent again counts here too)."""
    late = 0
    for minute, cell in cells.items():
        if judged is not None and minute <= judged:
            late += 1
        if floor is None or minute >= floor:
            pooled.setdefault(minute, {})[source] = list(cell)
    previous = sources.get(source)
    sources[source] = closed if previous is None else max(previous, closed)
    return late


def judged_through(sources: dict[int, int], *, partitions: int, wait_ms: int) -> int | None:
    """The newest minute complete enough to judge (see the module text), ``None`` before any
    source has closed one.

    >>> judged_through({0: 600_000, 1: 120_000}, partitions=2, wait_ms=60_000)  # 1 is idle
    540000
    >>> judged_through({0: 600_000, 1: 540_000}, partitions=2, wait_ms=300_000)
    540000
    """
    if not sources:
        return None
    lead = max(sources.values())
    waited = minute_of(lead - wait_ms)
    if len(sources) < partitions or any(p not in sources for p in range(partitions)):
        return waited
    return max(min(sources[p] for p in range(partitions)), waited)


def sum_sources(pooled: Mapping[int, Mapping[int, list[N]]]) -> dict[int, list[N]]:
    """``{minute: cell}``, each cell summed over the source partitions.

    >>> sum_sources({0: {0: [2, 1.5], 1: [3, 0.5]}})
    {0: [5, 2.0]}
    """
    return {
        minute: [sum(values) for values in zip(*by_source.values(), strict=True)]
        for minute, by_source in pooled.items()
    }
