"""Pauses of the cyclic garbage collector, per generation, for the worker's stats.

A worker holds per-customer state as many small long-lived containers; a full (generation 2)
collection walks all of them with the event loop stopped, which shows up in the latency
tail. ``GcPauses`` records every collection's duration through ``gc.callbacks``.

>>> import gc
>>> pauses = GcPauses().install()
>>> _ = gc.collect()
>>> len(pauses.ms[2]) >= 1
True
>>> pauses.uninstall()
"""

from __future__ import annotations

import gc
import time
from collections import deque
from typing import Any

WINDOW = 2000


class GcPauses:
    """Durations (ms) of the latest collections of each generation (``ms[0..2]``)."""

    def __init__(self) -> None:
        self.ms: dict[int, deque[float]] = {g: deque(maxlen=WINDOW) for g in range(3)}
        self._started = 0.0

    def install(self) -> GcPauses:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.ms[info["generation"]].append((time.perf_counter() - self._started) * 1000)
