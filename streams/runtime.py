"""Delivers a batch's results: rows to ClickHouse, dead letters and alerts to topics.

``Runtime.handle`` returns only after every row is stored and every message is
acknowledged by the broker; the agent acknowledges its offsets after that, which
makes delivery at-least-once. Re-deliveries are absorbed by idempotent writes.

The batch's state changes (changelog records) are published last, once its rows and
messages are stored: a crash before that restores the state as it was before the batch
and re-processes it; a crash after it finds the batch's results stored, and the stages
skip the re-delivered events by offset. Either way the state counts each event once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from config.settings import Settings
from sinks.base import Sink
from sinks.clickhouse import ClickHouseSink
from sinks.tables import DEADLETTERS_TABLE, EVENT_TABLES, Table, deadletter_row
from streams.decode import RawRecord
from streams.gc_pauses import GcPauses
from streams.group_commit import GroupCommit
from streams.pipeline import BatchOutput, Outgoing, Pipeline
from streams.topics import ALERTS, DEADLETTER

log = logging.getLogger(__name__)

Publisher = Callable[[Sequence[Outgoing]], Awaitable[None]]


def deadletter_message(dl: object) -> Outgoing:
    """The ``finpulse.deadletter`` message of a dead letter (key = its stable id)."""
    payload = dl.model_dump(mode="json")  # type: ignore[attr-defined]
    return Outgoing(DEADLETTER, payload["id"].encode(), json.dumps(payload).encode())


# The latest batches kept per timing: sorting them for stats (every second) stalls the loop,
# ~20 ms for 30 timings of 5,000, ~3 ms at 1,000.
TIMING_WINDOW = 1000


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max of ``values`` (rounded), empty without values.

    >>> _quantiles([1.0, 2.0, 3.0, 4.0])
    {'p50': 3.0, 'p99': 4.0, 'max': 4.0, 'n': 4}
    """
    if not values:
        return {}
    v = sorted(values)
    return {
        "p50": round(v[len(v) // 2], 2),
        "p99": round(v[min(len(v) - 1, int(len(v) * 0.99))], 2),
        "max": round(v[-1], 2),
        "n": len(v),
    }


class Runtime:
    """Owns the pipeline and the sinks of one worker."""

    def __init__(
        self,
        settings: Settings,
        publish: Publisher,
        sinks: dict[str, Sink] | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline or Pipeline(settings)
        self.publish = publish
        self.sinks: dict[str, Sink] = (
            sinks
            if sinks is not None
            else {
                t.name: ClickHouseSink(settings, t.name, t.columns, t.id_column)
                for t in (*EVENT_TABLES.values(), DEADLETTERS_TABLE)
            }
        )
        self._started = False
        self.processed = 0
        self.deadlettered = 0
        self.alerts_published = 0
        self.notified = 0
        self.notify_failed = 0
        # The latest batches' timings for stats: where a batch's latency goes (processing,
        # each table's insert, publishing, the changelog).
        self.timings: dict[str, deque[float]] = {}
        # The live agents store their batches through this (one flush at a time).
        self.group_commit = GroupCommit(self)
        self.gc_pauses: GcPauses | None = None  # the live worker records collector pauses

    def setup(self) -> None:
        if not self._started:
            for table in (*EVENT_TABLES.values(), DEADLETTERS_TABLE):
                self.sink_for(table)
            self._started = True

    def sink_for(self, table: Table) -> Sink:
        """The sink of ``table``, created (and set up) on first use."""
        sink = self.sinks.get(table.name)
        if sink is None:
            sink = ClickHouseSink(self.settings, table.name, table.columns, table.id_column)
            sink.setup()
            self.sinks[table.name] = sink
        return sink

    async def handle(self, kind: str, records: Sequence[RawRecord]) -> BatchOutput:
        """Process one batch and deliver all of its results before returning."""
        out = self.process(kind, records)
        await self.complete(kind, out)
        return out

    def process(self, kind: str, records: Sequence[RawRecord]) -> BatchOutput:
        """Run the pipeline on one batch (CPU only: no I/O until :meth:`complete`)."""
        self.setup()
        started = time.perf_counter()
        out = self.pipeline.process(kind, records)
        self._timing("process_ms").append((time.perf_counter() - started) * 1000)
        self._timing("batch_events").append(len(records))
        return out

    def publish_early(self, out: BatchOutput) -> asyncio.Future[None] | None:
        """Start publishing a processed batch's alerts and dead-letter messages now.

        On-call consumers see an alert as soon as it is decided, without waiting for the
        previous batch's inserts; :meth:`complete` still waits for the publication before
        the batch is acknowledged.
        """
        messages = self._messages(out)
        if not messages:
            return None
        return asyncio.ensure_future(self._timed("publish_ms", self.publish(messages)))

    async def complete(
        self, kind: str, out: BatchOutput, published: Awaitable[None] | None = None
    ) -> None:
        """Deliver a processed batch (rows, dead letters, messages), then count it.

        ``published`` is the batch's :meth:`publish_early`, if it was started.
        """
        started = time.perf_counter()
        await self.deliver(out, published)
        self._timing("deliver_ms").append((time.perf_counter() - started) * 1000)
        self.count(kind, out)

    def count(self, kind: str, out: BatchOutput) -> None:
        """Count a delivered batch (and log its dead letters)."""
        self.processed += out.valid_count
        self.deadlettered += len(out.deadletters)
        self.alerts_published += sum(m.topic == ALERTS for m in out.messages)
        if out.deadletters:
            log.info(
                "%d dead letters from %s, e.g. %s: %s",
                len(out.deadletters),
                kind,
                out.deadletters[0].error_type,
                out.deadletters[0].error[:200],
            )

    def note_arrival(self, produced_at_s: float) -> None:
        """Note how old a batch's oldest event is when processing starts (its record
        timestamp, set by the producer, to now): the broker's and the batching's share of
        the latency."""
        self._timing("oldest_event_age_ms").append((time.time() - produced_at_s) * 1000)

    def record_flush(self, batches: int, elapsed_ms: float) -> None:
        """Note one group-commit flush: how many batches it stored, how long it took."""
        self._timing("deliver_ms").append(elapsed_ms)
        self._timing("flush_batches").append(batches)

    async def deliver(self, out: BatchOutput, published: Awaitable[None] | None = None) -> None:
        """Store the rows and publish the messages (or await ``published``), then the changelog."""
        rows = dict(out.rows)
        if out.deadletters:
            rows[DEADLETTERS_TABLE] = [deadletter_row(d) for d in out.deadletters]
        jobs: list[Awaitable[None]] = [
            self._timed(f"insert_ms.{table.name}", self.sink_for(table).write(batch))
            for table, batch in rows.items()
            if batch
        ]
        if published is not None:
            jobs.append(published)
        elif messages := self._messages(out):
            jobs.append(self._timed("publish_ms", self.publish(messages)))
        await asyncio.gather(*jobs)
        if out.changelog:
            await self._timed("changelog_ms", self.publish(out.changelog))

    @staticmethod
    def _messages(out: BatchOutput) -> list[Outgoing]:
        return [*out.messages, *(deadletter_message(d) for d in out.deadletters)]

    async def _timed(self, name: str, job: Awaitable[None]) -> None:
        started = time.perf_counter()
        await job
        self._timing(name).append((time.perf_counter() - started) * 1000)

    def _timing(self, name: str) -> deque[float]:
        if name not in self.timings:
            self.timings[name] = deque(maxlen=TIMING_WINDOW)
        return self.timings[name]

    def stats(self) -> dict[str, object]:
        """Counters of this worker since it started (re-deliveries count again)."""
        retries = sum(getattr(s, "retries", 0) for s in self.sinks.values())
        return {
            "processed": self.processed,
            "deadletters": self.deadlettered,
            "sink_retries": retries,
            "alerts_published": self.alerts_published,
            "notified": self.notified,
            "notify_failed": self.notify_failed,
            "counts": dict(self.pipeline.counts),
            "batches": {k: _quantiles(v) for k, v in self.timings.items()},
            "insert_round_trip_ms": {
                name: _quantiles(trips)
                for name, sink in self.sinks.items()
                if (trips := getattr(sink, "round_trips_ms", None))
            },
            "gc_pause_ms": {f"gen{g}": _quantiles(v) for g, v in self.gc_pauses.ms.items() if v}
            if self.gc_pauses is not None
            else {},
        }

    def write_stats(self, path: Path) -> None:
        """Write :meth:`stats` as JSON atomically (tmp file + rename)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self.stats(), "pid": os.getpid(), "at": time.time()}))
        os.replace(tmp, path)

    async def close(self) -> None:
        await self.group_commit.close()
        if self.gc_pauses is not None:
            self.gc_pauses.uninstall()
        for sink in self.sinks.values():
            await sink.flush()
            await sink.close()
