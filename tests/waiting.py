"""The one way tests wait: poll a condition until a deadline, never sleep and hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    fn: Callable[[], T], timeout_s: float = 30.0, what: str = "condition", interval_s: float = 0.1
) -> T:
    """Return ``fn()`` once truthy; raise ``AssertionError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: T = fn()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}: {last!r}")
        time.sleep(interval_s)  # poll interval inside a deadline wait
        last = fn()
    return last


async def wait_until(
    fn: Callable[[], T], timeout_s: float = 5.0, what: str = "condition", interval_s: float = 0.001
) -> T:
    """:func:`wait_for` inside an event loop: other tasks run while it polls."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    last: T = fn()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}: {last!r}")
        await asyncio.sleep(interval_s)  # poll interval inside a deadline wait
        last = fn()
    return last
