"""Consumer lag: how far each input partition's processing is behind the broker.

Every ``FINPULSE_LAG_INTERVAL_S`` (5 s) the worker writes one ``consumer_lag`` row per input
topic partition it is assigned, through its one commit path
(:meth:`finpulse.streams.worker.committer.Committer.submit`, with nothing to acknowledge):

- ``next_offset``: the offset the worker processes next, i.e. the newest offset whose batch
  is stored and acknowledged, plus one (what Faust then commits for the group). Before a
  batch of the current assignment is committed, the oldest offset fetched in it;
- ``high_watermark``: the broker's high watermark from the latest fetch response
  (aiokafka ``highwater``), right on every broker;
- ``end_offset``: the partition's end offset from ListOffsets, for comparison (Tansu's is
  wrong: the offset after the first record of the last record batch); NULL if not answered;
- ``lag_events = high_watermark - next_offset`` (never below 0);
- ``lag_s``: the record timestamp (event time as produced) of the newest fetched message
  minus that of the newest processed one; 0 when caught up (``lag_events`` 0). It covers
  what has been fetched: messages the broker holds but the worker has not fetched yet
  count in ``lag_events`` only;
- the worker's figures over the interval, the same on each of its rows: events per second
  (valid events and dead letters committed), batch time p50/p99 (from taking a batch to
  its commit, nearest rank, :mod:`finpulse.streams.core.quantiles`) and dead letters.

>>> partition_lag(high_watermark=120, next_offset=100, fetched_ts=50.0, processed_ts=38.5)
(20, 11.5)
>>> partition_lag(high_watermark=120, next_offset=120, fetched_ts=50.0, processed_ts=38.5)
(0, 0.0)
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from finpulse.sinks.tables import CONSUMER_LAG_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.quantiles import percentile

log = logging.getLogger(__name__)

KIND = "consumer_lag"  # the committer's kind of a lag batch (no input to acknowledge)


def default_worker_id() -> str:
    """``host:pid``, the worker's name in ``consumer_lag`` unless ``FINPULSE_WORKER_ID``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def partition_lag(
    high_watermark: int,
    next_offset: int,
    fetched_ts: float | None,
    processed_ts: float | None,
) -> tuple[int, float]:
    """``(lag_events, lag_s)`` of one partition (see the module text).

    >>> partition_lag(10, 4, fetched_ts=None, processed_ts=3.0)  # nothing newer fetched
    (6, 0.0)
    >>> partition_lag(10, 12, fetched_ts=9.0, processed_ts=9.5)  # a stale high watermark
    (0, 0.0)
    """
    lag_events = max(0, high_watermark - next_offset)
    if lag_events == 0 or fetched_ts is None or processed_ts is None:
        return lag_events, 0.0
    return lag_events, max(0.0, fetched_ts - processed_ts)


@dataclass(frozen=True)
class Position:
    """What the worker knows of one partition in the current consumer generation: the
    first and newest messages fetched, and the newest processed (stored and acknowledged),
    as ``(offset, record timestamp in s)``."""

    first_fetched: tuple[int, float] | None
    newest_fetched: tuple[int, float] | None
    newest_processed: tuple[int, float] | None

    def next_offset(self) -> int | None:
        """The offset processed next, ``None`` when nothing was fetched or processed.

        >>> Position((5, 1.0), (9, 2.0), (7, 1.5)).next_offset()
        8
        >>> Position((5, 1.0), (9, 2.0), None).next_offset()
        5
        """
        if self.newest_processed is not None:
            return self.newest_processed[0] + 1
        if self.first_fetched is not None:
            return self.first_fetched[0]
        return None

    def lag(self, high_watermark: int) -> tuple[int, int, float]:
        """``(next_offset, lag_events, lag_s)`` against ``high_watermark``.

        Without a message fetched or processed, the latest fetch answered nothing: the
        worker is at the high watermark.

        >>> Position((5, 1.0), (9, 4.0), None).lag(10)  # nothing processed yet
        (5, 5, 3.0)
        >>> Position(None, None, None).lag(10)
        (10, 0, 0.0)
        """
        nxt = self.next_offset()
        if nxt is None:
            return high_watermark, 0, 0.0
        oldest = self.newest_processed or self.first_fetched
        fetched_ts = self.newest_fetched[1] if self.newest_fetched is not None else None
        lag_events, lag_s = partition_lag(
            high_watermark, nxt, fetched_ts, oldest[1] if oldest is not None else None
        )
        return nxt, lag_events, lag_s


def _mark(message: Any, generation: int) -> tuple[int, float] | None:
    if message is None or message.generation_id != generation:
        return None  # of an earlier assignment: Faust seeks back to the committed offsets
    return message.offset, float(message.timestamp)


