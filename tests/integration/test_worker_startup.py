"""A worker restarted on the same state directory, on the real brokers: its stats file
dates every start-up milestone from the process start, in the order the start passes them,
and two waits that cost a restart nothing in guarantees are gone (Faust's 1 s before the
tables start; a 500 ms poll before an already learned learning stream counts as learned)."""

from __future__ import annotations

from typing import Any

import pytest

from finpulse.streams.core.topics import TRANSACTIONS
from tests import factories as f

pytestmark = pytest.mark.integration

IN_ORDER = (
    "settings_read",
    "imported",
    "app_built",
    "heap_frozen",
    "tables_registered",
    "partitions_assigned",
    "recovery_started",
    "recovered",
    "learning_caught_up",
    "first_batch",
    "first_commit",
)


def _first_event(env: Any, name: str, event_id: str) -> dict[str, float]:
    worker = env.worker(name=name)
    event = f.transaction(event_id=event_id, customer_id="c-start")
    env.produce(TRANSACTIONS, [f.encode(event)], [b"c-start"])
    stats = worker.wait_for(lambda s: s.get("processed", 0) >= 1, 120, "a first event")
    worker.stop()
    return dict(stats["startup_phases_s"])


def test_a_restart_dates_its_milestones_in_order_without_the_removed_waits(env: Any) -> None:
    _first_event(env, "start", "t-start-1")
    phases = _first_event(env, "start", "t-start-2")  # the same state directory
    assert set(phases) == {*IN_ORDER, "models_restored"}
    times = [phases[p] for p in IN_ORDER]
    assert times == sorted(times) and times[0] > 0, phases
    assert phases["models_restored"] <= phases["learning_caught_up"]
    # Faust's table manager waited 1 s before starting the tables
    assert phases["tables_registered"] - phases["heap_frozen"] < 1.0, phases
    # the learning streams are empty: learned at the first fetch answer, not after a
    # 500 ms wait for records
    assert phases["learning_caught_up"] - phases["recovered"] < 0.5, phases
