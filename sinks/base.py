"""The contract every sink follows: ``setup()``, ``write(batch)``, ``flush()``, ``close()``.

A sink that cannot write raises :class:`SinkUnavailable` (retryable, with a
``retry_after`` hint) from its low-level ``_store`` (async) or ``_write_chunk`` (blocking,
run in a thread); :class:`BatchingSink`
turns that into wait-and-retry with capped exponential backoff, so callers see a
slow ``write`` (backpressure), never a dropped batch.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


class SinkUnavailable(Exception):
    """The destination is down or refused the write; the same write may succeed later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Backoff:
    """Capped exponential backoff delays.

    >>> b = Backoff(initial=0.5, maximum=2.0)
    >>> [b.next() for _ in range(4)]
    [0.5, 1.0, 2.0, 2.0]
    >>> b.reset(); b.next()
    0.5
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum = initial, maximum
        self._current = initial

    def next(self) -> float:
        delay = self._current
        self._current = min(self._current * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._current = self.initial


class Sink(ABC):
    """A destination for rows. Constructors store settings only; ``setup`` connects."""

    @abstractmethod
    def setup(self) -> None: ...

    @abstractmethod
    async def write(self, batch: Sequence[Any]) -> None: ...

    async def flush(self) -> None:  # noqa: B027 - optional hook
        """Write anything buffered; sinks that write through have nothing to do."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class BatchingSink(Sink):
    """Splits a batch into chunks of ``max_rows`` and writes each until it succeeds.

    ``write`` returns only when every row is stored, which is what lets the stream
    acknowledge (commit) its offsets afterwards: at-least-once delivery.
    """

    def __init__(self, max_rows: int, retry_initial_s: float, retry_max_s: float) -> None:
        self.max_rows = max_rows
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.retries = 0  # total failed attempts, exposed for metrics and tests

    def _write_chunk(self, chunk: Sequence[Any]) -> None:
        """Write one chunk synchronously; raise :class:`SinkUnavailable` on failure."""
        raise NotImplementedError

    async def _store(self, chunk: Sequence[Any]) -> None:
        """Write one chunk: by default ``_write_chunk`` in a thread; async sinks override."""
        await asyncio.to_thread(self._write_chunk, chunk)

    async def write(self, batch: Sequence[Any]) -> None:
        for start in range(0, len(batch), self.max_rows):
            await self._write_with_retry(batch[start : start + self.max_rows])

    async def _write_with_retry(self, chunk: Sequence[Any]) -> None:
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        while True:
            try:
                await self._store(chunk)
                return
            except SinkUnavailable as exc:
                self.retries += 1
                delay = exc.retry_after if exc.retry_after is not None else backoff.next()
                log.warning(
                    "%s unavailable (%s); retrying %d rows in %.1fs",
                    type(self).__name__,
                    exc,
                    len(chunk),
                    delay,
                )
                await asyncio.sleep(delay)
