"""CSAT drop: one Page-Hinkley detector per channel on the pooled survey answers.

Each partition counts the answers of the surveys it joined into its channel's survey
minutes (``SlaState.surveys``: ``[sum of answers, answers]``; a survey whose minute the
partition has already closed counts in its first open minute, so none is lost) and sends
them with the minute counts on ``finpulse.channel_minutes``. The channel's owner sets them
per (source partition, minute) in its :class:`ChannelRecord` (a re-sent message changes
nothing) and, once the SLA judgement has passed a minute, feeds the minute to the channel's
detector: the pooled mean once per answer, minutes in time order. Within a minute the order
of answers from different partitions is not defined; the mean is. The detector (river's
``PageHinkley``) is kept in the record as a :class:`CsatDetector`, so a restarted owner
resumes it.

>>> from finpulse.streams.stages.service.records import SlaState
>>> from finpulse.streams.stages.service.windows import take_through
>>> sla = SlaState(closed_minute_ms=0)
>>> record_survey(sla, "chat", 30_000, 2)  # minute 0 is closed: counts in minute 1
>>> take_through(sla.surveys, MINUTE_MS)  # with the minute counts, when it closes
{'chat': {60000: [2, 1]}}
>>> rec = ChannelRecord()
>>> pool_surveys(rec, source=0, cells={0: [8, 2]}), pool_surveys(rec, source=0, cells={0: [8, 2]})
(0, 0)
>>> rec.surveys
{0: {0: [8, 2]}}
"""

from __future__ import annotations

import msgspec
from river import drift

from finpulse.models.page_hinkley import feed_repeated, restore, state_of
from finpulse.streams.stages.service.records import ChannelRecord, CsatDetector, SlaState
from finpulse.streams.stages.service.windows import MINUTE_MS, minute_of

MIN_ANSWERS = 30  # answers before the detector may fire
THRESHOLD = 40.0  # Page-Hinkley threshold on the cumulative drop
DELTA = 0.1  # tolerated drift per answer


def record_survey(sla: SlaState, channel: str, ms: int, value: int) -> None:
    """Count one survey answer into its channel's minute (the first open one when its own
    minute is closed)."""
    closed = sla.closed_minute_ms
    minute = minute_of(ms)
    if closed is not None and minute <= closed:
        minute = closed + MINUTE_MS
    cell = sla.surveys.setdefault(channel, {}).setdefault(minute, [0, 0])
    cell[0] += value
    cell[1] += 1


def pool_surveys(rec: ChannelRecord, *, source: int, cells: dict[int, list[int]]) -> int:
    """Set one source's survey minutes; returns how many came after their minute was fed to
    the detector (dropped: feeding them now would count a re-sent one twice)."""
    fed = rec.csat.fed_through_ms
    late = 0
    for minute, cell in cells.items():
        if fed is not None and minute <= fed:
            late += 1
        else:
            rec.surveys.setdefault(minute, {})[source] = list(cell)
    return late


def detect(rec: ChannelRecord, through: int) -> list[tuple[int, float]]:
    """Feed the pooled survey minutes up to ``through`` to the channel's detector, in time
    order; returns ``(minute, mean answer)`` of each minute in which a drop was detected.

    >>> rec = ChannelRecord()
    >>> for m in range(20):  # 10 answers a minute: 4.5 for 10 minutes, then 1.5
    ...     _ = pool_surveys(rec, source=m % 2, cells={m * MINUTE_MS: [45 if m < 10 else 15, 10]})
    >>> [(m // MINUTE_MS, mean) for m, mean in detect(rec, 19 * MINUTE_MS)]
    [(11, 1.5)]
    >>> rec.surveys, rec.csat.fed_through_ms // MINUTE_MS, rec.csat.n  # reset after the drop
    ({}, 19, 85)
    """
    due = sorted(m for m in rec.surveys if m <= through)
    fired: list[tuple[int, float]] = []
    if not due:
        return fired
    detector = to_river(rec.csat)
    for minute in due:
        total = answers = 0
        for s, n in rec.surveys.pop(minute).values():
            total += s
            answers += n
        if not answers:
            continue
        mean = total / answers
        if feed_repeated(detector, mean, answers):
            fired.append((minute, round(mean, 4)))
    rec.csat = from_river(detector, max(through, rec.csat.fed_through_ms or through))
    return fired


def to_river(state: CsatDetector) -> drift.PageHinkley:
    """river's detector in the state ``state`` holds.

    >>> d = to_river(CsatDetector())
    >>> d.update(4.0); d.update(2.0)
    >>> back = from_river(d, 0)
    >>> (back.n, back.mean), to_river(back)._sum_decrease == d._sum_decrease
    ((2, 3.0), True)
    """
    d = drift.PageHinkley(min_instances=MIN_ANSWERS, threshold=THRESHOLD, delta=DELTA, mode="down")
    return restore(d, state)


def from_river(d: drift.PageHinkley, fed_through_ms: int) -> CsatDetector:
    """The state of river's detector ``d`` (example: :func:`to_river`)."""
    return CsatDetector(fed_through_ms, *msgspec.structs.astuple(state_of(d)))
