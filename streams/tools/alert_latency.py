"""Produce → alert latency for the bench: when does an event's alert reach a consumer?

:class:`AlertWatcher` reads ``finpulse.alerts`` in a background thread from the moment
it starts, and notes the wall-clock time at which each alert arrives. The producer notes
the wall-clock time at which it hands each event to the broker client (``sent_at``);
an alert's ``source_event_id`` joins the two. The figure therefore includes everything
an on-call consumer of the topic would wait for: broker, batching, scoring, rules,
alerting, the delivery of the batch, and the consumer's own fetch.

>>> latencies_ms({"e1": 10.0}, [(10.25, {"source_event_id": "e1"}), (11.0, {})])
[250.0]
>>> latency_timeline({"e1": 10.0}, [(10.25, {"source_event_id": "e1"})])
[(10.0, 250.0)]

:func:`creation_timeline` splits that wait: from the send to the alert's ``created_at`` (the
worker's wall clock when it decided the alert) is the input broker, the batching and the
scoring; the rest is the worker's publication, the broker again and the consumer's fetch.

>>> from datetime import UTC
>>> at = datetime.fromtimestamp(10.2, UTC).isoformat()
>>> creation_timeline({"e1": 10.0}, [(10.25, {"source_event_id": "e1", "created_at": at})])
[(10.0, 200.0)]
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from finpulse.config.settings import Settings
from finpulse.streams.core.topics import ALERTS


def latency_timeline(
    sent_at: Mapping[str, float], received: Sequence[tuple[float, dict[str, Any]]]
) -> list[tuple[float, float]]:
    """(send time of the source event, milliseconds until its alert arrived) per alert,
    in arrival order; alerts whose source event was not sent by the producer are left out."""
    out = []
    for at, alert in received:
        sent = sent_at.get(alert.get("source_event_id") or "")
        if sent is not None:
            out.append((sent, round((at - sent) * 1000, 3)))
    return out


def creation_timeline(
    sent_at: Mapping[str, float], received: Sequence[tuple[float, dict[str, Any]]]
) -> list[tuple[float, float]]:
    """(send time of the source event, milliseconds until the worker created its alert) per
    alert with a ``created_at``, in arrival order (see the module text)."""
    out = []
    for _, alert in received:
        sent = sent_at.get(alert.get("source_event_id") or "")
        created = alert.get("created_at")
        if sent is not None and created:
            at = datetime.fromisoformat(created).timestamp()
            out.append((sent, round((at - sent) * 1000, 3)))
    return out


def latencies_ms(
    sent_at: Mapping[str, float], received: Sequence[tuple[float, dict[str, Any]]]
) -> list[float]:
    """Milliseconds from each alert's source event being sent to the alert arriving."""
    return [ms for _, ms in latency_timeline(sent_at, received)]


class AlertWatcher:
    """Collects ``(arrival time, alert)`` of every alert published while it runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.received: list[tuple[float, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-watcher", daemon=True)

    def start(self, timeout_s: float = 30.0) -> AlertWatcher:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("alert watcher could not reach the broker")
        return self

    def stop(self) -> list[tuple[float, dict[str, Any]]]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.received

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.broker_bootstrap,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
        )
        try:
            ids = consumer.partitions_for_topic(ALERTS) or set()
            if not ids:
                raise RuntimeError(f"topic {ALERTS} has no partitions (not created?)")
            partitions = [TopicPartition(ALERTS, p) for p in sorted(ids)]
            consumer.assign(partitions)
            consumer.seek_to_end()
            for tp in partitions:
                consumer.position(tp)  # resolve "end" now, before the producer starts
            self._ready.set()
            while not self._stop.is_set():
                batches = consumer.poll(timeout_ms=50)
                now = time.time()
                for records in batches.values():
                    for r in records:
                        self.received.append((now, json.loads(r.value)))
        finally:
            consumer.close()
