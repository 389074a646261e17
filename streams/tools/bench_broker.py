"""Benchmark of the local broker alone: produce → consume latency and broker CPU over time.

``python -m finpulse.streams.tools.bench_broker [--rate 1000] [--seconds 70] [--linger-ms 5]``
starts Tansu with the finpulse topics, a consumer in a child process (librdkafka, 25 ms fetch wait,
as the worker's) and a producer in this one (librdkafka, linger 5 ms or ``--linger-ms``, paced in
5 ms bursts, the bench's 80/15/5 % topic mix, ~420-byte payloads stamped with their send
time). No finpulse code touches the events. Per 10 s of send time it prints the consumed
count, produce → consume p50/p99 and the broker's CPU share, then one JSON line.

It separates what the broker costs from what the worker costs in ``finpulse bench``: on the
development machine Tansu's CPU rises with the data it holds while the offered load stays
constant (see docs/benchmarks.md).

>>> w = broker_windows([(0.0, 10.0), (1.0, 30.0), (12.0, 20.0)], [(0.01, 40.0)], 10.0)
>>> [(x["from_s"], x["events"], x["p50_ms"], x["broker_cpu_pct"]) for x in w]
[(0.0, 2, 10.0, 40.0), (10.0, 1, 20.0, None)]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finpulse.config.settings import local_stack_settings
from finpulse.streams.core.topics import INPUT_TOPICS, create_topics
from finpulse.streams.local.stack import LocalStack, free_port
from finpulse.streams.tools.bench import latency_windows, proc_cpu_s
from finpulse.streams.tools.bench_faust_floor import mixed_topic

WINDOW_S = 10.0
BURST_S = 0.005
JOIN_TIMEOUT_S = 60.0
PAD = b"x" * 400
LINGER_MS = 5.0  # Kafka's default: the one whose batches pile up in Tansu


def broker_windows(
    received: Sequence[tuple[float, float]],
    broker_cpu: Sequence[tuple[float, float]],
    window_s: float = WINDOW_S,
) -> list[dict[str, Any]]:
    """Per window of send time: events, p50/p99 ms, the broker's CPU % over that window.

    ``received`` holds (seconds since the first send, latency ms); ``broker_cpu`` holds (start
    of a sampling interval of ``window_s`` in the same seconds, CPU %).
    """
    cpu = {round(at / window_s): pct for at, pct in broker_cpu}
    windows = latency_windows(received, window_s, "events")
    for w in windows:
        w["broker_cpu_pct"] = cpu.get(round(w["from_s"] / window_s))
    return windows


def consume(bootstrap: str, out_path: str) -> None:
    """The child process: consume until 3 s pass with nothing new; write the latencies.

    Creates ``out_path + ".ready"`` once the first message (the parent's probe) arrives.
    """
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-broker",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 25,
            "session.timeout.ms": 6000,  # Tansu holds a join for half of it (INFRA.md)
            "heartbeat.interval.ms": 500,
        }
    )
    consumer.subscribe(list(INPUT_TOPICS))
    received: list[tuple[float, float]] = []
    last, idle_s = time.monotonic(), JOIN_TIMEOUT_S
    while time.monotonic() - last < idle_s:
        for m in consumer.consume(500, 0.005):  # returns at 500 or the timeout
            value = m.value()
            if m.error() is None and value is not None:
                now = time.time()
                sent = float(value[:20])
                received.append((sent, (now - sent) * 1000))
                if idle_s == JOIN_TIMEOUT_S:
                    Path(out_path + ".ready").touch()
                last, idle_s = time.monotonic(), 3.0
    consumer.close()
    Path(out_path).write_text(json.dumps(received))


def run(rate: float, seconds: float, linger_ms: float = LINGER_MS) -> dict[str, Any]:
    """Start the broker and consumer, produce for ``seconds`` and return the figures.

    The producer lingers ``linger_ms``: at 1,000 events/s over 4 partitions per topic, 5 ms
    stores nearly every event as its own batch, which Tansu's fetches get slower with.
    """
    from confluent_kafka import Producer

    root = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    settings = local_stack_settings(data_dir=root, local_broker_port=free_port())
    stack = LocalStack(settings)
    stack.start_broker()
    try:
        settings = settings.model_copy(update={"broker_url": stack.broker_url})
        create_topics(settings)
        bootstrap = settings.broker_bootstrap[0]
        out_path = str(root / "received.json")
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "finpulse.streams.tools.bench_broker",
                "--consume",
                bootstrap,
                out_path,
            ]
        )
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": linger_ms, "acks": "all"})
        _wait_until_consumed(producer, Path(out_path + ".ready"))
        pid = stack.pid("broker")
        t0 = time.monotonic()
        sent, burst_at = 0, t0
        samples: list[tuple[float, float]] = []
        cpu_at, cpu0 = t0, proc_cpu_s(pid)
        while time.monotonic() - t0 < seconds:
            due = int((time.monotonic() - t0) * rate) + 1
            while sent < due:
                topic = mixed_topic(sent)
                stamp = f"{time.time():<20.6f}".encode()
                producer.produce(topic, stamp + PAD, key=str(sent % 2000).encode())
                sent += 1
            producer.poll(0)
            now = time.monotonic()
            if now - cpu_at >= WINDOW_S:
                cpu1 = proc_cpu_s(pid)
                samples.append((cpu_at - t0, round(100 * (cpu1 - cpu0) / (now - cpu_at), 1)))
                cpu_at, cpu0 = now, cpu1
            burst_at += BURST_S
            time.sleep(max(burst_at - time.monotonic(), 0))
        producer.flush(30)
        child.wait(timeout=JOIN_TIMEOUT_S + seconds)
        received = json.loads(Path(out_path).read_text())
        first = min(s for s, _ in received if s > 0) if received else 0.0
        timeline = [(s - first, ms) for s, ms in received if s > 0]
        return {
            "rate": rate,
            "linger_ms": linger_ms,
            "sent": sent,
            "windows": broker_windows(timeline, samples),
        }
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_consumed(producer: Any, ready: Path) -> None:
    # One probe (stamped 0, left out of the figures), so that the measured sends start
    # once the consumer has joined its group and fetches.
    producer.produce(next(iter(INPUT_TOPICS)), f"{0.0:<20.6f}".encode())
    producer.flush(10)
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while not ready.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the consumer received nothing within {JOIN_TIMEOUT_S} s")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=70.0)
    p.add_argument("--linger-ms", type=float, default=LINGER_MS, help="the producer's linger.ms")
    p.add_argument("--consume", nargs=2, help=argparse.SUPPRESS)  # the child: bootstrap, file
    args = p.parse_args(argv)
    if args.consume:
        consume(args.consume[0], args.consume[1])
        return
    result = run(args.rate, args.seconds, args.linger_ms)
    for w in result["windows"]:
        print(
            f"{w['from_s']:>5.0f} s  {w['events']:>6} events  p50 {w['p50_ms']:>7} ms  "
            f"p99 {w['p99_ms']:>7} ms  broker CPU {w['broker_cpu_pct']} %"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
