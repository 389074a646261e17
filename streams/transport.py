"""The Kafka transport of the worker: Faust's aiokafka driver with a settable fetch wait.

Faust's driver creates its consumer with ``fetch_max_wait_ms=1500``, fixed. Against a
broker that holds a fetch until that timeout even when data has arrived (Tansu; measured
produce→consume p50 423 ms at 1,500 ms, 6.7 ms at 20 ms), that wait is the latency floor
of every event. :class:`FinpulseApp` uses its ``fetch_max_wait_ms`` instead (from
``Settings.consumer_fetch_max_wait_ms``); everything else is Faust's own code.

>>> app = FinpulseApp("doc", broker="kafka://localhost:9092", fetch_max_wait_ms=40)
>>> type(app.transport).__name__, app.fetch_max_wait_ms
('FinpulseTransport', 40)
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

FAUST_FETCH_MAX_WAIT_MS = 1500


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka passes this to its Fetcher in start(), which has not run yet.
        consumer._fetch_max_wait_ms = getattr(
            self.app, "fetch_max_wait_ms", FAUST_FETCH_MAX_WAIT_MS
        )
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class FinpulseTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose worker consumer waits ``app.fetch_max_wait_ms``."""

    Consumer = _Consumer


class FinpulseApp(faust.App):
    """A Faust app whose consumer transport is :class:`FinpulseTransport`."""

    def __init__(
        self, *args: Any, fetch_max_wait_ms: int = FAUST_FETCH_MAX_WAIT_MS, **kwargs: Any
    ) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return FinpulseTransport(self.conf.broker_consumer, self)
