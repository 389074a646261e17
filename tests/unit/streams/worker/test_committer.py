"""Committer: batches gathered during a flush are stored together, in order, before
their changelog and their acknowledgement."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from finpulse.config.settings import Settings
from finpulse.sinks.base import Sink
from finpulse.sinks.tables import DEADLETTERS_TABLE, EVENT_TABLES, TRANSACTIONS_TABLE
from finpulse.streams.core.batch import BatchOutput, KeyedState, Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state_codec import encode
from finpulse.streams.worker.app import default_stages
from finpulse.streams.worker.pipeline import Pipeline
from finpulse.streams.worker.runtime import Runtime
from finpulse.streams.worker.table_state import FaustTableState
from tests.waiting import wait_until

CHANGELOG = "finpulse-state-changelog"


class GatedSink(Sink):
    """Records each write; a write waits for ``gate`` (a slow insert) and logs to ``log``."""

    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.writes: list[list[Any]] = []
        self.waiting = 0  # writes that reached the gate
        self.gate = asyncio.Event()
        self.gate.set()
        self.log = log
        self.fail = fail

    def setup(self) -> None:
        pass

    async def write(self, batch: Sequence[Any]) -> None:
        self.waiting += 1
        await self.gate.wait()
        if self.fail:
            raise ValueError("a bug in a row builder")
        self.writes.append(list(batch))
        self.log.append(f"rows {len(batch)}")


def make_runtime(
    log: list[str],
    fail: bool = False,
    settings: Settings | None = None,
    pipeline: Pipeline | None = None,
) -> tuple[Runtime, GatedSink, list[Outgoing]]:
    published: list[Outgoing] = []

    async def publish(messages: Sequence[Outgoing]) -> None:
        published.extend(messages)
        log.append(f"publish {','.join(m.topic for m in messages)}")

    sink = GatedSink(log, fail)
    sinks: dict[str, Sink] = {t.name: GatedSink(log) for t in EVENT_TABLES.values()}
    sinks[DEADLETTERS_TABLE.name] = GatedSink(log)
    sinks[TRANSACTIONS_TABLE.name] = sink
    settings = settings or Settings()
    custom_pipeline = pipeline is not None
    pipeline = pipeline or Pipeline(settings, default_stages)
    runtime = Runtime(settings, publish, pipeline, sinks=sinks)
    if not custom_pipeline:
        _changed.clear()
        runtime.committer.changelog = _take_changelog
    return runtime, sink, published


# The keyed-state changes of the batches processed since the last commit took them.
_changed: dict[bytes, bytes] = {}


def _take_changelog() -> list[Outgoing]:
    records = [Outgoing(CHANGELOG, k, v, 0) for k, v in _changed.items()]
    _changed.clear()
    return records


def batch(first_row: int, n: int, changed: dict[bytes, bytes]) -> BatchOutput:
    """A processed batch of ``n`` rows that changed the keys of ``changed``."""
    out = BatchOutput(valid_count=n)
    out.add_rows(TRANSACTIONS_TABLE, [(f"e{i}",) for i in range(first_row, first_row + n)])
    _changed.update(changed)
    return out


def test_batches_submitted_during_a_flush_are_stored_with_one_insert_in_order():
    async def scenario() -> None:
        log: list[str] = []
        runtime, sink, published = make_runtime(log)
        acked: list[int] = []
        sink.gate.clear()  # the first flush hangs in its insert
        first = runtime.committer.submit(
            "transaction", batch(0, 2, {b"a": b"1"}), lambda: acked.append(1)
        )
        await wait_until(lambda: sink.waiting == 1, what="the first flush's insert")
        later = [
            runtime.committer.submit(
                "transaction", batch(2 + 3 * i, 3, {b"a": b"%d" % (i + 2), b"b": b"x"}),
                lambda i=i: acked.append(i + 2),
            )
            for i in range(3)
        ]  # fmt: skip
        assert acked == [] and not first.done()  # nothing acknowledged before it is stored
        sink.gate.set()
        await asyncio.gather(first, *later)

        assert [len(w) for w in sink.writes] == [2, 9]  # the three later batches: one insert
        assert [r[0] for w in sink.writes for r in w] == [f"e{i}" for i in range(11)]
        assert acked == [1, 2, 3, 4]
        changelog = [(m.key, m.value) for m in published if m.topic == CHANGELOG]
        # The second flush publishes each key once, with its newest value.
        assert changelog == [(b"a", b"1"), (b"a", b"4"), (b"b", b"x")]
        assert log == [
            "rows 2",
            f"publish {CHANGELOG}",
            "rows 9",
            f"publish {CHANGELOG},{CHANGELOG}",
        ]
        assert runtime.processed == 11
        assert runtime.stats()["batches"]["flush_batches"]["max"] == 3
        await runtime.close()

    asyncio.run(scenario())


def test_alerts_are_published_before_the_flush_stores_the_rows():
    async def scenario() -> None:
        log: list[str] = []
        runtime, sink, _ = make_runtime(log)
        sink.gate.clear()
        out = batch(0, 1, {})
        out.messages.append(Outgoing("finpulse.alerts", b"k", b"{}"))
        done = runtime.committer.submit("transaction", out, lambda: log.append("ack"))
        await wait_until(lambda: sink.waiting == 1, what="the flush's insert")
        assert log == ["publish finpulse.alerts"]
        sink.gate.set()
        await done
        assert log == ["publish finpulse.alerts", "rows 1", "ack"]
        assert runtime.alerts_published == 1
        await runtime.close()

    asyncio.run(scenario())


def test_a_failed_flush_fails_its_batches_and_every_later_one_unacknowledged():
    async def scenario() -> None:
        log: list[str] = []
        runtime, _, published = make_runtime(log, fail=True)
        acked: list[int] = []
        done = runtime.committer.submit(
            "transaction", batch(0, 1, {b"a": b"1"}), lambda: acked.append(1)
        )
        with pytest.raises(ValueError, match="row builder"):
            await done
        after = runtime.committer.submit("transaction", batch(1, 1, {}), lambda: acked.append(2))
        with pytest.raises(ValueError):
            await after
        assert acked == [] and published == []  # no changelog, no acknowledgement
        await runtime.close()

    asyncio.run(scenario())


def test_close_leaves_unstored_batches_unacknowledged():
    async def scenario() -> None:
        log: list[str] = []
        runtime, sink, _ = make_runtime(log)
        sink.gate.clear()
        acked: list[int] = []
        done = runtime.committer.submit("transaction", batch(0, 1, {}), lambda: acked.append(1))
        queued = runtime.committer.submit("transaction", batch(1, 1, {}), lambda: acked.append(2))
        await wait_until(lambda: sink.waiting == 1, what="the flush's insert")
        await runtime.committer.close()
        assert acked == [] and sink.writes == []
        assert queued.cancelled()
        assert done.cancelled()

    asyncio.run(scenario())


def test_a_flush_waits_for_the_interval_unless_half_the_backpressure_limit_waits():
    async def scenario() -> None:
        log: list[str] = []
        settings = Settings(sink_flush_interval_s=0.3, stream_unstored_events_max=8)
        runtime, sink, _ = make_runtime(log, settings=settings)
        loop = asyncio.get_running_loop()
        starts: list[float] = []
        write = sink.write

        async def timed_write(rows: Sequence[Any]) -> None:
            starts.append(loop.time())
            await write(rows)

        sink.write = timed_write  # type: ignore[method-assign]
        commit = runtime.committer
        await commit.submit("transaction", batch(0, 1, {}), lambda: None)
        await commit.submit("transaction", batch(1, 1, {}), lambda: None)  # 1 < 4 events
        assert starts[1] - starts[0] >= 0.3  # it waited for the interval

        commit.interval_s = 30.0  # the next flush would wait this long...
        await asyncio.wait_for(
            commit.submit("transaction", batch(2, 4, {}), lambda: None), 10.0
        )  # ...but 4 events are half the limit of 8: it starts at once
        assert [len(w) for w in sink.writes] == [1, 1, 4]
        await runtime.close()

    asyncio.run(scenario())


def test_the_deferred_changelog_is_taken_with_its_group_one_record_per_key():
    def fake_table(name: str) -> Any:
        return SimpleNamespace(
            name=name,
            data=SimpleNamespace(data={}, _key_partition={}),
            changelog_topic=SimpleNamespace(get_topic_name=lambda: CHANGELOG),
        )

    states: dict[str, KeyedState] = {}

    def stages(settings: Settings, make: Any) -> list[Any]:
        states["customers"] = make("customers")
        return []

    pipeline = Pipeline(
        Settings(),
        stages=stages,
        state=lambda name, value_type=Any: FaustTableState(fake_table(name)),
    )
    state = states["customers"]
    raw = RawRecord("finpulse.transactions", 0, 0, b"{}")

    async def scenario() -> None:
        log: list[str] = []
        runtime, sink, published = make_runtime(
            log, settings=Settings(sink_flush_interval_s=0), pipeline=pipeline
        )
        commit = runtime.committer
        sink.gate.clear()
        state.put("c-1", {"n": 1}, raw)
        first = commit.submit("transaction", batch(0, 1, {}), lambda: None)
        await wait_until(lambda: sink.waiting == 1, what="the first flush's insert")
        state.put("c-1", {"n": 2}, raw)
        state.put("c-2", {"n": 1}, raw)
        second = commit.submit("transaction", batch(1, 1, {}), lambda: None)
        state.put("c-1", {"n": 3}, raw)
        third = commit.submit("transaction", batch(2, 1, {}), lambda: None)
        sink.gate.set()
        await asyncio.gather(first, second, third)
        changelog = [(m.key, m.value) for m in published if m.topic == CHANGELOG]
        assert changelog == [
            (b'"c-1"', encode({"n": 1})),  # the first flush: the state after its only batch
            (b'"c-1"', encode({"n": 3})),  # the second: each key once, as after its last batch
            (b'"c-2"', encode({"n": 1})),
        ]
        assert runtime.stats()["state_moved_keys"] == {}
        state.put("c-2", {"n": 2}, RawRecord("finpulse.transactions", 1, 0, b"{}"))
        await commit.submit("transaction", batch(3, 1, {}), lambda: None)
        assert runtime.stats()["state_moved_keys"] == {"customers": 1}  # c-2: 0, then 1
        await runtime.close()

    asyncio.run(scenario())


def test_the_log_entries_then_the_changelog_go_to_local_stores_once_acknowledged():
    """``log_stored`` gets the commit's log entries with the offsets the broker answered,
    before the changelog is published; ``stored`` the changelog's offsets after it."""
    log: list[str] = []

    async def publish(messages: Sequence[Outgoing]) -> dict[tuple[str, int], int]:
        log.append(f"publish {messages[0].topic}")
        return {(messages[0].topic, 0): len(log)}

    async def scenario() -> None:
        settings = Settings(sink_flush_interval_s=0)
        runtime = Runtime(
            settings,
            publish,
            Pipeline(settings, default_stages),
            sinks={t.name: GatedSink(log) for t in (*EVENT_TABLES.values(), DEADLETTERS_TABLE)},
            commit_log_topic="log",
            log_stored=lambda entries, offsets: log.append(
                f"log stored {[e.key for e in entries]} {dict(offsets)}"
            ),
        )
        runtime.committer.changelog = _take_changelog
        runtime.committer.stored = lambda offsets: log.append(f"stored {dict(offsets)}")
        _changed.clear()
        await runtime.committer.submit("transaction", batch(0, 1, {b'"c1"': b"v"}), lambda: None)
        await runtime.close()

    asyncio.run(scenario())
    assert log[-4:] == [
        "publish log",
        "log stored [b'0:0'] {('log', 0): 2}",
        f"publish {CHANGELOG}",
        f"stored {{('{CHANGELOG}', 0): 4}}",
    ]
