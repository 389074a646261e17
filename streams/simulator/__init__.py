"""Event simulator: a realistic, deterministic finpulse input stream with ground truth.

>>> from datetime import UTC, datetime
>>> sim = Simulator(seed=1, start=datetime(2026, 1, 5, tzinfo=UTC), n_events=200,
...                 sim_span_s=3600, n_customers=100)
>>> sum(1 for _ in sim.events())
200
"""

from finpulse.streams.simulator.producer import run_simulation
from finpulse.streams.simulator.simulator import SimEvent, Simulator

__all__ = ["SimEvent", "Simulator", "run_simulation"]
