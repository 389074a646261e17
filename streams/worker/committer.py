"""The committer: the one path by which a processed batch becomes durable.

Every batch goes through :meth:`Committer.submit` — the live ingest agents, the notifier's
dead letters, offline runs and tests alike. Batches gather while a commit runs; the next
commit takes all of them and :meth:`Committer.commit` runs its numbered steps:

1. **rows**: the group's rows, one insert per ClickHouse table (tables in parallel), and
   the alerts and dead letters the batches started publishing when they were submitted;
2. **state**: the keyed-state changes of the group (one record per changed key, the value
   after the group's last batch, the re-delivery guard among them), published once step 1
   is durable: first as the commit log's entries, then as the tables' changelog records
   (:mod:`finpulse.streams.worker.commit_log`: a crash between the two is redone on restart);
   once acknowledged, each goes to its table's local store with the offsets it reached
   (``log_stored``, ``stored``);
3. **acknowledge**: each batch's input messages, in submission order, so offsets commit
   only past events whose rows, messages and state are all stored;
4. **count**: the worker's counters and timings.

A crash before the commit log is complete re-processes the group from the state before it;
rows and messages are idempotent (deterministic ids), so nothing is stored twice. A crash
after it finds every stage's state at the end of the group, and the guard skips the group's
re-delivered events for all of them at once.

A commit starts no sooner than ``interval_s`` after the previous one started, unless
the waiting batches hold ``full_events`` events or a caller asked for it
(``urgent=True``): the number of inserts follows neither the event rate nor the batch
rate (ClickHouse makes one part per insert, costly in server CPU even for a few rows).

>>> a, b = BatchOutput(valid_count=2), BatchOutput(valid_count=3)
>>> a.add_rows(EVENT_TABLES["transaction"], [(1,), (2,)])
>>> b.add_rows(EVENT_TABLES["transaction"], [(3,)])
>>> merged = merge_outputs([a, b])
>>> merged.valid_count, merged.rows[EVENT_TABLES["transaction"]]
(5, [(1,), (2,), (3,)])
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from finpulse.sinks.base import Sink
from finpulse.sinks.tables import DEADLETTERS_TABLE, EVENT_TABLES, Table, deadletter_row
from finpulse.streams.core.batch import BatchOutput, Outgoing
from finpulse.streams.core.topics import DEADLETTER
from finpulse.streams.worker.commit_log import log_entries

__all__ = ["EVENT_TABLES", "CommitTimings", "Committer", "merge_outputs"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Publishes messages; may answer the offset of the last one per (topic, partition).
Publisher = Callable[[Sequence[Outgoing]], Awaitable[Mapping[tuple[str, int], int] | None]]
# Told the changelog offsets a commit's state records reached (they can go to local stores).
StateStored = Callable[[Mapping[tuple[str, int], int]], None]
# Told a commit's log entries and the offsets they reached (they can go to a local store).
LogStored = Callable[[Sequence[Outgoing], Mapping[tuple[str, int], int]], None]
SinkFor = Callable[[Table], Sink]
ChangelogSource = Callable[[], list[Outgoing]]
Acknowledge = Callable[[], None]


class CommitTimings(Protocol):
    """Where the committer reports what it did (the worker's stats)."""

    def record(self, name: str, value: float) -> None: ...

    def count(self, kind: str, out: BatchOutput) -> None: ...


def deadletter_message(dl: object) -> Outgoing:
    """The ``finpulse.deadletter`` message of a dead letter (key = its stable id)."""
    payload_json = dl.model_dump_json()  # type: ignore[attr-defined]
    return Outgoing(DEADLETTER, dl.id.encode(), payload_json.encode())  # type: ignore[attr-defined]


def outgoing_messages(out: BatchOutput) -> list[Outgoing]:
    """A batch's messages to publish: its alerts, then its dead letters."""
    return [*out.messages, *(deadletter_message(d) for d in out.deadletters)]


def merge_outputs(outs: Sequence[BatchOutput]) -> BatchOutput:
    """One output holding the rows, dead letters, candidates and messages of ``outs`` in
    order (what one commit stores)."""
    merged = BatchOutput()
    for out in outs:
        for table, rows in out.rows.items():
            merged.add_rows(table, rows)
        merged.deadletters.extend(out.deadletters)
        merged.candidates.extend(out.candidates)
        merged.messages.extend(out.messages)
        merged.valid_count += out.valid_count
    return merged


@dataclass
class _Submitted:
    kind: str
    out: BatchOutput
    published: asyncio.Future[object] | None
    acknowledge: Acknowledge
    done: asyncio.Future[None]


class Committer:
    """Stores submitted batches in commits, one commit at a time (see the module text).

    ``submit`` starts publishing the batch's alerts and dead letters at once and returns a
    future that resolves once the batch is committed (steps 1-4); a commit that fails sets
    its error on every waiting future, and nothing is committed after it.
    """

    def __init__(
        self,
        sink_for: SinkFor,
        publish: Publisher,
        changelog: ChangelogSource,
        timings: CommitTimings,
        interval_s: float = 1.0,
        full_events: int = 1,
        log_topic: str | None = None,
        stored: StateStored | None = None,
        log_stored: LogStored | None = None,
    ) -> None:
        self.sink_for = sink_for
        self.stored = stored
        self.log_stored = log_stored
        self.publish = publish
        self.changelog = changelog
        self.timings = timings
        self.log_topic = log_topic  # the commit log's topic; None offline (no durable state)
        self._epoch = 0
        self.interval_s = interval_s
        self.full_events = max(1, full_events)
        self._queue: list[_Submitted] = []
        self._committing: list[_Submitted] = []
        self._queued_events = 0
        self._wake: asyncio.Event | None = None
        self._full: asyncio.Event | None = None  # the waiting batches should not wait longer
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    def submit(
        self, kind: str, out: BatchOutput, acknowledge: Acknowledge, urgent: bool = False
    ) -> asyncio.Future[None]:
        """Queue a processed batch for the next commit; ``urgent`` starts it without waiting
        for the interval (a single caller that waits for its batch, e.g. the notifier)."""
        loop = asyncio.get_running_loop()
        if self._error is not None:  # nothing is committed after a failed commit
            failed: asyncio.Future[None] = loop.create_future()
            failed.set_exception(self._error)
            return failed
        if self._task is None or self._task.done():
            self._wake, self._full = asyncio.Event(), asyncio.Event()
            self._task = loop.create_task(self._run(), name="finpulse.committer")
        item = _Submitted(kind, out, self._publish_early(out), acknowledge, loop.create_future())
        self._queue.append(item)
        self._queued_events += out.valid_count + len(out.deadletters)
        assert self._wake is not None and self._full is not None
        self._wake.set()
        if urgent or self._queued_events >= self.full_events:
            self._full.set()
        return item.done

    def _publish_early(self, out: BatchOutput) -> asyncio.Future[object] | None:
        # On-call consumers see an alert as soon as it is decided, not after the inserts;
        # step 1 still waits for the publication before the batch is acknowledged.
        messages = outgoing_messages(out)
        if not messages:
            return None
        return asyncio.ensure_future(self._timed("publish_ms", self.publish(messages)))

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
                # Taken in the same synchronous step as the group: the state after the
                # group's last batch and of no batch outside it.
                changelog = self.changelog()
                self._committing = group
                try:
                    await self.commit(group, changelog)
                except Exception as exc:  # a bug, not a down sink (sinks retry)
                    self._fail(exc, group)
                    raise
                finally:
                    self._committing = []

    async def commit(self, group: Sequence[_Submitted], changelog: Sequence[Outgoing]) -> None:
        """Steps 1-4 of the module text for one group of batches."""
        started = time.perf_counter()
        merged = merge_outputs([g.out for g in group])
        # 1. rows (one insert per table) and the early publications of alerts/dead letters
        rows = dict(merged.rows)
        if merged.deadletters:
            rows[DEADLETTERS_TABLE] = [deadletter_row(d) for d in merged.deadletters]
        jobs: list[Awaitable[object]] = [
            self._timed(f"insert_ms.{table.name}", self.sink_for(table).write(batch))
            for table, batch in rows.items()
            if batch
        ]
        jobs.extend(g.published for g in group if g.published is not None)
        await asyncio.gather(*jobs)
        # 2. state: the group's keyed-state changes, after everything they account for:
        #    the commit log first, then the tables' changelogs
        if changelog:
            if self.log_topic is not None:
                entries = log_entries(changelog, self.log_topic, self._next_epoch())
                log_offsets = await self._timed("commit_log_ms", self.publish(entries))
                if self.log_stored is not None:
                    with self._timing("log_store_ms"):  # the local store's write
                        self.log_stored(entries, log_offsets or {})
            offsets = await self._timed("changelog_ms", self.publish(changelog))
            if self.stored is not None:
                with self._timing("state_store_ms"):
                    self.stored(offsets or {})
        # 3. acknowledge, in submission order
        for g in group:
            g.acknowledge()
        # 4. count
        for g in group:
            self.timings.count(g.kind, g.out)
        self.timings.record("deliver_ms", (time.perf_counter() - started) * 1000)
        self.timings.record("flush_batches", len(group))
        for g in group:
            if not g.done.done():
                g.done.set_result(None)

    def _next_epoch(self) -> int:
        # unique and increasing across restarts: a restarted worker's clock has moved on
        self._epoch = max(self._epoch + 1, time.time_ns())
        return self._epoch

    def _fail(self, exc: BaseException, group: Sequence[_Submitted]) -> None:
        # Later batches are not committed either: their acknowledgements would commit
        # offsets past this group's events.
        self._error = exc
        for g in (*group, *self._queue):
            if not g.done.done():
                g.done.set_exception(exc)
        self._queue, self._queued_events = [], 0

    async def _timed(self, name: str, job: Awaitable[_T]) -> _T:
        with self._timing(name):
            return await job

    @contextlib.contextmanager
    def _timing(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings.record(name, (time.perf_counter() - started) * 1000)

    async def close(self) -> None:
        """Stop committing; batches not yet committed are not acknowledged (they come again)."""
        uncommitted = (*self._committing, *self._queue)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task  # a failed commit has already failed its callers
            self._task = None
        for g in uncommitted:
            g.done.cancel()
        self._committing, self._queue, self._queued_events = [], [], 0