@dataclass
class IntervalFigures:
    """The worker's figures over one lag interval."""

    seconds: float
    events_per_s: float
    batch_p50_ms: float
    batch_p99_ms: float
    deadletters: int


class LagMonitor:
    """Tracks the newest processed message per partition and makes the ``consumer_lag`` rows.

    The newest *fetched* messages come from the intake buffers (``fetched``: per topic, the
    buffer's ``first_fetched`` and ``newest_fetched`` dicts by partition); the agents call
    :meth:`note_processed` with each batch once it is committed and :meth:`note_batch_ms`
    with its time; ``counters()`` returns the worker's ``(events, dead letters)`` totals.
    """

    def __init__(
        self,
        worker: str,
        fetched: Mapping[str, Any],
        counters: Callable[[], tuple[int, int]],
    ) -> None:
        self.worker = worker
        self.fetched = fetched
        self.counters = counters
        self.processed: dict[Any, Any] = {}  # tp -> newest processed message
        self._batch_ms: list[float] = []
        self._since = time.monotonic()
        self._counted = counters()

    def note_processed(self, messages: Sequence[Any]) -> None:
        """A batch's messages are committed (called in commit order: the last is newest)."""
        processed = self.processed
        for m in messages:
            processed[m.tp] = m

    def note_batch_ms(self, ms: float) -> None:
        self._batch_ms.append(ms)

    def position(self, tp: Any, generation: int) -> Position:
        buffer = self.fetched.get(tp.topic)
        first = newest = None
        if buffer is not None:
            first = buffer.first_fetched.get(tp)
            newest = buffer.newest_fetched.get(tp)
        return Position(
            _mark(first, generation),
            _mark(newest, generation),
            _mark(self.processed.get(tp), generation),
        )

    def take_interval(self, now_monotonic: float | None = None) -> IntervalFigures:
        """The figures since the previous call (or the start), and start a new interval."""
        now = time.monotonic() if now_monotonic is None else now_monotonic
        seconds = max(now - self._since, 1e-9)
        events, deadletters = self.counters()
        before_events, before_dl = self._counted
        timings, self._batch_ms = sorted(self._batch_ms), []
        self._since, self._counted = now, (events, deadletters)
        return IntervalFigures(
            seconds=seconds,
            events_per_s=(events - before_events) / seconds,
            batch_p50_ms=percentile(timings, 0.5) if timings else 0.0,
            batch_p99_ms=percentile(timings, 0.99) if timings else 0.0,
            deadletters=deadletters - before_dl,
        )

    def rows(
        self,
        assignment: Iterable[Any],
        generation: int,
        high_watermark: Callable[[Any], int | None],
        end_offsets: Mapping[Any, int],
        at: datetime | None = None,
        now_monotonic: float | None = None,
    ) -> list[tuple[Any, ...]]:
        """One ``consumer_lag`` row per assigned partition whose high watermark is known
        (a partition not fetched from yet has none), in :data:`CONSUMER_LAG_TABLE` order."""
        at = at or datetime.now(UTC)
        figures = self.take_interval(now_monotonic)
        assigned = sorted(assignment)
        # forget partitions no longer assigned (their messages would be of an old generation)
        for tp in [tp for tp in self.processed if tp not in set(assigned)]:
            del self.processed[tp]
        rows = []
        stamp = at.isoformat(timespec="milliseconds")
        for tp in assigned:
            high = high_watermark(tp)
            if high is None:
                continue
            nxt, lag_events, lag_s = self.position(tp, generation).lag(high)
            rows.append(
                (
                    at,
                    self.worker,
                    tp.topic,
                    tp.partition,
                    nxt,
                    high,
                    end_offsets.get(tp),
                    lag_events,
                    round(lag_s, 3),
                    round(figures.events_per_s, 3),
                    round(figures.batch_p50_ms, 3),
                    round(figures.batch_p99_ms, 3),
                    figures.deadletters,
                    round(figures.seconds, 3),
                    f"{self.worker}|{tp.topic}|{tp.partition}|{stamp}",
                )
            )
        return rows

    def batch(self, rows: list[tuple[Any, ...]]) -> BatchOutput:
        """The rows as a batch for the committer."""
        out = BatchOutput()
        out.add_rows(CONSUMER_LAG_TABLE, rows)
        return out


async def with_timeout(job: Any, timeout_s: float, what: str) -> Any:
    """``await job`` within ``timeout_s``; ``None`` (logged) when it fails or times out."""
    try:
        return await asyncio.wait_for(job, timeout_s)
    except Exception as exc:  # a figure left out of one row, never a failed worker
        log.debug("%s: %s", what, exc)
        return None
