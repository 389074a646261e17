"""Group commit: the processed batches of all agents are stored together.

A flush takes every batch processed since the previous flush began, merges them, and
stores the merge with **one insert per table** (tables in parallel), then publishes their
changelog records, then acknowledges the batches' events in the order they were submitted.
While a flush runs, the next batches gather for the following one, and a flush starts no
sooner than ``sink_flush_interval_s`` (1 s) after the previous one started, unless the
batches waiting hold half of ``stream_unstored_events_max`` events (so the agents'
backpressure does not stall on the interval). The number of inserts therefore follows
neither the event rate nor the batch rate: ClickHouse creates one part per insert (~20 ms of
server CPU even for 50 rows, then merges), so dozens of small inserts a second took most of a
core on a two-core machine, and each insert waited ~100-200 ms behind the others.

The guarantees of :mod:`streams.runtime` hold for the merge as for one batch: rows and
messages are stored before the changelog is published, the changelog before offsets are
acknowledged. The live pipeline defers its changelog (``Pipeline(defer_changelog=True)``):
the flush takes it in the same synchronous step as its group, so each changed key is
serialized once per flush, with the state after the group's last batch and of no batch
outside it. Records a batch carries itself (offline pipelines) collapse to the newest per key.

>>> a, b = BatchOutput(valid_count=2), BatchOutput(valid_count=3)
>>> a.changelog = [Outgoing("t", b"k", b"1", 0), Outgoing("t", b"j", b"1", 0)]
>>> b.changelog = [Outgoing("t", b"k", b"2", 0)]
>>> merged = merge_outputs([a, b])
>>> merged.valid_count, [(m.key, m.value) for m in merged.changelog]
(5, [(b'k', b'2'), (b'j', b'1')])
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streams.messages import Outgoing
from streams.pipeline import BatchOutput

if TYPE_CHECKING:
    from streams.runtime import Runtime

log = logging.getLogger(__name__)


def merge_outputs(outs: Sequence[BatchOutput]) -> BatchOutput:
    """One output holding the rows, dead letters, messages and changelog of ``outs`` in order;
    the changelog keeps the newest record per (topic, partition, key)."""
    merged = BatchOutput()
    changelog: dict[tuple[str, int | None, bytes | None], Outgoing] = {}
    for out in outs:
        for table, rows in out.rows.items():
            merged.add_rows(table, rows)
        merged.deadletters.extend(out.deadletters)
        merged.candidates.extend(out.candidates)
        merged.messages.extend(out.messages)
        for record in out.changelog:
            changelog[(record.topic, record.partition, record.key)] = record
        merged.valid_count += out.valid_count
    merged.changelog = list(changelog.values())
    return merged


@dataclass
class _Submitted:
    kind: str
    out: BatchOutput
    published: asyncio.Future[None] | None
    on_stored: Callable[[], None]
    done: asyncio.Future[None]


class GroupCommit:
    """Stores submitted batches in flushes, one flush at a time (see the module text).

    ``submit`` publishes the batch's alerts and dead letters at once and returns a future
    that resolves once the batch is stored and ``on_stored`` (its acknowledgement) has run;
    a flush that fails sets the error on every future of its group.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._queue: list[_Submitted] = []
        self._flushing: list[_Submitted] = []
        self._wake: asyncio.Event | None = None
        self._full: asyncio.Event | None = None  # the waiting batches should not wait longer
        self._queued_events = 0
        settings = runtime.settings
        self.interval_s = settings.sink_flush_interval_s
        self.full_events = max(1, settings.stream_unstored_events_max // 2)
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    def submit(
        self, kind: str, out: BatchOutput, on_stored: Callable[[], None]
    ) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        if self._error is not None:  # nothing is stored after a failed flush
            failed: asyncio.Future[None] = loop.create_future()
            failed.set_exception(self._error)
            return failed
        if self._task is None or self._task.done():
            self._wake, self._full = asyncio.Event(), asyncio.Event()
            self._task = loop.create_task(self._run(), name="finpulse.group_commit")
        item = _Submitted(
            kind, out, self.runtime.publish_early(out), on_stored, loop.create_future()
        )
        self._queue.append(item)
        self._queued_events += out.valid_count + len(out.deadletters)
        assert self._wake is not None and self._full is not None
        self._wake.set()
        if self._queued_events >= self.full_events:
            self._full.set()
        return item.done

    async def _run(self) -> None:
        assert self._wake is not None and self._full is not None
        loop = asyncio.get_running_loop()
        started = -self.interval_s
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait_s = started + self.interval_s - loop.time()
            if wait_s > 0 and not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), wait_s)
            self._full.clear()
            group, self._queue, self._queued_events = self._queue, [], 0
            if group:
                started = loop.time()
                # Synchronous with the take: the state now is that after the group's last batch.
                changelog = self.runtime.pipeline.take_changelog()
                self._flushing = group
                await self._flush(group, changelog)
                self._flushing = []

    async def _flush(self, group: list[_Submitted], changelog: list[Outgoing]) -> None:
        started = time.perf_counter()
        try:
            published = [g.published for g in group if g.published is not None]
            merged = merge_outputs([g.out for g in group])
            merged.changelog.extend(changelog)
            await self.runtime.deliver(merged, _all(published) if published else None)
            for g in group:
                g.on_stored()
                self.runtime.count(g.kind, g.out)
        except Exception as exc:  # a bug, not a down sink (sinks retry): fail the agents
            # Later batches are not stored either: their acknowledgements would commit
            # offsets past this group's events.
            self._error = exc
            for g in (*group, *self._queue):
                if not g.done.done():
                    g.done.set_exception(exc)
            self._queue, self._queued_events = [], 0
            raise
        self.runtime.record_flush(len(group), (time.perf_counter() - started) * 1000)
        for g in group:
            if not g.done.done():
                g.done.set_result(None)

    async def close(self) -> None:
        """Stop flushing; batches not yet stored are not acknowledged (they come again)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task  # a failed flush has already failed its agents
            self._task = None
        for g in (*self._flushing, *self._queue):
            g.done.cancel()
        self._flushing, self._queue, self._queued_events = [], [], 0


async def _all(jobs: Sequence[asyncio.Future[None]]) -> None:
    await asyncio.gather(*jobs)
