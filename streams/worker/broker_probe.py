"""What the broker holds from given offsets on, as a fetch answers it.

A consumer without a group (the worker consumer's positions are not touched) seeks each
asked partition to the asked offset and fetches once. The answer is the fetch response's
high watermark and the offsets of the records it returned: between the asked offset and
the last of them, every other offset holds no record a consumer is given (a transaction
marker, an aborted record under ``read_committed``, a record removed by retention).

The probe reads with the worker consumer's isolation level (what one sees the other
does) and the worker's fetch wait (a broker that holds every fetch until that wait, as
Tansu does, answers no sooner). Its aiokafka consumer is started on the first question
and kept until :meth:`BrokerProbe.close`; questions are asked one at a time.

>>> probe = BrokerProbe({"bootstrap_servers": ["localhost:9092"]}, lambda: "read_committed")
>>> probe.started, probe.fetches
(False, 0)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import aiokafka
from faust.types import TP

PROBE_TIMEOUT_S = 30.0  # longest a question waits for its fetch answers
POLL_MS = 200


class Held(NamedTuple):
    """One partition's answer: its high watermark and the offsets of the records a fetch
    from the asked offset returned (empty: none up to the high watermark, or not asked)."""

    high_watermark: int
    offsets: list[int]


class BrokerProbe:
    """Fetches given partitions from given offsets with one group-less aiokafka consumer."""

    def __init__(
        self,
        options: Mapping[str, object],
        isolation_level: Callable[[], str],
        fetch_max_wait_ms: int = 500,
        timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self.options = options  # connection and security (aiokafka_options)
        self.isolation_level = isolation_level  # asked once, when the consumer starts
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.timeout_s = timeout_s
        self.fetches = 0  # questions answered by the broker
        self._kafka: aiokafka.AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._kafka is not None

    async def fetch(self, starts: Mapping[TP, int], records: bool = True) -> dict[TP, Held]:
        """Per partition of ``starts``: the high watermark of the first fetch response that
        reports one and, when ``records``, the offsets of the records that fetch returned
        from the start on (an empty list once the position reached the high watermark
        without any). Raises ``RuntimeError`` when no fetch answers in ``timeout_s``."""
        if not starts:
            return {}
        async with self._lock:
            kafka = await self._consumer()
            parts = {aiokafka.TopicPartition(tp.topic, tp.partition): tp for tp in starts}
            kafka.assign(list(parts))
            for part, tp in parts.items():
                kafka.seek(part, starts[tp])
            found: dict[TP, Held] = {}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout_s
            while len(found) < len(parts) and loop.time() < deadline:
                fetched = await kafka.getmany(timeout_ms=POLL_MS)
                for part, tp in parts.items():
                    high = kafka.highwater(part)
                    if tp in found or high is None:
                        continue
                    got = fetched.get(part)
                    if got:
                        found[tp] = Held(high, [r.offset for r in got] if records else [])
                    elif not records or await kafka.position(part) >= high:
                        found[tp] = Held(high, [])
            if len(found) < len(parts):
                missing = sorted(tp for tp in starts if tp not in found)
                raise RuntimeError(f"no fetch answered {missing}")
            self.fetches += 1
            return found

    async def _consumer(self) -> aiokafka.AIOKafkaConsumer:
        if self._kafka is None:
            kafka = aiokafka.AIOKafkaConsumer(
                **self.options,  # type: ignore[arg-type]
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level=self.isolation_level(),
                fetch_max_wait_ms=self.fetch_max_wait_ms,
            )
            try:
                await kafka.start()
            except BaseException:
                await kafka.stop()  # its connections; the next question starts anew
                raise
            self._kafka = kafka
        return self._kafka

    async def close(self) -> None:
        """Stop the consumer (a later question starts a new one)."""
        async with self._lock:
            kafka, self._kafka = self._kafka, None
            if kafka is not None:
                await kafka.stop()

    async def __aenter__(self) -> BrokerProbe:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
