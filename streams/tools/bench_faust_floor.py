"""Benchmark of the worker's intake alone: the CPU it costs per event with no work at all.

``python -m finpulse.streams.tools.bench_faust_floor [--rate 1000] [--tables 0] [--faust-stream]``
starts a local Tansu broker and a Faust app built like the worker
(:class:`finpulse.streams.worker.faust_adapter.FinpulseApp`,
the three input topics, batches of up to 2,000 within 50 ms, each message acknowledged after
its batch, as :mod:`finpulse.streams.worker.app` does) whose agents do nothing else. A child process
produces simulator-sized events at ``--rate``; once the agents take events (within 60 s) and
after a 4 s warm-up, the app measures 8 s of CPU time of its main thread (the event loop)
and of its other threads (the broker client's), and prints one JSON line. ``--tables N``
adds N changelog-backed tables that are never written (the worker has five). The agents
take their batches from the bulk intake (:mod:`finpulse.streams.worker.intake`), as the worker does;
``--faust-stream`` takes them with Faust's ``take_events`` instead.

>>> floor_figures(1000, 0.5, 0.3, 8.0)["other_us_per_event"]
300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from finpulse.config.settings import local_stack_settings
from finpulse.streams.core.aiokafka_options import aiokafka_options
from finpulse.streams.core.topics import INPUT_TOPICS, create_topics
from finpulse.streams.local.stack import LocalStack, free_port
from finpulse.streams.tools.bench import proc_cpu_s
from finpulse.streams.worker.faust_adapter import FinpulseApp

WARMUP_S, MEASURE_S = 4.0, 8.0  # the measured window (not a wait for a condition)
FLOWING_TIMEOUT_S = 60.0
BURST_S = 0.005
PAYLOAD = b'{"x":"' + b"1" * 400 + b'"}'  # ~ the size of a simulator transaction
_TOPICS = list(INPUT_TOPICS)


def floor_figures(events: int, main_cpu_s: float, other_cpu_s: float, wall_s: float) -> dict:
    """Rates and CPU shares of one measurement window."""
    return {
        "events_per_s": round(events / wall_s),
        "main_thread_cpu_pct": round(100 * main_cpu_s / wall_s, 1),
        "other_threads_cpu_pct": round(100 * other_cpu_s / wall_s, 1),
        "main_us_per_event": round(1e6 * main_cpu_s / events) if events else None,
        "other_us_per_event": round(1e6 * other_cpu_s / events) if events else None,
    }


def _thread_cpu_s() -> dict[str, float]:
    pid = os.getpid()
    return {tid: proc_cpu_s(pid, int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


def mixed_topic(i: int) -> str:
    """The input topic of the ``i``-th event: 80 % transactions, 15 % interactions, 5 % feedback.

    >>> [mixed_topic(i) for i in (0, 16, 19)] == list(INPUT_TOPICS)
    True
    """
    k = i % 20
    return _TOPICS[0] if k < 16 else _TOPICS[1] if k < 19 else _TOPICS[2]


def produce(bootstrap: str, rate: float, seconds: float) -> None:
    """The child process: ``rate`` events/s for ``seconds``, 80/15/5 % over the topics."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    t0, sent = time.monotonic(), 0
    burst_at = t0
    while time.monotonic() - t0 < seconds:
        due = int((time.monotonic() - t0) * rate) + 1
        while sent < due:
            producer.produce(mixed_topic(sent), PAYLOAD, key=str(sent % 2000).encode())
            sent += 1
        producer.poll(0)
        burst_at += BURST_S  # pacing: what is due goes out in bursts every BURST_S
        time.sleep(max(burst_at - time.monotonic(), 0))
    producer.flush(30)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--tables", type=int, default=0)
    p.add_argument("--faust-stream", action="store_true", help="take batches with take_events")
    p.add_argument("--produce", help=argparse.SUPPRESS)  # the child: bootstrap address
    args = p.parse_args(argv)
    if args.produce:
        produce(args.produce, args.rate, FLOWING_TIMEOUT_S + WARMUP_S + MEASURE_S)
        return
    root = Path(tempfile.mkdtemp(prefix="faust-floor-"))
    settings = local_stack_settings(data_dir=root, local_broker_port=free_port())
    stack = LocalStack(settings)
    stack.start_broker()
    settings = settings.model_copy(update={"broker_url": stack.broker_url})
    create_topics(settings)
    app = FinpulseApp(
        "floor", fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms, broker=settings.broker_url,
        kafka_options=aiokafka_options(settings),
        value_serializer="raw", key_serializer="raw", topic_partitions=settings.topic_partitions,
        topic_disable_leader=True, consumer_auto_offset_reset="earliest",
        broker_session_timeout=2, broker_heartbeat_interval=0.5, broker_rebalance_timeout=5,
        web_port=free_port(), web_enabled=False, store="memory://",
    )  # fmt: skip
    for i in range(args.tables):
        app.Table(f"t{i}", default=None, partitions=settings.topic_partitions)
    taken = [0]
    flowing = asyncio.Event()  # set once the agents take events
    for name in INPUT_TOPICS:
        topic = app.topic(name, value_serializer="raw", key_serializer="raw")

        async def ingest(stream: Any) -> None:
            async for events in stream.take_events(2000, within=0.05):
                for e in events:
                    e.message.incref()
                taken[0] += len(events)
                flowing.set()
                for e in events:
                    e.ack()

        buffer = None if args.faust_stream else app.bulk_intake.subscribe(app, topic)

        async def ingest_bulk(stream: Any, buffer: Any = buffer) -> None:
            consumer = app.consumer
            while True:
                messages = await buffer.take(2000, 0.05, consumer)
                taken[0] += len(messages)
                flowing.set()
                for m in messages:
                    m.ack(consumer)

        app.agent(topic, name=f"floor.{name}")(ingest if args.faust_stream else ingest_bulk)

    @app.task
    async def measure() -> None:
        child = subprocess.Popen(
            [sys.executable, "-m", "finpulse.streams.tools.bench_faust_floor", "--rate",
            str(args.rate),
             "--produce", settings.broker_bootstrap[0]]
        )  # fmt: skip
        # raises TimeoutError if no event reaches the agents in time
        await asyncio.wait_for(flowing.wait(), FLOWING_TIMEOUT_S)
        await asyncio.sleep(WARMUP_S)  # warm-up: the rate settles before the measured window
        c0, n0, w0 = _thread_cpu_s(), taken[0], time.monotonic()
        await asyncio.sleep(MEASURE_S)
        c1, n1, wall = _thread_cpu_s(), taken[0], time.monotonic() - w0
        child.terminate()
        main_tid = str(os.getpid())
        main_s = c1[main_tid] - c0[main_tid]
        other_s = sum(c1[t] - c0.get(t, 0.0) for t in c1 if t != main_tid)
        # Faust redirects stdout to its logs: write to the terminal's file descriptor.
        os.write(1, (json.dumps(floor_figures(n1 - n0, main_s, other_s, wall)) + "\n").encode())
        child.wait()
        stack.stop()
        os._exit(0)

    from finpulse.streams.worker.launch import quiet_worker

    try:
        quiet_worker(app, "warning").execute_from_commandline()  # as the worker's
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
