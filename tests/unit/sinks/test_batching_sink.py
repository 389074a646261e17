"""BatchingSink: chunking by size and wait-and-retry, never dropping rows."""

from __future__ import annotations

import asyncio

from finpulse.sinks.base import Backoff, BatchingSink, SinkUnavailable


class FlakySink(BatchingSink):
    """Fails the first ``failures`` attempts, then stores chunks in memory."""

    def __init__(self, max_rows: int, failures: int = 0) -> None:
        super().__init__(max_rows, retry_initial_s=0.001, retry_max_s=0.004)
        self.failures = failures
        self.chunks: list[list[int]] = []

    def setup(self) -> None:
        pass

    def _write_chunk(self, chunk):
        if self.failures > 0:
            self.failures -= 1
            raise SinkUnavailable("down")
        self.chunks.append(list(chunk))


def test_write_splits_into_chunks_of_max_rows():
    sink = FlakySink(max_rows=4)
    asyncio.run(sink.write(list(range(10))))
    assert sink.chunks == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_write_retries_until_the_destination_is_back():
    sink = FlakySink(max_rows=100, failures=7)
    asyncio.run(sink.write(list(range(50))))
    assert sink.retries == 7
    assert sink.chunks == [list(range(50))]


def test_write_blocks_while_the_destination_is_down():
    sink = FlakySink(max_rows=100, failures=10**9)

    async def scenario():
        task = asyncio.create_task(sink.write([1, 2, 3]))
        done, _ = await asyncio.wait({task}, timeout=0.2)
        assert not done  # backpressure: the caller waits, the rows are not dropped
        sink.failures = 0
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())
    assert sink.chunks == [[1, 2, 3]]
    assert sink.retries > 3


def test_retry_after_hint_is_honoured():
    class Hinted(FlakySink):
        def _write_chunk(self, chunk):
            if self.failures > 0:
                self.failures -= 1
                raise SinkUnavailable("throttled", retry_after=0.0)
            self.chunks.append(list(chunk))

    sink = Hinted(max_rows=10, failures=3)
    asyncio.run(sink.write([1]))
    assert sink.retries == 3


def test_backoff_is_capped():
    b = Backoff(0.1, 0.5)
    assert [b.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
