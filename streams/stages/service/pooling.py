"""Pooling the minute counts of every source partition of one channel, and judging them.

Interactions are keyed by customer, so each input partition sees a share of every channel.
Each partition closes its minutes on its own event time and sends, per channel, the counts of
the minutes it closed and the newest minute it closed (``finpulse.channel_minutes``, keyed by
channel). The channel's owner keeps one :class:`ChannelRecord` per channel, pooled as
:mod:`~finpulse.streams.stages.minute_pool` says (set per source partition and minute;
complete when every source has closed it, or after a bounded wait). Cells that come after
their minute was judged still count in the later windows that hold their minute.

The judgement is :func:`~.windows.advance_sla` over the pooled cells, exactly as a single
partition holding every contact would judge them.

>>> rec = ChannelRecord()
>>> pool(rec, source=0, closed=0, cells={0: [5, 0]})
0
>>> judged_through(rec.sources, partitions=2, wait_ms=60_000)  # source 1 unseen: none yet
-60000
>>> pool(rec, source=1, closed=0, cells={0: [4, 1]})
0
>>> pool(rec, source=1, closed=0, cells={0: [4, 1]})  # sent again: set, not added
0
>>> judged_through(rec.sources, partitions=2, wait_ms=60_000), pooled_cells(rec)
(0, {0: [9, 1]})
"""

from __future__ import annotations

from finpulse.streams.stages.minute_pool import judged_through, set_cells, sum_sources
from finpulse.streams.stages.service.records import ChannelRecord
from finpulse.streams.stages.service.windows import MINUTE_MS, SlaCheck, advance_sla

__all__ = ["judge", "judged_through", "pool", "pooled_cells"]


def pool(rec: ChannelRecord, *, source: int, closed: int, cells: dict[int, list[int]]) -> int:
    """Set the cells one source partition closed; returns how many came after their minute
    was judged (pooled for later windows while one needs them, else dropped; a cell sent
    again counts here too)."""
    return set_cells(
        rec.cells,
        rec.sources,
        source=source,
        closed=closed,
        cells=cells,
        judged=rec.sla.closed_minute_ms,
        floor=rec.cells_from_ms,
    )


def pooled_cells(rec: ChannelRecord) -> dict[int, list[int]]:
    """``{minute: [contacts, answered]}`` summed over the source partitions."""
    return sum_sources(rec.cells)


def judge(
    rec: ChannelRecord,
    channel: str,
    *,
    partitions: int,
    wait_ms: int,
    window_minutes: int,
    target: float,
    z: float,
    min_contacts: int,
) -> list[SlaCheck]:
    """Judge the pooled minutes that became complete; drop cells no window needs any more.

    >>> rec = ChannelRecord()
    >>> for m in range(4):  # two sources, every contact late
    ...     for source in (0, 1):
    ...         _ = pool(rec, source=source, closed=m * MINUTE_MS, cells={m * MINUTE_MS: [2, 0]})
    >>> checks = judge(rec, "chat", partitions=2, wait_ms=60_000, window_minutes=2,
    ...                target=0.8, z=1.645, min_contacts=3)
    >>> [(c.minute_ms // MINUTE_MS, c.contacts, c.consecutive) for c in checks]
    [(0, 4, 1), (1, 8, 2), (2, 8, 3), (3, 8, 4)]
    >>> sorted(rec.cells)  # the window of the next minute needs only minute 3
    [180000]
    """
    through = judged_through(rec.sources, partitions=partitions, wait_ms=wait_ms)
    if through is None:
        return []
    pooled = pooled_cells(rec)
    rec.sla.minutes = {channel: pooled} if pooled else {}
    checks = advance_sla(
        rec.sla,
        through + MINUTE_MS,  # closes ``through`` and every minute before it
        window_minutes=window_minutes,
        target=target,
        z=z,
        min_contacts=min_contacts,
        grace_ms=0,
    )
    closed = rec.sla.closed_minute_ms
    if closed is not None:
        keep_from = closed - (window_minutes - 2) * MINUTE_MS  # the next minute's window
        rec.cells = {m: c for m, c in rec.cells.items() if m >= keep_from}
        rec.cells_from_ms = keep_from
    rec.sla.minutes = {}  # derived from the cells on every call
    return checks
