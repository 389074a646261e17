"""The worker's start-up clock (finpulse.streams.worker.startup): milestones counted from
the process start, read from /proc."""

from __future__ import annotations

import subprocess
import sys
import time

from finpulse.streams.worker.startup import StartupClock


def test_a_child_process_dates_its_start_at_its_spawn() -> None:
    code = (
        "from finpulse.streams.worker.startup import process_started_at; "
        "print(process_started_at())"
    )
    spawned = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    started = float(out.stdout)
    # /proc counts in clock ticks (10 ms); the uptime and the wall clock are read apart
    assert spawned - 0.1 <= started <= spawned + 0.5


def test_milestones_count_from_the_process_start_and_keep_their_first_time() -> None:
    now = [10.0]
    clock = StartupClock(started_at=8.0, now=lambda: now[0])
    clock.mark("imported")
    now[0] = 12.5
    clock.mark("app_built")
    clock.mark("imported")  # a later pass (a second rebalance) keeps the first
    assert clock.phases == {"imported": 2.0, "app_built": 4.5}
    assert list(clock.phases) == ["imported", "app_built"]  # in the order reached
