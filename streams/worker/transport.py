"""The Kafka transport of the worker: Faust's aiokafka driver, a settable fetch wait, bulk intake.

Faust's driver creates its consumer with ``fetch_max_wait_ms=1500``, fixed. Against a
broker that holds a fetch until that timeout even when data has arrived (Tansu; measured
produce→consume p50 423 ms at 1,500 ms, 6.7 ms at 20 ms), that wait is the latency floor
of every event. :class:`FinpulseApp` uses its ``fetch_max_wait_ms`` instead (from
``Settings.consumer_fetch_max_wait_ms``).

The consumer's drain loop is Faust's (``faust.transport.consumer.Consumer._drain_messages``,
faust-streaming 0.15) with one branch added: a message of a topic registered in
``app.bulk_intake`` (:mod:`streams.worker.intake`) is appended to that topic's buffer instead of
going through the conductor, and the buffers are notified after each fetch. Every other
message (the table changelogs read during recovery) takes Faust's path unchanged.

>>> app = FinpulseApp("doc", broker="kafka://localhost:9092", fetch_max_wait_ms=40)
>>> type(app.transport).__name__, app.fetch_max_wait_ms
('FinpulseTransport', 40)
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from config.settings import Settings
from streams.worker.intake import BulkIntake

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

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover
        # Faust's loop (see the module docstring); the intake branch is marked.
        intake: BulkIntake | None = getattr(self.app, "bulk_intake", None)
        buffers = intake.buffers if intake is not None else {}
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(faust_consumer.CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            buffer = buffers.get(message.topic)
                            if buffer is None:
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            elif buffer.put(message):  # intake branch: full, wait for room
                                await self.wait_first(
                                    buffer.wait_for_space(), self.suspend_flow.wait()
                                )
                            set_read_offset(tp, offset)
                    if intake is not None:
                        intake.notify()  # intake branch: the fetch's messages can be taken
                self.diag.unset_flag(faust_consumer.CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(faust_consumer.CONSUMER_FETCHING)


class FinpulseTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose worker consumer waits ``app.fetch_max_wait_ms``."""

    Consumer = _Consumer


# The worker's default (FINPULSE_STREAM_INTAKE_BUFFER_MAX), for apps built without settings.
_INTAKE_BUFFER_MAX: int = Settings.model_fields["stream_intake_buffer_max"].default


class FinpulseApp(faust.App):
    """A Faust app whose consumer transport is :class:`FinpulseTransport`.

    ``bulk_intake`` holds the intake buffers (``intake_buffer_max`` messages per topic) that
    agents subscribe with :meth:`streams.worker.intake.BulkIntake.subscribe` while the app is built.
    """

    def __init__(
        self,
        *args: Any,
        fetch_max_wait_ms: int = FAUST_FETCH_MAX_WAIT_MS,
        intake_buffer_max: int = _INTAKE_BUFFER_MAX,
        **kwargs: Any,
    ) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.bulk_intake = BulkIntake(intake_buffer_max)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return FinpulseTransport(self.conf.broker_consumer, self)
