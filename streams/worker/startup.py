"""Where a worker's start goes: the seconds from the process start to each start-up
milestone, in the stats file (``startup_phases_s``) and the log.

The milestones, in the order a restart passes them (``models_restored`` runs beside the
Faust start and the recovery, so it may come earlier):

| milestone | reached when |
|---|---|
| ``settings_read`` | the command line has read its settings (interpreter start, first imports) |
| ``imported`` | the worker's modules are imported (Faust, River, pandas, SciPy, ...) |
| ``app_built`` | the app, its stages and models are built |
| ``heap_frozen`` | the start-up heap is frozen (:func:`~.launch.freeze_startup_heap`) |
| ``tables_registered`` | Faust has started the tables (topics declared); the group join begins |
| ``partitions_assigned`` | the group join gave this worker its partitions |
| ``recovery_started`` | the partitions' state stores are open; reading the changelogs begins |
| ``recovered`` | the changelogs are read and the last commit redone |
| ``models_restored`` | the model checkpoints are restored |
| ``learning_caught_up`` | the models have learned their learning streams to the end |
| ``first_batch`` | the first input batch is taken |
| ``first_commit`` | the first input batch is committed (``processed`` counts it) |

>>> clock = StartupClock(started_at=100.0, now=lambda: 101.25)
>>> clock.mark("imported"); clock.mark("imported")
>>> clock.phases
{'imported': 1.25}
>>> clock.mark_at("recovery_started", 100.5); clock.phases["recovery_started"]
0.5
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def process_started_at() -> float:
    """The wall-clock time (``time.time()``) this process started, from ``/proc`` (to
    10 ms); where there is no ``/proc``, the time of the call.

    >>> 0 <= time.time() - process_started_at() < 3600
    True
    """
    try:
        with open("/proc/self/stat") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as uptime:
            up_s = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return time.time()
    return time.time() - up_s + start_ticks / os.sysconf("SC_CLK_TCK")


class StartupClock:
    """The start-up milestones of one worker process (each kept at its first mark)."""

    def __init__(
        self, started_at: float | None = None, now: Callable[[], float] = time.time
    ) -> None:
        self.started_at = process_started_at() if started_at is None else started_at
        self.now = now
        self.phases: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        """Note that ``phase`` is reached now (a later mark of the same phase is ignored)."""
        self.mark_at(phase, self.now())

    def mark_at(self, phase: str, at: float) -> None:
        """Note that ``phase`` was reached at wall-clock time ``at``."""
        if phase in self.phases:
            return
        self.phases[phase] = round(at - self.started_at, 3)
        log.info("start-up: %s %.2f s after the process start", phase, self.phases[phase])
