"""GroupCommit: batches gathered during a flush are stored together, in order, before
their changelog and their acknowledgement."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from config.settings import Settings
from sinks.base import Sink
from sinks.tables import DEADLETTERS_TABLE, EVENT_TABLES, TRANSACTIONS_TABLE
from streams.pipeline import BatchOutput, Outgoing
from streams.runtime import Runtime
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


def make_runtime(log: list[str], fail: bool = False) -> tuple[Runtime, GatedSink, list[Outgoing]]:
    published: list[Outgoing] = []

    async def publish(messages: Sequence[Outgoing]) -> None:
        published.extend(messages)
        log.append(f"publish {','.join(m.topic for m in messages)}")

    sink = GatedSink(log, fail)
    sinks: dict[str, Sink] = {t.name: GatedSink(log) for t in EVENT_TABLES.values()}
    sinks[DEADLETTERS_TABLE.name] = GatedSink(log)
    sinks[TRANSACTIONS_TABLE.name] = sink
    return Runtime(Settings(), publish, sinks=sinks), sink, published


def batch(first_row: int, n: int, changed: dict[bytes, bytes]) -> BatchOutput:
    out = BatchOutput(valid_count=n)
    out.add_rows(TRANSACTIONS_TABLE, [(f"e{i}",) for i in range(first_row, first_row + n)])
    out.changelog = [Outgoing(CHANGELOG, k, v, 0) for k, v in changed.items()]
    return out


def test_batches_submitted_during_a_flush_are_stored_with_one_insert_in_order():
    async def scenario() -> None:
        log: list[str] = []
        runtime, sink, published = make_runtime(log)
        acked: list[int] = []
        sink.gate.clear()  # the first flush hangs in its insert
        first = runtime.group_commit.submit(
            "transaction", batch(0, 2, {b"a": b"1"}), lambda: acked.append(1)
        )
        await wait_until(lambda: sink.waiting == 1, what="the first flush's insert")
        later = [
            runtime.group_commit.submit(
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
        done = runtime.group_commit.submit("transaction", out, lambda: log.append("ack"))
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
        done = runtime.group_commit.submit(
            "transaction", batch(0, 1, {b"a": b"1"}), lambda: acked.append(1)
        )
        with pytest.raises(ValueError, match="row builder"):
            await done
        after = runtime.group_commit.submit("transaction", batch(1, 1, {}), lambda: acked.append(2))
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
        done = runtime.group_commit.submit("transaction", batch(0, 1, {}), lambda: acked.append(1))
        queued = runtime.group_commit.submit(
            "transaction", batch(1, 1, {}), lambda: acked.append(2)
        )
        await wait_until(lambda: sink.waiting == 1, what="the flush's insert")
        await runtime.group_commit.close()
        assert acked == [] and sink.writes == []
        assert queued.cancelled()
        assert done.cancelled()

    asyncio.run(scenario())
