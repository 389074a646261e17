"""One worker's runtime: its pipeline, its sinks, its committer and its figures.

``Runtime.process`` runs the pipeline on a batch (CPU only); the batch then goes through
the worker's one :class:`~finpulse.streams.worker.committer.Committer`, which stores rows and
messages, then the state, then acknowledges the input (at-least-once; re-deliveries are
absorbed by idempotent writes and the state's re-delivery guard).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from finpulse.config.settings import Settings
from finpulse.sinks.base import Sink
from finpulse.sinks.clickhouse import ClickHouseSink
from finpulse.sinks.tables import DEADLETTERS_TABLE, EVENT_TABLES, Table
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.quantiles import summary
from finpulse.streams.core.topics import ALERTS
from finpulse.streams.worker.committer import Committer, LogStored, Publisher
from finpulse.streams.worker.gc_pauses import GcPauses
from finpulse.streams.worker.pipeline import Pipeline
from finpulse.streams.worker.startup import StartupClock

log = logging.getLogger(__name__)

# The latest batches kept per timing: sorting them for stats (every second) stalls the loop,
# the longer the more are kept (docs/benchmarks.md).
TIMING_WINDOW = 1000
CATCH_UP_WAIT_S = 60.0


class Runtime:
    """Owns the pipeline, the sinks and the committer of one worker."""

    def __init__(
        self,
        settings: Settings,
        publish: Publisher,
        pipeline: Pipeline,
        sinks: dict[str, Sink] | None = None,
        commit_log_topic: str | None = None,
        log_stored: LogStored | None = None,
        startup: StartupClock | None = None,
    ) -> None:
        self.settings = settings
        self.startup = startup or StartupClock()
        self.pipeline = pipeline
        self.publish = publish
        self.sinks: dict[str, Sink] = {} if sinks is None else sinks
        self.processed = 0
        self.deadlettered = 0
        self.alerts_published = 0
        self.notified = 0
        self.notify_failed = 0
        # holes after the applied offset (finpulse.streams.worker.contiguity): questions to
        # the broker, holes passed over, partitions read again, stale answers asked again
        self.holes: Counter[str] = Counter()
        # The latest batches' timings for stats: where a batch's latency goes (processing,
        # each table's insert, publishing, the changelog).
        self.timings: dict[str, deque[float]] = {}
        self.committer = Committer(
            self.sink_for,
            publish,
            pipeline.take_changelog,
            self,
            interval_s=settings.sink_flush_interval_s,
            full_events=settings.stream_unstored_events_max // 2,
            log_topic=commit_log_topic,
            stored=pipeline.state_stored,
            log_stored=log_stored,
        )
        self.gc_pauses: GcPauses | None = None  # the live worker records collector pauses
        self._restored: asyncio.Future[None] | None = None
        self.restore_retries = 0
        # waited for (each up to CATCH_UP_WAIT_S) after the restore, before the first batch
        self.catch_ups: list[Callable[[], Awaitable[object]]] = []
        # per learning stream: what its feed lost or passed over (learning_feed.py)
        self.learning_losses: dict[str, Mapping[str, int]] = {}
        self._ready: asyncio.Future[None] | None = None
        # the last table recovery: reading the changelogs, then redoing the last commit
        self.recovery_s = 0.0

    def setup(self) -> None:
        """Create (and set up) every table's sink: connections are made here, not at init."""
        for table in (*EVENT_TABLES.values(), DEADLETTERS_TABLE):
            self.sink_for(table)

    def sink_for(self, table: Table) -> Sink:
        """The sink of ``table``, created (and set up) on first use."""
        sink = self.sinks.get(table.name)
        if sink is None:
            sink = ClickHouseSink(self.settings, table.name, table.columns, table.id_column)
            sink.setup()
            self.sinks[table.name] = sink
        return sink

    async def handle(self, kind: str, records: Sequence[RawRecord]) -> BatchOutput:
        """Process one batch and commit it at once (offline runs and tests)."""
        out = self.process(kind, records)
        await self.committer.submit(kind, out, acknowledge=lambda: None, urgent=True)
        return out

    async def restore_models(self) -> None:
        """Restore the stages' models once, off the event loop, before the first batch; while
        the checkpoint store (ClickHouse) cannot be read, wait and retry, as a down sink does.
        Concurrent callers (the ingest agents) wait for the same restore."""
        if self._restored is None:
            self._restored = asyncio.ensure_future(self._restore_with_retries())
        await asyncio.shield(self._restored)

    async def ready(self) -> None:
        """Wait, once, before the first batch: the models restored, then learned up to the
        end of their learning streams (:mod:`finpulse.streams.worker.learning_feed`); a feed
        that cannot catch up within ``CATCH_UP_WAIT_S`` is logged and not waited for."""
        if self._ready is None:
            self._ready = asyncio.ensure_future(self._restore_and_catch_up())
        await asyncio.shield(self._ready)

    async def _restore_and_catch_up(self) -> None:
        await self.restore_models()
        self.startup.mark("models_restored")
        for catch_up in self.catch_ups:
            try:
                await asyncio.wait_for(catch_up(), CATCH_UP_WAIT_S)
            except TimeoutError:
                log.warning(
                    "a learning stream was not learned to its end in %.0f s; scoring starts "
                    "with the model as it is",
                    CATCH_UP_WAIT_S,
                )
        self.startup.mark("learning_caught_up")

    async def _restore_with_retries(self) -> None:
        delay_s = 0.5
        while True:
            try:
                await asyncio.to_thread(self.pipeline.restore_models)
                return
            except Exception as exc:  # the store is unreachable: no batch before the models
                self.restore_retries += 1
                log.warning("cannot restore the model checkpoints yet (%s); retrying", exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self.settings.sink_retry_max_s)

    def process(self, kind: str, records: Sequence[RawRecord]) -> BatchOutput:
        """Run the pipeline on one batch (CPU only: the committer does the I/O)."""
        self.startup.mark("first_batch")
        started = time.perf_counter()
        out = self.pipeline.process(kind, records)
        self.record("process_ms", (time.perf_counter() - started) * 1000)
        self.record("batch_events", len(records))
        return out

    def count(self, kind: str, out: BatchOutput) -> None:
        """Count a committed batch (and log its dead letters); ``processed`` counts input
        events only, not the worker's own channel minutes."""
        if kind in EVENT_TABLES:
            self.processed += out.valid_count
            if out.valid_count or out.deadletters:
                self.startup.mark("first_commit")
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
        self.record("oldest_event_age_ms", (time.time() - produced_at_s) * 1000)

    def record(self, name: str, value: float) -> None:
        """Keep ``value`` among the latest ``TIMING_WINDOW`` of timing ``name``."""
        if name not in self.timings:
            self.timings[name] = deque(maxlen=TIMING_WINDOW)
        self.timings[name].append(value)

    def stats(self) -> dict[str, object]:
        """Counters of this worker since it started (re-deliveries count again)."""
        retries = sum(getattr(s, "retries", 0) for s in self.sinks.values())
        return {
            "processed": self.processed,
            "deadletters": self.deadlettered,
            "sink_retries": retries,
            "restore_retries": self.restore_retries,
            "recovery_s": self.recovery_s,
            # seconds from the process start to each start-up milestone (.startup)
            "startup_phases_s": dict(self.startup.phases),
            "alerts_published": self.alerts_published,
            "alerts_silenced": sum(getattr(s, "silenced", 0) for s in self.pipeline.stages),
            "silences": sum(len(getattr(s, "silences", ())) for s in self.pipeline.stages),
            "notified": self.notified,
            "notify_failed": self.notify_failed,
            "holes": dict(self.holes),
            "counts": dict(self.pipeline.counts),
            # per table: writes of a key on a second partition (a key must stay on one)
            "state_moved_keys": {
                st.name: n for st in self.pipeline.states if (n := getattr(st, "moved_keys", 0))
            },
            # each stage's own counters (e.g. model_health: detections raised, copies dropped)
            "stages": {
                s.name: dict(c) for s in self.pipeline.stages if (c := getattr(s, "counts", None))
            },
            # per learning stream: the next offset this worker's model learns, its digest,
            # and what the stream no longer held or could not be learned
            "learned": {
                t: {
                    "to": s.learning_offset(),
                    "digest": s.learned_digest(),
                    **self.learning_losses.get(t, {}),
                }
                for t, s in self.pipeline.learners.items()
            },
            "batches": {k: summary(v) for k, v in self.timings.items()},
            "insert_round_trip_ms": {
                name: summary(trips)
                for name, sink in self.sinks.items()
                if (trips := getattr(sink, "round_trips_ms", None))
            },
            "gc_pause_ms": {f"gen{g}": summary(v) for g, v in self.gc_pauses.ms.items() if v}
            if self.gc_pauses is not None
            else {},
        }

    def write_stats(self, path: Path) -> None:
        """Write :meth:`stats` as JSON atomically (tmp file + rename)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self.stats(), "pid": os.getpid(), "at": time.time()}))
        os.replace(tmp, path)

    async def close(self) -> None:
        await self.committer.close()
        if self.gc_pauses is not None:
            self.gc_pauses.uninstall()
        for sink in self.sinks.values():
            await sink.flush()
            await sink.close()
