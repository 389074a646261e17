"""Produce a simulated stream to Kafka in real time, paced at a fixed rate.

The simulated span (``duration_s * speedup``) ends at wall-clock "now", so dashboards show
recent data. Pacing is scheduled against a monotonic clock (event ``i`` is due at
``t0 + i / rate``), so it never drifts; events are sent in small bursts.

>>> _due(t0=100.0, rate=50.0, now=100.5, total=1000)
26
>>> _due(t0=100.0, rate=50.0, now=1e9, total=1000)
1000
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from finpulse.config.settings import Settings
from finpulse.streams.simulator.simulator import Simulator

log = logging.getLogger(__name__)

BURST_S = 0.02  # send whatever is due every ~20 ms
MIN_SLEEP_S = 0.002  # at high rates, let a few events accumulate into a burst
PROGRESS_EVERY_S = 1.0


def _due(t0: float, rate: float, now: float, total: int) -> int:
    """How many events must have been sent by ``now`` (event 0 is due at ``t0``)."""
    return min(total, int((now - t0) * rate) + 1)


def write_truth(path: str | Path, records: list[dict[str, object]]) -> None:
    """Write ground-truth records as JSON lines (atomically: temp file then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
    tmp.replace(path)


def run_simulation(
    settings: Settings,
    seed: int,
    rate: float,
    duration_s: float,
    truth_path: str | Path | None = None,
    speedup: float = 60.0,
    n_customers: int = 2000,
    malformed_share: float = 0.005,
    on_progress: Callable[[dict[str, object]], None] | None = None,
    *,
    producer: Any = None,
) -> dict[str, object]:
    """Send ``rate * duration_s`` events at ``rate`` events/s; returns the simulator's stats.

    ``producer`` (optional) is any object with kafka-python's ``send``/``flush``/``close``,
    for tests; by default a ``KafkaProducer`` is built from ``settings``. Raises
    ``RuntimeError`` if any send failed after the producer's own retries.
    """
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration_s must be > 0")
    total = round(rate * duration_s)
    span_s = duration_s * speedup
    now = datetime.now(UTC).replace(microsecond=0)
    sim = Simulator(
        seed=seed,
        start=now - timedelta(seconds=span_s),
        n_events=total,
        sim_span_s=span_s,
        n_customers=n_customers,
        malformed_share=malformed_share,
    )
    own = producer is None
    if own:
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=settings.broker_bootstrap,
            client_id=f"{settings.app_id}-simulator",
            acks="all",
            # 50 ms, as the bench's load producer: on Tansu's memory store a fetch lists every
            # stored batch, so 5 ms (one batch per event at demo rates) slows the broker down
            linger_ms=50,
            batch_size=256 * 1024,
            **settings.kafka_client_kwargs(),
        )
    errors: list[BaseException] = []
    sent = 0
    stats: dict[str, object] = {}
    try:
        stream = sim.events()
        t0 = time.monotonic()
        next_progress = t0 + PROGRESS_EVERY_S
        while sent < total:
            now_m = time.monotonic()
            due = _due(t0, rate, now_m, total)
            while sent < due:
                ev = next(stream)
                fut = producer.send(ev.topic, key=ev.key, value=ev.value)
                fut.add_errback(errors.append)
                sent += 1
            if on_progress is not None and now_m >= next_progress:
                on_progress(_with_sent(sim.stats(), sent, errors))
                next_progress = now_m + PROGRESS_EVERY_S
            if sent < total:
                wait = t0 + sent / rate - time.monotonic()  # until the next event is due
                time.sleep(min(max(wait, MIN_SLEEP_S), BURST_S))
        producer.flush()
    finally:
        if own:
            producer.close()
        if truth_path is not None:
            write_truth(truth_path, sim.ground_truth())
    stats = _with_sent(sim.stats(), sent, errors)
    if on_progress is not None:
        on_progress(stats)
    if errors:
        raise RuntimeError(f"{len(errors)} of {sent} sends failed, first: {errors[0]!r}")
    return stats


def _with_sent(
    stats: dict[str, object], sent: int, errors: list[BaseException]
) -> dict[str, object]:
    stats = dict(stats)
    stats["sent"] = sent
    stats["send_errors"] = len(errors)
    return stats
